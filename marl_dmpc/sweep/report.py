"""A sweep's report: per configuration, how its runs ended and what they reached.

``report.csv`` and ``report.md`` hold one row per configuration label: the runs planned
and completed, the share failed, and the median and interquartile range over the
completed runs of the *final training cost* (example 1: the mean stage cost of the last
10 % of the steps; the power system: the mean episode cost of the last 10 % of the
episodes) and of the *final evaluation cost* (the mean episode cost of the final policy's
evaluation episodes). ``curves.png`` draws the median learning curve (stage or episode
cost, absolute TD error) with its interquartile band per configuration, distributed and
centralized runs side by side where both exist. A sweep that is still running is
reported as far as it got.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ..files import Outputs
from ..results import ResultFileError, load_result
from .plan import read_manifest

#: The share of a run's end that its final training cost averages.
FINAL_SHARE = 0.1
COLUMNS = [
    "configuration",
    "runs",
    "completed",
    "failed share",
    "final training cost, median",
    "q25",
    "q75",
    "final evaluation cost, median",
    "eval q25",
    "eval q75",
]


def _tail_mean(values: np.ndarray) -> float:
    n = max(1, int(round(FINAL_SHARE * len(values))))
    return float(np.mean(values[-n:]))


def final_training_cost(result: dict[str, Any]) -> float:
    """The mean stage cost of the last 10 % of the steps (one episode) or the mean episode
    cost of the last 10 % of the episodes."""
    costs = np.asarray(result["costs"], dtype=float)
    if costs.ndim == 1:
        return _tail_mean(costs)
    return _tail_mean(np.asarray(result["episode_costs"], dtype=float))


def learning_curves(result: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, str]:
    """(cost, |TD error|) per step (smoothed over 1 % of the run) or per episode, and the
    x label."""
    costs = np.asarray(result["costs"], dtype=float)
    if costs.ndim == 1:
        window = max(1, len(costs) // 100)
        kernel = np.ones(window) / window
        td = np.abs(np.asarray(result["td_errors"], dtype=float))
        smooth = [np.convolve(x, kernel, mode="valid") for x in (costs, td)]
        return smooth[0], smooth[1], "step"
    episodes = np.asarray(result["episode_costs"], dtype=float)
    return episodes, np.abs(np.asarray(result["episode_td_errors"], dtype=float)), "episode"


def collect(folder: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The manifest and, per configuration label, the results on disk (a run without one
    is left out)."""
    asked = read_manifest(folder)
    by_label: dict[str, list[dict[str, Any]]] = {run.label: [] for run in asked["runs"]}
    for run in asked["runs"]:
        try:
            result = load_result(folder / run.result)
        except ResultFileError:
            continue
        if result.get("config") == run.config:
            by_label[run.label].append(result)
    return asked, by_label


def _quartiles(values: list[float]) -> list[str]:
    if not values:
        return ["", "", ""]
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return [f"{median:.4g}", f"{q25:.4g}", f"{q75:.4g}"]


def table(asked: dict[str, Any], by_label: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    """The rows of the report (see :data:`COLUMNS`)."""
    planned = {label: 0 for label in by_label}
    for run in asked["runs"]:
        planned[run.label] += 1
    rows = []
    for label, results in by_label.items():
        done = [r for r in results if r.get("status") == "completed"]
        failed = sum(r.get("status") == "failed" for r in results)
        finished = len(done) + failed
        evaluations = [
            float(np.mean(r["final_evaluation"]["episode_costs"]))
            for r in done
            if "final_evaluation" in r
        ]
        rows.append(
            [
                label,
                str(planned[label]),
                str(len(done)),
                f"{failed / finished:.2f}" if finished else "",
                *_quartiles([final_training_cost(r) for r in done]),
                *_quartiles(evaluations),
            ]
        )
    return rows


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell or "–" for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def curves_figure(by_label: dict[str, list[dict[str, Any]]]) -> plt.Figure:
    """Median learning curves with interquartile bands, one column per mode."""
    modes: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for label, results in by_label.items():
        for r in results:
            if r.get("status") == "completed":
                mode = r.get("mode", "distributed")
                modes.setdefault(mode, {}).setdefault(label, []).append(r)
    columns = sorted(modes) or ["distributed"]
    fig, axes = plt.subplots(2, len(columns), figsize=(6 * len(columns), 6), squeeze=False)
    for c, mode in enumerate(columns):
        for label, results in modes.get(mode, {}).items():
            curves = [learning_curves(r) for r in results]
            x_label = curves[0][2]
            for row in range(2):
                length = min(len(curve[row]) for curve in curves)
                stacked = np.array([curve[row][:length] for curve in curves])
                q25, median, q75 = np.percentile(stacked, [25, 50, 75], axis=0)
                x = np.arange(length)
                axes[row, c].plot(x, median, label=f"{label} ({len(results)} runs)")
                axes[row, c].fill_between(x, q25, q75, alpha=0.25)
                axes[row, c].set_xlabel(x_label)
        axes[0, c].set_title(mode)
        axes[0, c].set_ylabel("cost (median, IQR band)")
        axes[1, c].set_ylabel("|TD error| (median, IQR band)")
        axes[1, c].set_yscale("log")
        if modes.get(mode):
            axes[0, c].legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_report(folder: Path, out: Path | None = None, overwrite: bool = False) -> int:
    """Write ``report.csv``, ``report.md`` and ``curves.png`` of the sweep in ``folder``
    into ``out`` (default ``folder/report``); print the Markdown table. Returns 0."""
    asked, by_label = collect(folder)
    out = folder / "report" if out is None else out
    outputs = Outputs(overwrite)
    names = ("report.csv", "report.md", "curves.png")
    paths = [outputs.claim(out / name, "--out") for name in names]
    rows = table(asked, by_label)
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
