"""Regenerate every figure of the paper from the result pickles in ``data/`` (PNG and PDF
into ``figures/``).

    python plotting/make_figures.py --overwrite      # all figures, mathtext
    python plotting/make_figures.py --usetex --out figures_tex
    python plotting/make_figures.py --only power_boxplots --data other_data/ --out other/

A figure whose data file is missing is skipped with a note; a data file that holds
something else than its name says (say, power-system data under ``example_1/``) ends the
script with a one-line error naming it. Existing figure files are replaced only with
``--overwrite``. The release's original
positional pickles can be plotted too: ``--release-data DIR`` draws every figure whose data
a release data folder holds (``release_<figure>``; :mod:`.release_data`) and ours
beside the release's where both exist (``compare_<name>``),
``--release-example-1 FILE`` (a training file) and ``--release-power FILE`` one file's.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt

from marl_dmpc.cli import OneLineArgumentParser, fail
from marl_dmpc.driver import EXIT_CODES
from marl_dmpc.files import OutputError, Outputs
from marl_dmpc.legacy import load_release_file
from marl_dmpc.results import ResultFileError
from reproduction.plotting import figures
from reproduction.plotting.data_manifest import DATA_FILES, load_data_file
from reproduction.plotting.release_data import read_release_folder

#: The formats every figure is written in.
FORMATS = ("png", "pdf")

#: Every figure: name -> (data files under --data, what makes it from the loaded files).
#: A file in brackets is optional (overlaid if present).
FIGURES: dict[str, tuple[tuple[str, ...], Callable]] = {
    "example_1_training_states": (
        ("example_1/distributed.pkl",),
        figures.example_1_training_states,
    ),
    "example_1_td_and_cost": (
        ("example_1/distributed.pkl", "[example_1/centralized.pkl]"),
        figures.example_1_td_and_cost,
    ),
    "example_1_parameters": (
        ("example_1/distributed.pkl", "[example_1/centralized.pkl]"),
        figures.example_1_parameters,
    ),
    "example_1_evaluation": (
        (
            "example_1/distributed_eval.pkl",
            "[example_1/baselines.pkl]",
            "[example_1/distributed_eval_release_episode.pkl]",
        ),
        figures.example_1_evaluation,
    ),
    "power_td_and_cost": (
        ("power_system/distributed.pkl", "[power_system/centralized.pkl]"),
        figures.power_td_and_cost,
    ),
    "power_states": (("power_system/distributed.pkl",), figures.power_states),
    "power_parameters": (("power_system/distributed.pkl",), figures.power_parameters),
    "admm_dual_error": (
        ("power_system/admm_dual_error.pkl", "[example_1/admm_dual_error.pkl]"),
        figures.admm_dual_error,
    ),
    "power_boxplots": (
        (
            "power_system/distributed_eval.pkl",
            "[power_system/centralized_eval.pkl]",
            "[power_system/baselines.pkl]",
        ),
        lambda d, c, b: figures.power_boxplots(
            [("learned distributed", d)] + ([("learned centralized", c)] if c else []), b
        ),
    ),
}


def _load(data: Path, name: str) -> dict | None:
    """The data file ``name`` of :data:`FIGURES` (None if optional and missing), checked
    to hold the data its name says."""
    optional, name = name.startswith("["), name.strip("[]")
    path = data / name
    if optional and not path.exists():
        return None
    return load_data_file(path, DATA_FILES[name][0])


#: This repository's data beside the release's, where both exist: name -> (our data
#: file under --data, the release's data file, what draws the two).
RELEASE = ("this repository", "release")
COMPARISONS: dict[str, tuple[str, str, Callable]] = {
    **{
        f"example_1_{figure}_{mode}": (
            f"example_1/{mode}.pkl",
            f"example_1/{mode}.pkl",
            lambda ours, release, draw=draw: draw(ours, release, labels=RELEASE),
        )
        for figure, draw in (
            ("td_and_cost", figures.example_1_td_and_cost),
            ("parameters", figures.example_1_parameters),
        )
        for mode in ("distributed", "centralized")
    },
    **{
        f"{name.replace('/', '_').removesuffix('.pkl')}": (
            name,
            name,
            lambda ours, release, name=name: figures.episode_costs_beside(ours, release, name),
        )
        for name in (
            "example_1/distributed_eval.pkl",
            "example_1/baselines.pkl",
            "power_system/distributed_eval.pkl",
            "power_system/centralized_eval.pkl",
            "power_system/baselines.pkl",
        )
    },
    # our seed-1 policy and the release's (the paper's curve), both on the paper's episode
    "example_1_evaluation_release_episode": (
        "example_1/distributed_eval_release_episode.pkl",
        "example_1/distributed_eval.pkl",
        lambda ours, release: figures.example_1_evaluation(
            ours, None, release, "the release's policies (the paper's curve)", "ours, seed 1"
        ),
    ),
    "power_system_baselines_release": (
        "power_system/baselines_release.pkl",
        "power_system/baselines.pkl",
        lambda ours, release: figures.episode_costs_beside(
            ours, release, "power system: both in the release's formulation"
        ),
    ),
}


def comparison_jobs(
    release: dict[str, dict], data: Path
) -> list[tuple[str, Callable[[], plt.Figure]]]:
    """``compare_<name>`` of every :data:`COMPARISONS` entry whose data file both
    ``data`` and the release folder's files (``release``) hold."""
    jobs: list[tuple[str, Callable[[], plt.Figure]]] = []
    for name, (ours, theirs, make) in COMPARISONS.items():
        if theirs in release and (data / ours).exists():
            jobs.append(
                (
                    f"compare_{name}",
                    lambda ours=ours, theirs=theirs, make=make: make(
                        _load(data, ours), release[theirs]
                    ),
                )
            )
    return jobs


