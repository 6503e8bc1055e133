"""Robustness across seeds: the sweep summaries in ``data/robustness/`` as the table and
figures of README.md's "Robustness across seeds" section and the table of safeguard
combinations in docs/robustness.md.

    python plotting/robustness.py           # print the tables
    python plotting/robustness.py --write   # rewrite them in README.md and docs/robustness.md
                                            # and draw figures/robustness_*.png

Each summary is written by ``python -m marl_dmpc.sweep summarize`` from a sweep whose
command data/README.md lists. The paper's numbers (docs/reproduction.md) are the only
numbers written here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from marl_dmpc.cli import OneLineArgumentParser, fail
from marl_dmpc.driver import EXIT_CODES
from marl_dmpc.sweep.report import curves_figure, outcomes, summary_runs
from marl_dmpc.sweep.summary import SummaryError, load_summary
from reproduction.plotting.results_table import rewrite_block, write_figure

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "python plotting/robustness.py --write"
#: README.md's block, and docs/robustness.md's.
README_MARKERS = ("<!-- robustness: begin -->", "<!-- robustness: end -->")
DOCS_MARKERS = ("<!-- safeguards: begin -->", "<!-- safeguards: end -->")

#: The studies of the README's table: summary file -> (example, row title, the paper's
#: evaluation cost of that learner).
STUDIES = {
    "example_1_distributed_default.pkl": ("example_1", "distributed, paper's settings", "~10.1"),
    "example_1_distributed_stabilized.pkl": ("example_1", "distributed, --stabilized", "~10.1"),
    "example_1_centralized_default.pkl": ("example_1", "centralized, paper's settings", "–"),
    "power_system_distributed.pkl": ("power_system", "distributed", "~274"),
}
#: The studies of the safeguards' combinations (docs/robustness.md), beside example 1's
#: distributed studies above.
SAFEGUARDS = [
    "example_1_safeguards_td_clip_5.pkl",
    "example_1_safeguards_td_clip_10.pkl",
    "example_1_screen_no_td_clip.pkl",
]
#: What each study's evaluation is, by example.
EVALUATION = {
    "example_1": "mean cost of 20 evaluation episodes of 100 steps",
    "power_system": "mean cost of 20 evaluation episodes of 100 steps",
}
TITLES = {"example_1": "Example 1", "power_system": "Power system"}


#: The config fields of the safeguards (docs/robustness.md).
SAFEGUARD_FIELDS = ("td_clip", "max_update", "parameter_box")
#: How a configuration label of a sweep reads in the tables.
LABELS = {"default": "", "stabilized=False": "paper's settings", "stabilized=True": "--stabilized"}
HEADER = (
    "| example | learner, settings | length | runs | diverged | failed "
    "| final training cost, median [IQR] | final evaluation cost, median [IQR] "
    "| paper, evaluation |\n|---|---|---|---|---|---|---|---|---|"
)


def run_length(config: dict[str, Any]) -> str:
    """A run's length as its config sets it: steps (example 1) or episodes."""
    if "episodes" in config:
        return f"{config['episodes']:,} episodes"
    return f"{config.get('steps', 0):,} steps"


def _row_name(title: str, label: str) -> str:
    """A study's row: its title and how its sweep's configuration label reads."""
    return ", ".join(part for part in (title, LABELS.get(label, label)) if part)


def _quartiles(values: list[float]) -> str:
    if not values:
        return "–"
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return f"{median:.3g} [{q25:.3g}, {q75:.3g}]"


def safeguards(config: dict[str, Any]) -> str:
    """The safeguards a run's config switches on, e.g. ``td_clip 2, max_update 0.03``."""
    on = [f"{name} {config.get(name, 0):g}" for name in SAFEGUARD_FIELDS if config.get(name)]
    return ", ".join(on) or "none (the paper's learning)"


