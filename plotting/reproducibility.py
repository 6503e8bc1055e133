"""Reproducibility across machines: one study (example 1, distributed, the paper's
settings, seeds 1-20 x 2,000 steps) run under several OpenBLAS kernels, as a machine
with another CPU would run it, and compared; the table of docs/reproducibility.md.

    python plotting/reproducibility.py           # print the table
    python plotting/reproducibility.py --write   # rewrite it in docs/reproducibility.md

Each summary in ``data/reproducibility/`` is written by ``python -m marl_dmpc.sweep
summarize`` from a sweep run with ``OPENBLAS_CORETYPE`` set; data/README.md lists the
commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import ks_2samp

from marl_dmpc.cli import OneLineArgumentParser, fail
from marl_dmpc.driver import EXIT_CODES
from marl_dmpc.sweep.report import outcomes
from marl_dmpc.sweep.summary import SummaryError, load_summary
from reproduction.plotting.data_manifest import KERNELS
from reproduction.plotting.results_table import rewrite_block

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "python plotting/reproducibility.py --write"
MARKERS = ("<!-- kernels: begin -->", "<!-- kernels: end -->")


def summary_file(kernel: str) -> str:
    """The summary of the study under ``kernel``, in the data folder."""
    return f"kernel_{kernel}.pkl"


def load_studies(folder: Path) -> dict[str, dict[str, Any]]:
    """The summaries of ``folder`` by the kernel they were asked to run under (those
    that exist)."""
    studies = {}
    for kernel in KERNELS:
        path = folder / summary_file(kernel)
        if not path.exists():
            continue
        try:
            studies[kernel] = load_summary(path)
        except SummaryError as err:
            fail(str(err), EXIT_CODES["bad input"])
    return studies


def ran_under(summary: dict[str, Any]) -> str:
    """The kernel(s) OpenBLAS reported in a study's runs (it names some kernels its own
    way: ``OPENBLAS_CORETYPE=Prescott`` reports ``Katmai``)."""
    return "/".join(sorted({str(r.get("blas_kernel", "unknown")) for r in summary["runs"]}))


def _seeds(runs: list[dict[str, Any]], status: str) -> str:
    seeds = sorted(r["seed"] for r in runs if r["status"] == status)
    return ", ".join(str(s) for s in seeds) or "none"


def table(studies: dict[str, dict[str, Any]]) -> str:
    """One row per kernel: runs, diverged seeds, the completed runs' final training cost,
    seed 1's, and a two-sample Kolmogorov-Smirnov test of the final costs against the
    first kernel's."""
    reference = next(iter(studies.values()))
    reference_costs = outcomes(reference["runs"]).training
    lines = [
        "| OPENBLAS_CORETYPE | OpenBLAS reports | runs | diverged (seeds) "
        "| final training cost, median [IQR] | seed 1, final training cost "
        f"| KS test against {next(iter(studies))}'s, p |",
        "|---|---|---|---|---|---|---|",
    ]
    for kernel, summary in studies.items():
        runs = summary["runs"]
        result = outcomes(runs)
        q25, median, q75 = np.percentile(result.training, [25, 50, 75])
        seed_1 = next((r["final_training_cost"] for r in runs if r["seed"] == 1), float("nan"))
        p = (
            "–"
            if summary is reference
            else f"{ks_2samp(result.training, reference_costs).pvalue:.2f}"
        )
        lines.append(
            f"| {kernel} | {ran_under(summary)} | {len(runs)} "
            f"| {result.diverged} ({_seeds(runs, 'diverged')}) "
            f"| {median:.3g} [{q25:.3g}, {q75:.3g}] | {seed_1:.3g} | {p} |"
        )
    steps = reference["base"].get("steps", 0)
    return (
        "\n".join(lines)
        + f"\n\nExample 1, distributed, the paper's settings, seeds {_span(reference)} x "
        f"{steps:,} steps; final training cost: the mean stage cost of the last 1,000 steps, "
        "over the completed runs."
    )


def _span(summary: dict[str, Any]) -> str:
    seeds = sorted(summary["seeds"])
    return (
        f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else str(seeds)
    )


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="reproducibility.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT / "data" / "reproducibility",
        help="the summaries' folder",
    )
    parser.add_argument(
        "--write", action="store_true", help="rewrite the table in docs/reproducibility.md"
    )
    args = parser.parse_args(argv)
    studies = load_studies(args.data)
    if not studies:
        fail(f"--data {args.data} holds no study summary", EXIT_CODES["bad input"])
    text = table(studies)
    print(text)
    if args.write:
        rewrite_block(ROOT / "docs" / "reproducibility.md", text, MARKERS, COMMAND)
        print("rewrote the table in docs/reproducibility.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
