"""A sweep's compact summary: what its report needs of every run, small enough to commit.

A sweep's result files hold every step of every run (about 6 MB for a 20,000-step run of
example 1). ``python -m marl_dmpc.sweep summarize DIR --out FILE`` keeps of each run its
label, seed, config, status and message, its length, its *final training cost*, its
final evaluation's episode costs, its learning curves in :data:`CURVE_POINTS` blocks and
its final parameters: a few kB per run (docs/results.md, "Sweep summaries"). The report
(:mod:`.report`) reads a sweep folder or such a file alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..files import Outputs
from ..results import ResultFileError, load_result, save_result, versions
from .plan import read_manifest

#: The layout of a summary file; another one is refused.
SUMMARY_FORMAT = 1
#: Blocks a one-episode run's learning curves are averaged over.
CURVE_POINTS = 200
#: What the final training cost averages: the last steps of a one-episode run, or the
#: last episodes of a run of many.
FINAL_STEPS, FINAL_EPISODES = 1000, 10
#: The first steps of a run, where the TD errors are largest.
EARLY_STEPS = 1000


class SummaryError(ValueError):
    """A file is not a sweep summary; the message is one line."""


def final_training_cost(result: dict[str, Any]) -> float:
    """The mean stage cost of the last :data:`FINAL_STEPS` steps (one episode) or the
    mean episode cost of the last :data:`FINAL_EPISODES` episodes."""
    costs = np.asarray(result["costs"], dtype=float)
    if costs.ndim == 1:
        return float(np.mean(costs[-FINAL_STEPS:])) if costs.size else float("nan")
    episodes = np.asarray(result["episode_costs"], dtype=float)
    return float(np.mean(episodes[-FINAL_EPISODES:])) if episodes.size else float("nan")


def _block_means(values: np.ndarray, block: int) -> np.ndarray:
    n = len(values) // block
    return values[: n * block].reshape(n, block).mean(axis=1)


def learning_curves(result: dict[str, Any]) -> dict[str, Any]:
    """The run's stage cost and |TD error| averaged over blocks of steps (a one-episode
    run: its planned length over :data:`CURVE_POINTS`; otherwise one block per episode),
    and the step at each block's end."""
    config = result["config"]
    costs = np.asarray(result["costs"], dtype=float)
    td = np.abs(np.asarray(result["td_errors"], dtype=float).reshape(-1))
    if costs.ndim == 1:
        planned = int(config.get("steps", len(costs)))
        block = max(1, planned // CURVE_POINTS)
        cost = _block_means(costs, block)
    else:
        block = int(config.get("episode_steps", costs.shape[1]))
        cost = np.asarray(result["episode_costs"], dtype=float)[: len(td) // block] / block
    td_blocks = _block_means(td, block)[: len(cost)]
    return {
        "step": block * np.arange(1, len(cost) + 1),
        "stage_cost": cost,
        "abs_td_error": td_blocks,
    }


def safeguards_acted(result: dict[str, Any]) -> dict[str, int]:
    """How often each safeguard of the run (docs/robustness.md) acted: ``td_clip``, steps
    whose TD error was beyond the clip (``td_clip_early``: of the first
    :data:`EARLY_STEPS`); ``max_update``, updates with an entry moved by
    the full cap; ``parameter_box``, parameter entries that reached the box's edge."""
    config = result.get("config", {})
    clip, cap, box = (float(config.get(k, 0.0)) for k in ("td_clip", "max_update", "parameter_box"))
    histories = [np.asarray(h, dtype=float) for h in result.get("params", {}).values()]
    acted = {"td_clip": 0, "td_clip_early": 0, "max_update": 0, "parameter_box": 0}
    if clip:
        td = np.abs(np.asarray(result.get("td_errors", ()), dtype=float))
        acted["td_clip"] = int(np.sum(td > clip))
        acted["td_clip_early"] = int(np.sum(td[:EARLY_STEPS] > clip))
    if histories and (cap or box):
        flat = np.concatenate([h.reshape(len(h), -1) for h in histories], axis=1)
        tolerance = 1e-9
        if cap and len(flat) > 1:
            steps = np.abs(np.diff(flat, axis=0)).max(axis=1)
            acted["max_update"] = int(np.sum(steps >= cap * (1 - tolerance)))
        if box:
            reached = np.abs(flat - flat[0]) >= box * (1 - tolerance)
            acted["parameter_box"] = int(np.sum(reached.any(axis=0)))
    return acted


def run_summary(result: dict[str, Any], label: str, seed: int) -> dict[str, Any]:
    """What the report needs of one run's result."""
    evaluation = result.get("final_evaluation", {})
    params = result.get("params", {})
    trained = "costs" in result
    return {
        "label": label,
        "seed": seed,
        "status": result.get("status", "failed"),
        "message": result.get("message", ""),
        "mode": result.get("mode", "distributed"),
        "config": result.get("config", {}),
        "steps_completed": int(result.get("steps_completed", 0)),
        "updates": int(result.get("updates", 0)),
        "wall_time_s": float(result.get("wall_time_s", float("nan"))),
        "final_training_cost": final_training_cost(result) if trained else float("nan"),
        "evaluation_costs": np.asarray(evaluation.get("episode_costs", ()), dtype=float),
        "curves": learning_curves(result) if trained else {},
        "final_parameters": {name: np.asarray(h)[-1] for name, h in params.items()},
        "safeguards_acted": safeguards_acted(result) if trained else {},
        "solver_fallbacks": int(result.get("solver_fallbacks", 0)),
        "admm_at_cap": int(result.get("admm_at_cap", 0)),
        # the kernel the run ran under (results before it was recorded: "unknown")
        "blas_kernel": str(result.get("versions", {}).get("blas_kernel", "unknown")),
    }


def summarize(*folders: Path) -> dict[str, Any]:
    """The summary of the sweep in ``folders`` (runs without a result are left out);
    several folders are chunks of one study (e.g. seeds 1-10 and 11-20 of the same
    settings), merged into one summary.

    Raises
    ------
    SummaryError
        If the folders are sweeps of different examples or settings.
    """
    manifests = [read_manifest(folder) for folder in folders]
    first = manifests[0]
    for folder, asked in zip(folders[1:], manifests[1:], strict=True):
        same = all(asked[key] == first[key] for key in ("example", "base", "grid", "eval_episodes"))
        if not same:
            raise SummaryError(f"{folder} is not a chunk of the sweep in {folders[0]}")
    runs, planned = [], {}
    for folder, asked in zip(folders, manifests, strict=True):
        for label, n in _planned(asked).items():
            planned[label] = planned.get(label, 0) + n
        for run in asked["runs"]:
            try:
                result = load_result(folder / run.result)
            except ResultFileError:
                continue
            if result.get("config") == run.config:
                runs.append(run_summary(result, run.label, run.seed))
    return {
        "kind": "sweep_summary",
        "format": SUMMARY_FORMAT,
        "example": first["example"],
        "base": first["base"],
        "grid": first["grid"],
        "seeds": [seed for asked in manifests for seed in asked["seeds"]],
        "eval_episodes": first["eval_episodes"],
        "planned": planned,
        "runs": runs,
        "wall_time_s": float(sum(r["wall_time_s"] for r in runs if np.isfinite(r["wall_time_s"]))),
        "versions": versions(),
    }


def _planned(asked: dict[str, Any]) -> dict[str, int]:
    """Runs planned per configuration label, in the sweep's order."""
    labels = [run.label for run in asked["runs"]]
    return {label: labels.count(label) for label in dict.fromkeys(labels)}


def load_summary(path: Path) -> dict[str, Any]:
    """A summary file's contents, checked."""
    try:
        data = load_result(path)
    except ResultFileError as err:
        raise SummaryError(str(err)) from None
    if data.get("kind") != "sweep_summary":
        raise SummaryError(f"{path} is not a sweep summary (its kind is {data.get('kind')!r})")
    if data.get("format") != SUMMARY_FORMAT:
        raise SummaryError(f"{path}: summary format {data.get('format')!r}, not {SUMMARY_FORMAT}")
    if not isinstance(data.get("runs"), list) or not isinstance(data.get("planned"), dict):
        raise SummaryError(f"{path} lacks its runs")
    return data


def write_summary(folders: list[Path], out: Path, overwrite: bool = False) -> int:
    """Write the summary of the sweep in ``folders`` (:func:`summarize`) to ``out``;
    print what it holds."""
    summary = summarize(*folders)
    outputs = Outputs(overwrite)
    outputs.claim(out, "--out")
    save_result(out, summary, outputs)
    statuses = [run["status"] for run in summary["runs"]]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
    size = out.stat().st_size / 1e3
    print(f"{len(statuses)} runs ({counts or 'none'}) -> {out} ({size:.0f} kB)")
    return 0
