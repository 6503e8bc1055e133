"""Regenerate every figure of the paper from the result pickles in ``data/`` (PNG and PDF
into ``figures/``).

    python plotting/make_figures.py                  # all figures, mathtext
    python plotting/make_figures.py --usetex         # typeset with LaTeX, if installed
    python plotting/make_figures.py --only power_boxplots --data other_data/

A figure whose data file is missing is skipped with a note. The release's original
positional pickles can be plotted too: ``--release-example-1 FILE`` (a training file) and
``--release-power FILE``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt

from marl_dmpc.cli import OneLineArgumentParser, fail
from marl_dmpc.legacy import load_release_file
from marl_dmpc.results import ResultFileError, load_result
from reproduction.plotting import figures

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
        ("example_1/distributed_eval.pkl", "[example_1/baselines.pkl]"),
        figures.example_1_evaluation,
    ),
    "example_1_dual_error": (("example_1/admm_dual_error.pkl",), figures.example_1_dual_error),
    "power_td_and_cost": (
        ("power_system/distributed.pkl", "[power_system/centralized.pkl]"),
        figures.power_td_and_cost,
    ),
    "power_states": (("power_system/distributed.pkl",), figures.power_states),
    "power_parameters": (("power_system/distributed.pkl",), figures.power_parameters),
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
    optional = name.startswith("[")
    path = data / name.strip("[]")
    if optional and not path.exists():
        return None
    return load_result(path)


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
        "--usetex", action="store_true", help="typeset text with LaTeX (needs a LaTeX installation)"
    )
    parser.add_argument(
        "--release-example-1", type=Path, help="also plot a release example-1 training pickle"
    )
    parser.add_argument(
        "--release-power", type=Path, help="also plot a release power-system training pickle"
    )
    args = parser.parse_args(argv)
    plt.rcParams.update({"text.usetex": args.usetex, "font.size": 10})
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        fail(f"cannot create {args.out}: {err.strerror}")
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
    for name, build in jobs:
        try:
            figure = build()
        except (ResultFileError, KeyError) as err:
            fail(f"{name}: {err}")
        for suffix in ("png", "pdf"):
            figure.savefig(args.out / f"{name}.{suffix}", dpi=150)
        plt.close(figure)
        print(f"wrote {args.out / name}.png and .pdf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
