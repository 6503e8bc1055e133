"""The follow-up's example over seeds (docs/second_order.md): the mean stage cost of the
first and the last 200 steps of every variant's runs, ours (the study summaries in
``data/second_order/``) beside the follow-up's published seeds (their result files, when
``--release-data DIR`` gives them), and a figure of TD error and stage cost over the runs.

    python plotting/second_order.py
    python plotting/second_order.py --release-data ../shared/second_order_release
    python plotting/second_order.py --release-data ../shared/second_order_release --write

``--write`` replaces ``figures/second_order.png`` and the tables between this script's
markers in README.md and docs/second_order.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from marl_dmpc.cli import OneLineArgumentParser, fail
from marl_dmpc.driver import EXIT_CODES
from marl_dmpc.legacy import load_second_order_release
from marl_dmpc.results import ResultFileError, load_result
from reproduction.plotting.results_table import rewrite_block, write_figure
from reproduction.plotting.second_order_example_1 import (
    LEARNERS,
    completed,
    example_1_table,
    newton_settings,
    screen_table,
)

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "python plotting/second_order.py --release-data ../shared/second_order_release --write"
README_MARKERS = ("<!-- second order: begin -->", "<!-- second order: end -->")
DOCS_MARKERS = ("<!-- second order table: begin -->", "<!-- second order table: end -->")
EXAMPLE_1_MARKERS = (
    "<!-- example 1 second order: begin -->",
    "<!-- example 1 second order: end -->",
)
#: The study summaries under data/: second order, first order at the follow-up's
#: learning rate, first order at the rates of the learning-rate sweep.
STUDIES = (
    "second_order/second_order_newton.pkl",
    "second_order/second_order_newton_follow_up.pkl",
    "second_order/second_order_gradient.pkl",
    "second_order/second_order_gradient_lr_decades.pkl",
    "second_order/second_order_gradient_lr_half_decades.pkl",
)
#: The follow-up's learning rates (its release), which label its published seeds.
PUBLISHED_RATES = {"so": 1e-4, "fo": 1e-8}
#: Steps at each end of a run whose mean stage cost is compared.
WINDOW = 200
#: Steps per point of the figure's curves (the summaries' blocks of a 2,000-step run).
BLOCK = 10

Key = tuple[str, str]  # (learner, update)


def update_label(optimizer: str, learning_rate: float, variant: str = "exact") -> str:
    """How a variant reads in the tables: ``second order, lr 0.0001``, ``first order, lr
    1e-08``, ``second order (the release's scaling), lr 0.0001`` (``newton_variant`` =
    ``"follow_up"``)."""
    update = "second order" if optimizer == "newton" else "first order"
    if optimizer == "newton" and variant == "follow_up":
        update += " (the release's scaling)"
    return f"{update}, lr {learning_rate:g}"


def _ends(costs: np.ndarray, block: int) -> tuple[float, float]:
    """Mean cost of the first and the last :data:`WINDOW` steps of per-block means."""
    blocks = WINDOW // block
    return float(np.mean(costs[:blocks])), float(np.mean(costs[-blocks:]))


def _block_means(values: np.ndarray, block: int) -> np.ndarray:
    n = len(values) // block
    return values[: n * block].reshape(n, block).mean(axis=1)


def our_runs(data: Path) -> dict[Key, list[dict[str, Any]]]:
    """(learner, update) -> the summaries' runs (every status) of that variant."""
    found: dict[Key, list[dict[str, Any]]] = {}
    for name in STUDIES:
        path = data / name
        if not path.exists():
            continue
        for run in load_result(path)["runs"]:
            config = run["config"]
            key = (
                "centralized" if config["centralized"] else "distributed",
                update_label(
                    config["optimizer"],
                    float(config["learning_rate"]),
                    config.get("newton_variant", "exact"),
                ),
            )
            found.setdefault(key, []).append(run)
    return found