def release_jobs(
    folder: Path, names: list[str], data: Path | None = None
) -> list[tuple[str, Callable[[], plt.Figure]]]:
    """The figures ``names`` whose required data the release data folder ``folder`` holds,
    as jobs ``release_<figure>``, and with ``data`` (our data folder) the figures of ours
    beside the release's (:func:`comparison_jobs`); a folder that cannot be read ends
    the script."""
    bad_input = EXIT_CODES["bad input"]
    if not folder.is_dir():
        fail(f"--release-data {folder} is not a folder", bad_input)
    try:
        release = read_release_folder(folder)
    except ResultFileError as err:
        fail(str(err), bad_input)
    if not release:
        fail(f"--release-data {folder} holds none of the release's data files", bad_input)
    jobs: list[tuple[str, Callable[[], plt.Figure]]] = []
    for name in names:
        files, make = FIGURES[name]
        if any(not f.startswith("[") and f not in release for f in files):
            continue
        loaded = [release.get(f.strip("[]")) for f in files]
        jobs.append((f"release_{name}", lambda make=make, loaded=loaded: make(*loaded)))
    if data is not None:
        jobs += comparison_jobs(release, data)
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="make_figures.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="data folder; default data")
    parser.add_argument(
        "--out", type=Path, default=Path("figures"), help="figure folder; default figures"
    )
    parser.add_argument(
        "--only",
        choices=sorted(FIGURES),
        action="append",
        help="make only this figure (repeatable)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing figure files in --out"
    )
    parser.add_argument(
        "--usetex", action="store_true", help="typeset text with LaTeX (needs a LaTeX installation)"
    )
    parser.add_argument(
        "--release-data",
        type=Path,
        help="also draw every figure whose data this release data folder holds",
    )
    parser.add_argument(
        "--release-example-1", type=Path, help="also plot a release example-1 training pickle"
    )
    parser.add_argument(
        "--release-power", type=Path, help="also plot a release power-system training pickle"
    )
    args = parser.parse_args(argv)
    plt.rcParams.update({"text.usetex": args.usetex, "font.size": 10})
    bad_input = EXIT_CODES["bad input"]
    if not args.data.is_dir():
        fail(f"--data {args.data} is not a folder", bad_input)
    jobs: list[tuple[str, Callable[[], plt.Figure]]] = []
    for name in args.only or FIGURES:
        files, make = FIGURES[name]
        required = [f for f in files if not f.startswith("[")]
        missing = [f for f in required if not (args.data / f).exists()]
        if missing:
            print(f"skipped {name}: no {', '.join(str(args.data / f) for f in missing)}")
            continue
        jobs.append(
            (name, lambda files=files, make=make: make(*(_load(args.data, f) for f in files)))
        )
    release = [
        (
            args.release_example_1,
            "example_1_training",
            ("example_1_training_states", "example_1_parameters"),
        ),
        (
            args.release_power,
            "power_system_training",
            ("power_td_and_cost", "power_states", "power_parameters"),
        ),
    ]
    for path, layout, names in release:
        if path is None:
            continue
        for name in names:
            make = FIGURES[name][1]
            jobs.append(
                (
                    f"release_{name}",
                    lambda path=path, layout=layout, make=make: make(
                        load_release_file(path, layout)
                    ),
                )
            )
    if args.release_data is not None:
        # ours beside the release's: all of them, unless --only picks figures
        beside = None if args.only else args.data
        jobs += release_jobs(args.release_data, args.only or list(FIGURES), beside)
    outputs = Outputs(args.overwrite)
    try:  # every figure file is checked before anything is drawn
        for name, _ in jobs:
            for suffix in FORMATS:
                outputs.claim(args.out / f"{name}.{suffix}", "--out")
    except OutputError as err:
        fail(str(err), bad_input)
    for name, build in jobs:
        try:
            figure = build()
        except ResultFileError as err:
            fail(f"{name}: {err}", bad_input)
        except KeyError as err:
            fail(f"{name}: a data file lacks {err}", bad_input)
        except (IndexError, ValueError, TypeError) as err:  # malformed arrays
            fail(f"{name}: the data files do not fit the figure ({err})", bad_input)
        for suffix in FORMATS:
            buffer = io.BytesIO()
            figure.savefig(buffer, format=suffix, dpi=150)
            outputs.write(args.out / f"{name}.{suffix}", buffer.getvalue())
        plt.close(figure)
        print(f"wrote {args.out / name}.png and .pdf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
