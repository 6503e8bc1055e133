"""Second order on example 1 (docs/second_order.md, "Second order on example 1"): the
20-seed studies of second order beside the first-order ones, and the screens that chose
its settings, as Markdown tables from the summaries in ``data/``. The tables are written
by ``plotting/second_order.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from marl_dmpc.results import load_result
from marl_dmpc.sweep.report import outcomes
from marl_dmpc.sweep.summary import FINAL_STEPS

LEARNERS = ("distributed", "centralized")
#: Example 1's studies over 20 seeds of 20,000 steps: summary file under data/ ->
#: (learner, update); the first row of a learner sets the cost the others must reach.
EXAMPLE_1 = {
    "robustness/example_1_distributed_default.pkl": ("distributed", "first order"),
    "robustness/example_1_distributed_stabilized.pkl": ("distributed", "first order, --stabilized"),
    "second_order/example_1_distributed_newton.pkl": ("distributed", "second order"),
    "robustness/example_1_centralized_default.pkl": ("centralized", "first order"),
    "second_order/example_1_centralized_newton.pkl": ("centralized", "second order"),
}
#: Example 1's screens of the second-order step (seeds 1, 3, 5, 12; 2,000 steps), and
#: the first-order study whose runs' first 2,000 steps they are set beside.
SCREENS = (
    "second_order/example_1_newton_screen_coarse.pkl",
    "second_order/example_1_newton_screen_fine.pkl",
)
SCREEN_REFERENCE = "robustness/example_1_distributed_default.pkl"
SCREEN_STEPS, SCREEN_WINDOW = 2000, 500


def completed(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs (summaries) that completed."""
    return [r for r in runs if r["status"] == "completed"]


def _quartiles(values: list[float]) -> str:
    if not values:
        return "–"
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return f"{median:.3g} [{q25:.3g}, {q75:.3g}]"


def steps_to_reach(run: dict[str, Any], target: float) -> int | None:
    """The first step at which the run's mean stage cost over the last
    :data:`~marl_dmpc.sweep.summary.FINAL_STEPS` steps (its final training cost's window)
    is at most ``target``; None if it never is."""
    steps = np.asarray(run["curves"]["step"])
    cost = np.asarray(run["curves"]["stage_cost"])
    blocks = FINAL_STEPS // int(steps[0])
    if len(cost) < blocks:
        return None
    means = np.convolve(cost, np.ones(blocks) / blocks, mode="valid")
    # the window's mean from block means may round above a target equal to it
    below = np.flatnonzero(means <= target * (1 + 1e-9))
    return int(steps[below[0] + blocks - 1]) if below.size else None


def _window_cost(run: dict[str, Any], first: int, last: int) -> float:
    """Mean stage cost of steps ``first + 1`` to ``last`` of a run (its curve's blocks)."""
    steps = np.asarray(run["curves"]["step"])
    cost = np.asarray(run["curves"]["stage_cost"])
    return float(np.mean(cost[(steps > first) & (steps <= last)]))


#: The early window of example 1's table: steps 3,001 to 4,000.
EARLY = (3000, 4000)


def _example_1_studies(data: Path) -> dict[str, list[dict[str, Any]] | None]:
    """Each study of :data:`EXAMPLE_1` by name: its runs (None if not made)."""
    return {
        name: load_result(data / name)["runs"] if (data / name).exists() else None
        for name in EXAMPLE_1
    }


