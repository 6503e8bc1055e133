"""The list of data files (data/README.md): every data file, the command that made it,
its wall time (from the file itself) and its size.

    python plotting/data_manifest.py            # print the list
    python plotting/data_manifest.py --write    # replace data/README.md with it
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from marl_dmpc.cli import OneLineArgumentParser, fail
from marl_dmpc.driver import EXIT_CODES
from marl_dmpc.files import OutputError, write_atomic
from marl_dmpc.results import ResultFileError, load_result

ROOT = Path(__file__).resolve().parent.parent

#: The release's example-1 data (../shared/release_data beside the repository), read by
#: the commands of the files on its own episodes.
_RELEASE_EVALS = "../shared/release_data/example_1/evals"
_RELEASE_EPISODE = f"--episodes 1 --noise-from {_RELEASE_EVALS}/eval_pol_step_0.pkl"
_LINE_81 = "../shared/release_data/example_1/line_81/distributed.pkl"
_STUDY = "data/robustness/example_1_distributed_default.pkl"
_RELEASE_POWER = "../shared/release_data/power_data"

#: Every data file: what it holds (:func:`data_kind`) and the command that makes it (run
#: from the repository's root).
DATA_FILES = {
    "example_1/distributed.pkl": (
        "example_1_training",
        "python example_1/example_1.py --steps 20000 --seed 1 "
        "--no-progress --out data/example_1/distributed.pkl",
    ),
    "example_1/centralized.pkl": (
        "example_1_training",
        "python example_1/example_1.py --steps 20000 --seed 1 "
        "--centralized --no-progress --out data/example_1/centralized.pkl",
    ),
    "example_1/distributed_eval.pkl": (
        "example_1_evaluation",
        "python example_1/evaluate.py data/example_1/distributed.pkl "
        "--out data/example_1/distributed_eval.pkl",
    ),
    "example_1/baselines.pkl": (
        "example_1_baselines",
        "python example_1/baselines.py --out data/example_1/baselines.pkl",
    ),
    **{
        f"example_1/{name}.pkl": (kind, f"{command} --out data/example_1/{name}.pkl")
        for name, kind, command in (
            # on the release's own evaluation episodes (docs/reproduction.md, "Example 1 on
            # the release's own episodes"); they need the release's data folder
            (
                "distributed_eval_release_episode",
                "example_1_evaluation",
                f"python example_1/evaluate.py data/example_1/distributed.pkl {_RELEASE_EPISODE}",
            ),
            (
                "distributed_eval_shared_noise",
                "example_1_evaluation",
                "python example_1/evaluate.py data/example_1/distributed.pkl --shared-noise",
            ),
            (
                "study_eval_release_episode",
                "example_1_evaluation",
                f"python example_1/evaluate.py {_STUDY} {_RELEASE_EPISODE}",
            ),
            (
                "study_eval_shared_noise",
                "example_1_evaluation",
                f"python example_1/evaluate.py {_STUDY} --shared-noise",
            ),
            (
                "line_81_eval_release_episode",
                "example_1_evaluation",
                f"python example_1/evaluate.py {_LINE_81} --release-training {_RELEASE_EPISODE}",
            ),
            (
                "line_81_eval_shared_noise",
                "example_1_evaluation",
                f"python example_1/evaluate.py {_LINE_81} --release-training --shared-noise",
            ),
            (
                "baselines_release_episode",
                "example_1_baselines",
                f"python example_1/baselines.py --release --seed 0 {_RELEASE_EPISODE}",
            ),
            (
                "baselines_release_episode_ours",
                "example_1_baselines",
                f"python example_1/baselines.py {_RELEASE_EPISODE}",
            ),
            (
                "baselines_release_nominal_episode",
                "example_1_baselines",
                "python example_1/baselines.py --release --seed 0 --scenarios 10 --episodes 1 "
                f"--noise-from {_RELEASE_EVALS}/nom_true_model_False.pkl",
            ),
        )
    },
    "example_1/admm_dual_error.pkl": (
        "example_1_admm_dual_error",
        "python example_1/admm_dual_error.py --out data/example_1/admm_dual_error.pkl",
    ),
    **{
        f"power_system/{name}.pkl": (kind, f"{command} --out data/power_system/{name}.pkl")
        for name, kind, command in (
            # on the release's own evaluation episodes (docs/reproduction.md); they need the
            # release's data folder
            *(
                (
                    f"{mode}_eval_release_episodes",
                    "power_system_evaluation",
                    f"python power_system/evaluate.py data/power_system/{mode}.pkl "
                    f"--noise-from {_RELEASE_POWER}/line_40/{theirs}_eval.pkl",
                )
                for mode, theirs in (("distributed", "dist"), ("centralized", "centralised"))
            ),
            (
                "baselines_release_nominal_episodes",
                "power_system_baselines",
                "python power_system/baselines.py --release --scenarios 50 "
                f"--noise-from {_RELEASE_POWER}/nominal/centralised.pkl",
            ),
            *(
                (
                    f"baselines_release_scenario_{K}_episodes",
                    "power_system_baselines",
                    f"python power_system/baselines.py --release --scenarios {K} "
                    f"--noise-from {_RELEASE_POWER}/scenario/power_scenario_{K}.pkl",
                )
                for K in (50, 79, 100)
            ),
        )
    },
    "power_system/admm_dual_error.pkl": (
        "power_system_admm_dual_error",
        "python power_system/admm_dual_error.py --out data/power_system/admm_dual_error.pkl",
    ),
    "power_system/distributed.pkl": (
        "power_system_training",
        "python power_system/q_learning_power.py --episodes 100 "
        "--seed 1 --no-progress --out data/power_system/distributed.pkl",
    ),
    "power_system/centralized.pkl": (
        "power_system_training",
        "python power_system/q_learning_power.py --episodes 100 "
        "--seed 1 --centralized --no-progress --out data/power_system/centralized.pkl",
    ),
    "power_system/distributed_eval.pkl": (
        "power_system_evaluation",
        "python power_system/evaluate.py "
        "data/power_system/distributed.pkl --out data/power_system/distributed_eval.pkl",
    ),
    "power_system/centralized_eval.pkl": (
        "power_system_evaluation",
        "python power_system/evaluate.py "
        "data/power_system/centralized.pkl --out data/power_system/centralized_eval.pkl",
    ),
    "power_system/baselines.pkl": (
        "power_system_baselines",
        "python power_system/baselines.py --out data/power_system/baselines.pkl",
    ),
    "power_system/baselines_release.pkl": (
        "power_system_baselines",
        "python power_system/baselines.py --release --out data/power_system/baselines_release.pkl",
    ),
}


def _study(
    name: str, sweeps: str | tuple[str, ...], folder: str = "robustness", env: str = ""
) -> tuple[str, str]:
    """A study: its sweep into ``runs/study/<name>`` (or, given a tuple, its chunks into
    ``runs/study/<name>_1``, ``_2``, ...), then their summary into ``data/<folder>/``;
    ``env`` (e.g. ``OPENBLAS_CORETYPE=Sandybridge``) is set for the sweeps."""
    chunks = isinstance(sweeps, tuple)
    sweeps = sweeps if chunks else (sweeps,)
    folders = (
        [f"runs/study/{name}_{k}" for k in range(1, len(sweeps) + 1)]
        if chunks
        else [f"runs/study/{name}"]
    )
    prefix = f"{env} " if env else ""
    runs = [
        f"{prefix}python -m marl_dmpc.sweep {sweep} --dir {run_folder}"
        for sweep, run_folder in zip(sweeps, folders, strict=True)
    ]
    summary = (
        f"python -m marl_dmpc.sweep summarize {' '.join(folders)} --out data/{folder}/{name}.pkl"
    )
    return "sweep_summary", " && ".join([*runs, summary])


EXAMPLE_1_STUDY = "example_1 --seeds 1-20 --steps 20000 --eval-episodes 20"
CENTRALIZED = "--steps 20000 --eval-episodes 20 --centralized"
#: The robustness studies (docs/robustness.md): sweeps, kept as their summaries.
DATA_FILES.update(
    {
        f"robustness/{name}.pkl": _study(name, sweeps)
        for name, sweeps in {
            "example_1_distributed_default": EXAMPLE_1_STUDY,
            "example_1_distributed_stabilized": f"{EXAMPLE_1_STUDY} --stabilized",
            "example_1_safeguards_td_clip_5": f"{EXAMPLE_1_STUDY} --stabilized --td-clip 5",
            "example_1_safeguards_td_clip_10": f"{EXAMPLE_1_STUDY} --stabilized --td-clip 10",
            "example_1_screen_no_td_clip": "example_1 --seeds 1-12 --steps 2000 "
            "--eval-episodes 0 --stabilized --td-clip 0",
            # two chunks, seeds 1-10 and 11-20, summarized together
            "example_1_centralized_default": (
                f"example_1 --seeds 1-10 {CENTRALIZED}",
                f"example_1 --seeds 11-20 {CENTRALIZED}",
            ),
            "power_system_distributed": "power_system --seeds 1-10 --episodes 100 "
            "--eval-episodes 20 --set stabilized=false,true",
        }.items()
    }
)

#: Example 1's second-order screens and the settings they chose.
NEWTON_SCREEN = "example_1 --seeds 1,3,5,12 --steps 2000 --eval-episodes 0 --optimizer newton"
NEWTON = "--optimizer newton --newton-tau 1 --learning-rate 1e-2"
#: The follow-up's example (docs/second_order.md): its second- and first-order learning,
#: distributed and centralized, over seeds.
SECOND_ORDER_STUDY = "second_order --seeds 1-10 --eval-episodes 0 --set centralized=false,true"
DATA_FILES.update(
    {
        f"second_order/{name}.pkl": _study(name, sweep, "second_order")
        for name, sweep in {
            "second_order_newton": SECOND_ORDER_STUDY,
            "second_order_gradient": f"{SECOND_ORDER_STUDY} --optimizer gradient "
            "--learning-rate 1e-8",
            "second_order_newton_follow_up": "second_order --seeds 1-10 --eval-episodes 0 "
            "--newton-variant follow_up",
            # the first-order learning rate tuned by a sweep: decades, then half decades
            **{
                f"second_order_gradient_lr_{name}": "second_order --seeds 1-10 "
                "--eval-episodes 0 --optimizer gradient "
                f"--set learning_rate={rates} --set centralized=false,true"
                for name, rates in (("decades", "1e-7,1e-6,1e-5"), ("half_decades", "3e-7,3e-6"))
            },
            # second order on example 1 (docs/second_order.md): the screens that chose its
            # tau and learning rate, then 20 seeds as the first-order studies
            "example_1_newton_screen_coarse": f"{NEWTON_SCREEN} "
            "--set newton_tau=1e-3,1e-1,1e1 --set learning_rate=1e-4,1e-3,1e-2",
            "example_1_newton_screen_fine": f"{NEWTON_SCREEN} "
            "--set newton_tau=0.03,0.1,0.3,1 --set learning_rate=1e-2,3e-2",
            "example_1_distributed_newton": f"{EXAMPLE_1_STUDY} {NEWTON}",
            "example_1_centralized_newton": f"{EXAMPLE_1_STUDY} --centralized {NEWTON}",
        }.items()
    }
)

#: The OpenBLAS kernels of the study of reproducibility across machines
#: (docs/reproducibility.md), the one that wrote the other data files first.
KERNELS = ("Haswell", "SkylakeX", "Sandybridge", "Prescott")
#: That study: one sweep under each kernel.
DATA_FILES.update(
    {
        f"reproducibility/kernel_{kernel}.pkl": _study(
            f"kernel_{kernel}",
            "example_1 --seeds 1-20 --steps 2000 --eval-episodes 0",
            "reproducibility",
            f"OPENBLAS_CORETYPE={kernel}",
        )
        for kernel in KERNELS
    }
)

HEADER = """# Data: the full reproduction runs