def acted(runs: list[dict[str, Any]]) -> str:
    """How the safeguards acted in ``runs`` (which ended, diverged ones included): the
    median number of steps whose TD error was clipped (and the share of them among the
    first 1,000 steps); the runs in which the cap acted on some update; the runs in
    which some entry reached the box."""
    counts = [r.get("safeguards_acted", {}) for r in runs]
    config = runs[0]["config"]
    parts = []
    if config.get("td_clip"):
        clipped = [c.get("td_clip", 0) for c in counts]
        early = sum(c.get("td_clip_early", 0) for c in counts) / max(1, sum(clipped))
        where = f" ({100 * early:.0f} % in the first 1,000)" if sum(clipped) else ""
        parts.append(f"{np.median(clipped):.0f} clipped steps{where}")
    for name, what in (("max_update", "cap"), ("parameter_box", "box")):
        if config.get(name):
            n = sum(c.get(name, 0) > 0 for c in counts)
            parts.append(f"{what} in {n} run{'' if n == 1 else 's'}")
    return ", ".join(parts) or "–"


def rows(
    summary: dict[str, Any],
    example: str,
    title: str | None,
    paper: str,
    with_acted: bool = False,
) -> list[str]:
    """Markdown rows of one study (:data:`HEADER`): per configuration, the runs that
    ended, how many diverged or failed, and the final training and evaluation costs
    (median [IQR] over the completed runs). Without a ``title``, a row is named by its
    safeguards."""
    planned, by_label = summary_runs(summary)
    lines = []
    for label, runs in by_label.items():
        if not runs:
            continue
        ended = outcomes(runs)
        name = safeguards(runs[0]["config"]) if title is None else _row_name(title, label)
        lines.append(
            f"| {TITLES[example]} | {name} | {run_length(runs[0]['config'])} "
            f"| {len(runs)}/{planned[label]} "
            f"| {ended.diverged} | {ended.failed} "
            f"| {_quartiles(ended.training)} "
            f"| {_quartiles(ended.evaluation)} | {paper} |"
            + (f" {acted(runs)} |" if with_acted else "")
        )
    return lines