def example_1_table(data: Path) -> str:
    """Example 1 over 20 seeds: first against second order, each learner's runs with how
    they ended, their training cost at 4,000 steps and at the end, their final evaluation
    cost and the steps they took to reach the median final training cost of that
    learner's first-order runs; then, per learner, both on the seeds where first order
    completed."""
    rows = [
        "| learner | update | runs | diverged | training cost at 4,000 steps, median "
        "| final training cost, median [IQR] | final evaluation cost, median [IQR] "
        "| steps to the first-order median's final training cost: median (runs reaching "
        "it) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    targets: dict[str, float] = {}
    studies = _example_1_studies(data)
    for name, (learner, update) in EXAMPLE_1.items():
        runs = studies[name]
        if runs is None:
            rows.append(f"| {learner} | {update} | not made yet (`data/{name}`) ||||||")
            continue
        ended = outcomes(runs)
        target = targets.setdefault(learner, float(np.median(ended.training)))
        done = completed(runs)
        reached = [steps_to_reach(r, target) for r in done]
        hits = [n for n in reached if n is not None]
        when = f"{np.median(hits):,.0f}" if hits else "–"
        early = f"{np.median([_window_cost(r, *EARLY) for r in done]):.3g}" if done else "–"
        rows.append(
            f"| {learner} | {update} | {len(runs)} | {ended.diverged} | {early} "
            f"| {_quartiles(ended.training)} | {_quartiles(ended.evaluation)} "
            f"| {when} ({len(hits)}/{len(runs)}) |"
        )
    return "\n".join(rows + ["", *paired_notes(studies)])


def _median_at(runs: dict[int, dict[str, Any]], seeds: list[int], key: str) -> float:
    """The median over ``seeds`` of the run summaries' ``key`` (of an evaluation: the
    mean episode cost)."""
    return float(np.median([np.mean(runs[seed][key]) for seed in seeds]))


def paired_notes(studies: dict[str, list[dict[str, Any]] | None]) -> list[str]:
    """Per learner, second against first order on the seeds where first order completed
    (the medians above leave out first order's diverged runs, not second order's)."""
    notes = []
    for learner in LEARNERS:
        found = {
            update: runs
            for name, (lrn, update) in EXAMPLE_1.items()
            if lrn == learner and (runs := studies[name]) is not None
        }
        if "first order" not in found or "second order" not in found:
            continue
        first = {r["seed"]: r for r in completed(found["first order"])}
        second = {r["seed"]: r for r in completed(found["second order"]) if r["seed"] in first}
        if not second:
            continue
        seeds = sorted(second)
        training = [_median_at(runs, seeds, "final_training_cost") for runs in (second, first)]
        evaluation = [_median_at(runs, seeds, "evaluation_costs") for runs in (second, first)]
        notes.append(
            f"{learner.capitalize()}, on the {len(seeds)} seeds on which first order "
            f"completed: median final training cost {training[0]:.3g} (second order) "
            f"against {training[1]:.3g} (first), median final evaluation cost "
            f"{evaluation[0]:.3g} against {evaluation[1]:.3g}."
        )
    return [" ".join(notes)] if notes else []


def newton_settings(data: Path) -> str:
    """ ", second order with tau ... and learning rate ... (the screens' choice)", read
    from the distributed second-order study of example 1 ("" if it is not made)."""
    for name, (_, update) in EXAMPLE_1.items():
        if update == "second order" and (data / name).exists():
            config = load_result(data / name)["runs"][0]["config"]
            return (
                f"; second order with tau {config['newton_tau']:g} and learning rate "
                f"{config['learning_rate']:g}, chosen by the screens in docs/second_order.md"
            )
    return ""


def _screen_cost(run: dict[str, Any]) -> float:
    """Mean stage cost of steps ``SCREEN_STEPS - SCREEN_WINDOW`` to ``SCREEN_STEPS``."""
    return _window_cost(run, SCREEN_STEPS - SCREEN_WINDOW, SCREEN_STEPS)


def screen_table(data: Path) -> str:
    """Example 1's screens of the second-order step: per (tau, learning rate), the runs
    that diverged within 2,000 steps and the median mean stage cost of the completed
    runs' last 500 steps, beside the first-order runs of the same seeds."""
    rows = [
        "| update | tau | learning rate | diverged (of 4) | last 500 of 2,000 steps, median "
        "(per seed) |",
        "|---|---|---|---|---|",
    ]
    # (tau, learning rate) -> seed -> run; a configuration in both screens is the same
    # runs (bit for bit), kept once
    by_seed: dict[tuple[float, float], dict[int, dict[str, Any]]] = {}
    for name in SCREENS:
        if (data / name).exists():
            for run in load_result(data / name)["runs"]:
                c = run["config"]
                by_seed.setdefault((c["newton_tau"], c["learning_rate"]), {})[run["seed"]] = run
    seeds = {seed for runs in by_seed.values() for seed in runs}
    # (update, tau, learning rate, runs) of every row
    variants = [
        ("second order", f"{tau:g}", lr, list(runs.values()))
        for (tau, lr), runs in sorted(by_seed.items())
    ]
    if (data / SCREEN_REFERENCE).exists() and seeds:
        reference = [r for r in load_result(data / SCREEN_REFERENCE)["runs"] if r["seed"] in seeds]
        # the first-order runs as the screen would have ended them
        ended = [
            {**r, "status": "completed" if r["steps_completed"] >= SCREEN_STEPS else "diverged"}
            for r in reference
        ]
        lr = reference[0]["config"]["learning_rate"]
        variants.insert(0, ("first order (the paper's)", "–", lr, ended))
    for update, tau, lr, runs in variants:
        runs = sorted(runs, key=lambda r: r["seed"])
        done = completed(runs)
        per_seed = ", ".join(
            f"{r['seed']}: {_screen_cost(r):.3g}"
            if r["status"] == "completed"
            else f"{r['seed']}: –"
            for r in runs
        )
        median = f"{np.median([_screen_cost(r) for r in done]):.3g}" if done else "–"
        rows.append(
            f"| {update} | {tau} | {lr:g} | {len(runs) - len(done)} | {median} ({per_seed}) |"
        )
    return "\n".join(rows)