Every file here was written by this repository's scripts with the command beside it (run
from the repository's root, on a 2-core machine; add `--overwrite` to replace a file that
exists) under OpenBLAS's Haswell kernel, unless its command sets another: prefix a
command with `OPENBLAS_CORETYPE=Haswell` to reproduce its file bit for bit on another
machine (docs/reproducibility.md). `python plotting/make_figures.py` draws the paper's
figures from them and `python plotting/data_manifest.py --write` rewrites this list.
The format of each file is described in docs/results.md. Wall
times are the ones the files record (the work itself, without Python's start-up; for a
study, its runs' training times summed, which 2 workers shared).

| file | command | wall time | size |
|---|---|---|---|
"""


def duration(seconds: float) -> str:
    """``seconds`` as minutes and seconds."""
    minutes, seconds = divmod(seconds, 60)
    return f"{int(minutes)} min {seconds:.0f} s"


def data_kind(result: dict[str, Any]) -> str:
    """What a result file holds: its ``kind``, and for a training result its example
    (``example_1_training``, ``power_system_training``); training files written before
    results named their example are told apart by their config (example 1 trains for a
    number of steps, the power system for a number of episodes)."""
    kind = str(result.get("kind"))
    if kind != "training":
        return kind
    example = result.get("example")
    config = result.get("config")
    if example is None and isinstance(config, dict):
        example = (
            "example_1" if "steps" in config else "power_system" if "episodes" in config else None
        )
    return f"{example}_training" if example else "training"


def load_data_file(path: Path, kind: str) -> dict[str, Any]:
    """The result file ``path``, which must hold ``kind`` data (:func:`data_kind`).

    Raises
    ------
    ResultFileError
        If it cannot be read or holds something else.
    """
    result = load_result(path)
    found = data_kind(result)
    if found != kind:
        raise ResultFileError(f"{path} holds {found} data, not the {kind} data expected there")
    return result


def data_files(data: Path) -> list[dict]:
    """Every data file of :data:`DATA_FILES`: its name, command, and if it exists its
    result (loaded and checked) and size in MB; a faulty file ends the script with a
    one-line error."""
    files = []
    for name, (kind, command) in DATA_FILES.items():
        path = data / name
        entry = {"name": name, "command": command, "result": None, "size_mb": None}
        if path.exists():
            try:
                entry["result"] = load_data_file(path, kind)
                wall = entry["result"].get("wall_time_s")
                if not isinstance(wall, int | float):
                    raise ResultFileError(f"{path} records no wall_time_s")
            except ResultFileError as err:
                fail(str(err), EXIT_CODES["bad input"])
            entry["size_mb"] = path.stat().st_size / 2**20
        files.append(entry)
    return files


def check_data_folder(data: Path) -> None:
    """End the script with a one-line error (exit code 2) unless ``data`` is a folder
    holding at least one data file."""
    if not data.is_dir():
        fail(f"--data {data} is not a folder", EXIT_CODES["bad input"])
    if not any((data / name).exists() for name in DATA_FILES):
        fail(f"--data {data} holds none of the data files", EXIT_CODES["bad input"])


def manifest(data: Path) -> str:
    rows = []
    for f in data_files(data):
        if f["result"] is None:
            rows.append(f"| `{f['name']}` | `{f['command']}` | not yet made | |")
            continue
        wall = duration(float(f["result"]["wall_time_s"]))
        rows.append(f"| `{f['name']}` | `{f['command']}` | {wall} | {f['size_mb']:.1f} MB |")
    total = sum(p.stat().st_size for p in data.rglob("*.pkl")) / 2**20
    return HEADER + "\n".join(rows) + f"\n\nTotal: {total:.1f} MB.\n"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="data_manifest.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=ROOT / "data", help="data folder; default the repository's"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="replace DATA/README.md with the list instead of printing it",
    )
    args = parser.parse_args(argv)
    check_data_folder(args.data)
    text = manifest(args.data)
    if not args.write:
        print(text, end="")
        return 0
    try:
        write_atomic(args.data / "README.md", text.encode(), replace=True)
    except (OutputError, OSError) as err:
        fail(f"cannot write {args.data / 'README.md'}: {err}", EXIT_CODES["bad input"])
    print(f"wrote {args.data / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
