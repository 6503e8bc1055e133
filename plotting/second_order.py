"""The follow-up's example over seeds (docs/second_order.md): the mean stage cost of the
first and the last 200 steps of every variant's runs, ours (the study summaries in
``data/second_order/``) beside the follow-up's published seeds (their result files, when
``--release-data DIR`` gives them).

    python plotting/second_order.py
    python plotting/second_order.py --release-data ../shared/second_order_release
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from marl_dmpc.cli import OneLineArgumentParser, fail
from marl_dmpc.driver import EXIT_CODES
from marl_dmpc.legacy import load_second_order_release
from marl_dmpc.results import ResultFileError, load_result

ROOT = Path(__file__).resolve().parent.parent
#: The studies: (summary file under data/, the update).
STUDIES = (("second_order/second_order_newton.pkl", "second order"),)
STUDIES += (("second_order/second_order_gradient.pkl", "first order"),)
#: Steps at each end of a run whose mean stage cost is compared.
WINDOW = 200


def _ends(costs: np.ndarray, block: int) -> tuple[float, float]:
    """Mean cost of the first and the last :data:`WINDOW` steps of per-block means."""
    blocks = WINDOW // block
    return float(np.mean(costs[:blocks])), float(np.mean(costs[-blocks:]))


def ours(data: Path) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(learner, update) -> every completed run's (first, last) mean stage cost."""
    found: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name, update in STUDIES:
        path = data / name
        if not path.exists():
            continue
        summary = load_result(path)
        for run in summary["runs"]:
            if run["status"] != "completed":
                continue
            steps = np.asarray(run["curves"]["step"])
            block = int(steps[1] - steps[0])
            learner = "centralized" if run["config"]["centralized"] else "distributed"
            found.setdefault((learner, update), []).append(
                _ends(np.asarray(run["curves"]["stage_cost"]), block)
            )
    return found


def published(folder: Path) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """The same of the follow-up's result files (``{cent,dist}_{fo,so}_seed_S_...``)."""
    found: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for path in sorted(folder.glob("*_seed_*_results_*.pkl")):
        learner, update = path.name.split("_")[:2]
        key = (
            "centralized" if learner == "cent" else "distributed",
            "second order" if update == "so" else "first order",
        )
        costs = load_second_order_release(path)["costs"]
        found.setdefault(key, []).append(_ends(costs, 1))
    return found


def _cell(values: list[tuple[float, float]], end: int) -> str:
    if not values:
        return "–"
    v = np.array([pair[end] for pair in values])
    return f"{np.median(v):.3g} ({v.min():.3g} to {v.max():.3g})"


def table(mine: dict[Any, list], theirs: dict[Any, list]) -> str:
    """The Markdown table of both."""
    rows = [
        "| learner, update | runs | first 200 steps, median (range) | last 200 steps | "
        "published seeds | first 200 | last 200 |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key, []), theirs.get(key, [])
        rows.append(
            f"| {', '.join(key)} | {len(a)} | {_cell(a, 0)} | {_cell(a, 1)} | {len(b)} "
            f"| {_cell(b, 0)} | {_cell(b, 1)} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="second_order.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="data folder")
    parser.add_argument(
        "--release-data",
        type=Path,
        default=None,
        help="a folder of the follow-up's result files, drawn beside ours",
    )
    args = parser.parse_args(argv)
    try:
        mine = ours(args.data)
        theirs = published(args.release_data) if args.release_data else {}
    except ResultFileError as err:
        fail(str(err), EXIT_CODES["bad input"])
    if args.release_data and not theirs:
        fail(f"--release-data {args.release_data} holds no result file of the follow-up")
    print(table(mine, theirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