def load_studies(folder: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """The summaries ``names`` that exist in ``folder`` (a faulty one ends the script)."""
    studies = {}
    for name in names:
        path = folder / name
        if path.exists():
            try:
                studies[name] = load_summary(path)
            except SummaryError as err:
                fail(str(err), EXIT_CODES["bad input"])
    return studies


def readme_table(studies: dict[str, dict[str, Any]]) -> str:
    """README.md's table, with a note for every study not made yet."""
    lines = [HEADER]
    for name, (example, title, paper) in STUDIES.items():
        if name in studies:
            lines += rows(studies[name], example, title, paper)
    missing = [f"`data/robustness/{name}`" for name in STUDIES if name not in studies]
    notes = [
        "",
        "Final training cost: mean stage cost of the last 1,000 steps (example 1) or mean "
        "episode cost of the last 10 episodes (power system); final evaluation cost: "
        "the final policy's mean cost over 20 evaluation episodes of 100 steps, episode "
        "e with the noise of seed e. Medians and quartiles are over the completed runs.",
    ]
    notes += stabilized_cost(studies)
    if missing:
        notes += ["", f"Not made yet: {', '.join(missing)}."]
    return "\n".join(lines + notes)


def _completed_medians(runs: list[dict[str, Any]]) -> tuple[float, float]:
    ended = outcomes(runs)
    return float(np.median(ended.training)), float(np.median(ended.evaluation))


def stabilized_cost(studies: dict[str, dict[str, Any]]) -> list[str]:
    """A sentence per example on how far --stabilized's median final costs are from
    those of the paper's learning's completed runs (distributed), where both exist."""
    pairs = {}
    default, stabilized = (
        "example_1_distributed_default.pkl",
        "example_1_distributed_stabilized.pkl",
    )
    if default in studies and stabilized in studies:
        pairs["example 1"] = (studies[default]["runs"], studies[stabilized]["runs"])
    power = studies.get("power_system_distributed.pkl")
    if power is not None:
        by_label = summary_runs(power)[1]
        if "stabilized=False" in by_label and "stabilized=True" in by_label:
            pairs["the power system"] = (by_label["stabilized=False"], by_label["stabilized=True"])
    lines = []
    for name, (paper_runs, stabilized_runs) in pairs.items():
        (t0, e0), (t1, e1) = _completed_medians(paper_runs), _completed_medians(stabilized_runs)
        idle = not any(any(r.get("safeguards_acted", {}).values()) for r in stabilized_runs)
        if idle and (t0, e0) == (t1, e1):
            lines.append(
                f"With --stabilized, {name}'s median final costs are those of the paper's "
                "learning: its safeguards never acted."
            )
            continue
        lines.append(
            f"With --stabilized, {name}'s median final training cost is "
            f"{100 * (t1 / t0 - 1):+.0f} % and its median evaluation cost "
            f"{100 * (e1 / e0 - 1):+.0f} % off those of the paper's learning's completed runs."
        )
    if lines:
        lines.append("docs/robustness.md says why.")
    return ["", " ".join(lines)] if lines else []


def safeguards_table(studies: dict[str, dict[str, Any]]) -> str:
    """docs/robustness.md's table: every combination of safeguards tried with the
    distributed learner (example 1: seeds 1-20 of 20,000 steps unless the row says
    otherwise; the power system: seeds 1-10 of 100 episodes)."""
    names = [n for n in STUDIES if n.startswith("example_1_distributed")] + SAFEGUARDS
    names.append("power_system_distributed.pkl")
    header, rule = HEADER.replace("learner, settings", "safeguards").split("\n")
    lines = [f"{header} safeguards acted |", f"{rule}---|"]
    for name in names:
        if name in studies:
            example, _, paper = STUDIES.get(name, ("example_1", "", "~10.1"))
            lines += rows(studies[name], example, None, paper, with_acted=True)
    missing = [f"`data/robustness/{name}`" for name in names if name not in studies]
    if missing:
        lines.append(f"\nNot made yet: {', '.join(missing)}.")
    return "\n".join(lines)


def draw(studies: dict[str, dict[str, Any]], example: str) -> plt.Figure | None:
    """Median learning curves with interquartile bands of an example's studies."""
    by_label: dict[str, list[dict[str, Any]]] = {}
    for name, (ex, title, _) in STUDIES.items():
        if ex == example and name in studies:
            for label, runs in summary_runs(studies[name])[1].items():
                by_label[_row_name(title, label)] = runs
    if not by_label:
        return None
    figure = curves_figure(by_label)
    figure.suptitle(f"{TITLES[example]}: completed runs over seeds", y=1.02)
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="robustness.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=ROOT / "data" / "robustness", help="the summaries' folder"
    )
    parser.add_argument(
        "--figures", type=Path, default=ROOT / "figures", help="where the figures go"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="rewrite the tables in README.md and docs/robustness.md and replace the figures",
    )
    args = parser.parse_args(argv)
    studies = load_studies(args.data, [*STUDIES, *SAFEGUARDS])
    if not studies:
        fail(f"--data {args.data} holds no study summary", EXIT_CODES["bad input"])
    readme, docs = readme_table(studies), safeguards_table(studies)
    print(readme, docs, sep="\n\n")
    if not args.write:
        return 0
    for example in TITLES:
        figure = draw(studies, example)
        if figure is not None:
            write_figure(figure, args.figures / f"robustness_{example}.png")
    rewrite_block(ROOT / "README.md", readme, README_MARKERS, COMMAND)
    rewrite_block(ROOT / "docs" / "robustness.md", docs, DOCS_MARKERS, COMMAND)
    print("rewrote the tables in README.md and docs/robustness.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
