"""A sweep's report: per configuration, how its runs ended and what they reached.

``report.csv`` and ``report.md`` hold one row per configuration label: the runs planned,
completed, diverged and failed, and the median and interquartile range over the
completed runs of the *final training cost* (example 1: the mean stage cost of the last
1,000 steps; the power system: the mean episode cost of the last 10 episodes;
:func:`~.summary.final_training_cost`) and of the *final evaluation cost* (the mean
episode cost of the final policy's evaluation episodes). ``curves.png`` draws the median
learning curve (stage cost, absolute TD error, in blocks of steps) with its
interquartile band per configuration, distributed and centralized runs side by side
where both exist. The report reads a sweep folder (also one still running: as far as it
got) or sweep summaries (:mod:`.summary`), e.g. those committed under ``data/``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ..files import Outputs
from .plan import settings_label
from .summary import SummaryError, load_summary, summarize

COLUMNS = [
    "configuration",
    "runs",
    "completed",
    "diverged",
    "failed",
    "final training cost, median",
    "q25",
    "q75",
    "final evaluation cost, median",
    "eval q25",
    "eval q75",
]


def collect(source: Path) -> tuple[dict[str, int], dict[str, list[dict[str, Any]]]]:
    """The runs planned per configuration label and, per label, the run summaries of a
    sweep folder or a summary file (labels prefixed with the example's name when the
    source is a file, to tell studies apart)."""
    summary = summarize(source) if source.is_dir() else load_summary(source)
    return summary_runs(relabelled(summary), prefix="" if source.is_dir() else f"{source.stem}: ")


def relabelled(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` with every configuration labelled by the settings that differ from
    its example's defaults (:func:`~.plan.settings_label`) instead of its grid point
    (a configuration none of whose runs has a result keeps its grid label)."""
    names = {}
    for run in summary["runs"]:
        names.setdefault(run["label"], settings_label(summary["example"], run["config"]))
    return {
        **summary,
        "planned": {names.get(k, k): n for k, n in summary["planned"].items()},
        "runs": [{**run, "label": names[run["label"]]} for run in summary["runs"]],
    }


def summary_runs(
    summary: dict[str, Any], prefix: str = ""
) -> tuple[dict[str, int], dict[str, list[dict[str, Any]]]]:
    """A summary's planned counts and run summaries by (prefixed) label."""
    planned = {prefix + label: int(n) for label, n in summary["planned"].items()}
    by_label: dict[str, list[dict[str, Any]]] = {label: [] for label in planned}
    for run in summary["runs"]:
        by_label.setdefault(prefix + run["label"], []).append(run)
    return planned, by_label


def _quartiles(values: list[float]) -> list[str]:
    if not values:
        return ["", "", ""]
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return [f"{median:.4g}", f"{q25:.4g}", f"{q75:.4g}"]


@dataclass(frozen=True)
class Outcomes:
    """How a configuration's runs ended, and the final costs of the completed ones.

    Attributes
    ----------
    completed, diverged, failed : int
        Runs that ended so.
    training : list of float
        The final training cost of every completed run.
    evaluation : list of float
        The mean evaluation cost of every completed run that was evaluated.
    """

    completed: int
    diverged: int
    failed: int
    training: list[float]
    evaluation: list[float]


def outcomes(runs: list[dict[str, Any]]) -> Outcomes:
    """The :class:`Outcomes` of run summaries."""
    done = [r for r in runs if r["status"] == "completed"]
    return Outcomes(
        completed=len(done),
        diverged=sum(r["status"] == "diverged" for r in runs),
        failed=sum(r["status"] == "failed" for r in runs),
        training=[r["final_training_cost"] for r in done],
        evaluation=[
            float(np.mean(r["evaluation_costs"])) for r in done if len(r["evaluation_costs"])
        ],
    )


def table(planned: dict[str, int], by_label: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    """The rows of the report (see :data:`COLUMNS`)."""
    rows = []
    for label, runs in by_label.items():
        ended = outcomes(runs)
        rows.append(
            [
                label,
                str(planned.get(label, len(runs))),
                str(ended.completed),
                str(ended.diverged),
                str(ended.failed),
                *_quartiles(ended.training),
                *_quartiles(ended.evaluation),
            ]
        )
    return rows


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell or "–" for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def curves_figure(by_label: dict[str, list[dict[str, Any]]]) -> plt.Figure:
    """Median learning curves of the completed runs with interquartile bands, one column
    per mode."""
    modes: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for label, runs in by_label.items():
        for r in runs:
            if r["status"] == "completed" and len(r["curves"].get("step", ())):
                modes.setdefault(r["mode"], {}).setdefault(label, []).append(r)
    columns = sorted(modes) or ["distributed"]
    fig, axes = plt.subplots(2, len(columns), figsize=(6 * len(columns), 6), squeeze=False)
    for c, mode in enumerate(columns):
        for label, runs in modes.get(mode, {}).items():
            length = min(len(r["curves"]["step"]) for r in runs)
            x = runs[0]["curves"]["step"][:length]
            for row, key in enumerate(("stage_cost", "abs_td_error")):
                stacked = np.array([r["curves"][key][:length] for r in runs])
                q25, median, q75 = np.percentile(stacked, [25, 50, 75], axis=0)
                axes[row, c].plot(x, median, label=f"{label} ({len(runs)} runs)")
                axes[row, c].fill_between(x, q25, q75, alpha=0.25)
                axes[row, c].set_xlabel("step")
        axes[0, c].set_title(f"{mode} (completed runs)")
        axes[0, c].set_ylabel("stage cost (median, IQR band)")
        axes[0, c].set_yscale("log")
        axes[1, c].set_ylabel("|TD error| (median, IQR band)")
        axes[1, c].set_yscale("log")
        if modes.get(mode):
            axes[0, c].legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_report(sources: list[Path], out: Path | None = None, overwrite: bool = False) -> int:
    """Write ``report.csv``, ``report.md`` and ``curves.png`` of the sweep folders or
    summary files ``sources`` into ``out`` (default ``<first folder>/report``; needed
    for summary files); print the Markdown table. Returns 0."""
    planned: dict[str, int] = {}
    by_label: dict[str, list[dict[str, Any]]] = {}
    for source in sources:
        counts, runs = collect(source)
        planned.update(counts)
        by_label.update(runs)
    if out is None:
        if not sources[0].is_dir():
            raise SummaryError("give --out: the report of summary files needs a folder")
        out = sources[0] / "report"
    outputs = Outputs(overwrite)
    names = ("report.csv", "report.md", "curves.png")
    paths = [outputs.claim(out / name, "--out") for name in names]
    rows = table(planned, by_label)
    text = io.StringIO()
    csv.writer(text).writerows([COLUMNS, *rows])
    outputs.write(paths[0], text.getvalue().encode())
    outputs.write(paths[1], markdown(rows).encode())
    figure = curves_figure(by_label)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    outputs.write(paths[2], image.getvalue())
    print(markdown(rows), end="")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0