def our_ends(runs: dict[Key, list[dict[str, Any]]]) -> dict[Key, list[tuple[float, float]]]:
    """(learner, update) -> every completed run's (first, last) mean stage cost, from
    :func:`our_runs`."""
    found = {}
    for key, variant in runs.items():
        found[key] = []
        for run in completed(variant):
            steps = np.asarray(run["curves"]["step"])
            block = int(steps[1] - steps[0])
            found[key].append(_ends(np.asarray(run["curves"]["stage_cost"]), block))
    return found


def published_runs(folder: Path) -> dict[Key, list[dict[str, np.ndarray]]]:
    """(learner, update) -> the follow-up's result files (``{cent,dist}_{fo,so}_seed_S_...``)
    as :func:`~marl_dmpc.legacy.load_second_order_release` reads them."""
    found: dict[Key, list[dict[str, np.ndarray]]] = {}
    for path in sorted(folder.glob("*_seed_*_results_*.pkl")):
        learner, update = path.name.split("_")[:2]
        key = (
            "centralized" if learner == "cent" else "distributed",
            update_label(
                "newton" if update == "so" else "gradient",
                PUBLISHED_RATES[update],
                # its distributed step has the release's scaling (docs/second_order.md)
                "follow_up" if learner == "dist" else "exact",
            ),
        )
        found.setdefault(key, []).append(load_second_order_release(path))
    return found


def published_ends(
    runs: dict[Key, list[dict[str, np.ndarray]]],
) -> dict[Key, list[tuple[float, float]]]:
    """The same as :func:`our_ends` of the follow-up's published seeds
    (:func:`published_runs`)."""
    return {key: [_ends(run["costs"], 1) for run in variant] for key, variant in runs.items()}


def best_first_order(mine: dict[Key, list[tuple[float, float]]], runs: dict[Key, list]) -> dict:
    """learner -> the first-order update label whose completed runs' median last-200-step
    cost is lowest among those with every run completed (None if there is none)."""
    best: dict[str, str | None] = {}
    for learner in LEARNERS:
        candidates = [
            (float(np.median([end for _, end in mine[key]])), key[1])
            for key in mine
            if key[0] == learner
            and key[1].startswith("first order")
            and mine[key]
            and len(mine[key]) == len(runs[key])
        ]
        best[learner] = min(candidates)[1] if candidates else None
    return best


def _cell(values: list[tuple[float, float]], end: int) -> str:
    if not values:
        return "–"
    v = np.array([pair[end] for pair in values])
    return f"{np.median(v):.3g} ({v.min():.3g} to {v.max():.3g})"


def _order(key: Key) -> tuple:
    learner, update = key
    rate = float(update.rsplit(" ", 1)[1])
    return (learner, update.startswith("first"), rate, update)


def table(mine: dict[Key, list], theirs: dict[Key, list], runs: dict[Key, list]) -> str:
    """docs/second_order.md's table: every variant, ours beside the published seeds."""
    rows = [
        "| learner | update | runs | diverged | first 200 steps, median (range) "
        "| last 200 steps | published seeds | first 200 | last 200 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(set(mine) | set(theirs), key=_order):
        a, b = mine.get(key, []), theirs.get(key, [])
        planned = len(runs.get(key, []))
        rows.append(
            f"| {key[0]} | {key[1]} | {planned} | {planned - len(a)} | {_cell(a, 0)} "
            f"| {_cell(a, 1)} | {len(b)} | {_cell(b, 0)} | {_cell(b, 1)} |"
        )
    return "\n".join(rows)


def readme_table(mine: dict[Key, list], theirs: dict[Key, list], runs: dict[Key, list]) -> str:
    """README.md's table: the follow-up's variants and the best first-order rate."""
    best = best_first_order(mine, runs)
    rows = [
        "| learner | update | ours: last 200 steps, median (range) | published seeds 1-3 |",
        "|---|---|---|---|",
    ]
    for key in sorted(set(mine) | set(theirs), key=_order):
        tuned = key[1] == best.get(key[0])
        if key not in theirs and not tuned and not key[1].startswith("second"):
            continue
        name = f"{key[1]} (the best of the sweep)" if tuned and key not in theirs else key[1]
        rows.append(
            f"| {key[0]} | {name} | {_cell(mine.get(key, []), 1)} "
            f"| {_cell(theirs.get(key, []), 1)} |"
        )
    return "\n".join(rows)


def draw(runs: dict[Key, list], theirs: dict[Key, list], best: dict[str, str | None]):
    """|TD error| and stage cost over the runs, one column per learner: our second order,
    first order at the follow-up's rate and at the best rate of the sweep (median and
    range of the completed runs), and the follow-up's published seeds as thin lines."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True, sharey="row")
    colours = {
        update_label("newton", 1e-4): "C0",
        update_label("newton", 1e-4, "follow_up"): "C3",
        update_label("gradient", 1e-8): "C1",
    }
    for c, learner in enumerate(LEARNERS):
        updates = [u for u in colours if (learner, u) in runs or (learner, u) in theirs]
        if best.get(learner) and best[learner] not in updates:
            updates.append(best[learner])
        for update in updates:
            colour = colours.get(update, "C2")
            done = completed(runs.get((learner, update), []))
            for row, key in enumerate(("abs_td_error", "stage_cost")):
                ax = axes[row, c]
                if done:
                    length = min(len(r["curves"]["step"]) for r in done)
                    x = np.asarray(done[0]["curves"]["step"][:length])
                    y = np.array([np.asarray(r["curves"][key][:length]) for r in done])
                    ax.plot(x, np.median(y, axis=0), colour, label=f"{update}, ours (median)")
                    ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=colour, alpha=0.2)
                for k, run in enumerate(theirs.get((learner, update), [])):
                    values = np.abs(run["td_errors"]) if row == 0 else run["costs"]
                    y = _block_means(values, BLOCK)
                    ax.plot(
                        BLOCK * np.arange(1, len(y) + 1),
                        y,
                        colour,
                        lw=0.6,
                        ls="--",
                        label=f"{update}, published seeds" if k == 0 else None,
                    )
        axes[0, c].set_title(f"{learner} (ours: median and range over seeds)")
        axes[1, c].set_xlabel("step")
    axes[0, 0].set_ylabel(f"|TD error|, mean per {BLOCK} steps")
    axes[1, 0].set_ylabel(f"stage cost, mean per {BLOCK} steps")
    for ax in axes.flat:
        ax.set_yscale("log")
    for ax in axes[1]:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="second_order.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="data folder")
    parser.add_argument(
        "--release-data",
        type=Path,
        default=None,
        help="a folder of the follow-up's result files, drawn beside ours",
    )
    parser.add_argument(
        "--figures", type=Path, default=ROOT / "figures", help="where the figure goes"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="replace figures/second_order.png and the tables in README.md and "
        "docs/second_order.md",
    )
    args = parser.parse_args(argv)
    try:
        runs = our_runs(args.data)
        theirs_runs = published_runs(args.release_data) if args.release_data else {}
        example_1, screens = example_1_table(args.data), screen_table(args.data)
        settings = newton_settings(args.data)
    except ResultFileError as err:
        fail(str(err), EXIT_CODES["bad input"])
    if args.release_data and not theirs_runs:
        fail(f"--release-data {args.release_data} holds no result file of the follow-up")
    mine, theirs = our_ends(runs), published_ends(theirs_runs)
    docs = table(mine, theirs, runs)
    readme = (
        f"{readme_table(mine, theirs, runs)}\n\nExample 1 over 20 seeds of 20,000 steps, "
        f"final costs as in the table of the robustness section{settings}:\n\n{example_1}"
    )
    print(docs, example_1, screens, sep="\n\n")
    if not args.write:
        return 0
    figure = draw(runs, theirs_runs, best_first_order(mine, runs))
    write_figure(figure, args.figures / "second_order.png")
    rewrite_block(ROOT / "README.md", readme, README_MARKERS, COMMAND)
    rewrite_block(ROOT / "docs" / "second_order.md", docs, DOCS_MARKERS, COMMAND)
    rewrite_block(
        ROOT / "docs" / "second_order.md", f"{example_1}\n\n{screens}", EXAMPLE_1_MARKERS, COMMAND
    )
    print("rewrote the tables in README.md and docs/second_order.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
