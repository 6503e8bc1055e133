"""Running a training from a script: progress, interruption and the result file.

:func:`train_and_save` trains a learner on an env wrapped in
:class:`~marl_dmpc.envs.StepRecorder`, shows progress, and always writes the result file,
also when the run is interrupted (Ctrl-C) or an MPC fails: what was computed is kept and
the file's ``status`` says how the run ended.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from mpcrl import MpcSolverError

from .cli import TrainingProgress
from .envs import StepRecorder
from .learning import CentralizedQLearning, DistributedQLearning
from .results import save_result, versions

Learner = DistributedQLearning | CentralizedQLearning


@dataclasses.dataclass
class RunOutcome:
    """How a run ended: ``status`` is ``"completed"``, ``"interrupted"`` or
    ``"failed"`` (then ``message`` says why); ``path`` is the result file."""

    status: str
    path: Path
    message: str = ""
    result: dict[str, Any] = dataclasses.field(default_factory=dict)


def training_result(
    learner: Learner,
    env: StepRecorder,
    config: Any,
    wall_time_s: float,
    status: str,
    step_times_s: npt.ArrayLike = (),
) -> dict[str, Any]:
    """The result dict of a training run (see README.md, "Result files")."""
    log = learner.log
    steps = env.steps
    episodes = [env.episode_arrays(e) for e in range(len(env.costs))]
    if len(episodes) == 1:
        arrays = episodes[0]
    else:
        arrays = {k: np.stack([ep[k] for ep in episodes]) for k in episodes[0]} if episodes else {}
    return {
        "kind": "training",
        "mode": "centralized" if isinstance(learner, CentralizedQLearning) else "distributed",
        "status": status,
        "config": dataclasses.asdict(config),
        **arrays,
        "td_errors": np.asarray(log.td_errors, dtype=float),
        "params": log.parameter_history(),
        "admm_iterations": np.asarray(log.admm_iterations, dtype=int),
        "centralized_check": {k: np.asarray(v) for k, v in log.check.items()},
        "steps_completed": steps,
        "updates": len(next(iter(log.parameters.values()), [None])) - 1,
        "wall_time_s": wall_time_s,
        "ms_per_step": 1e3 * wall_time_s / steps if steps else float("nan"),
        "step_times_s": np.asarray(step_times_s, dtype=float),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "versions": versions(),
    }


def train_and_save(
    learner: Learner,
    env: StepRecorder,
    episodes: int,
    total_steps: int,
    seed: int,
    config: Any,
    out: Path,
    progress: bool = True,
) -> RunOutcome:
    """Train, then write the result to ``out`` whatever happened."""
    status, message = "completed", ""
    start = time.perf_counter()
    ends = [start]
    with TrainingProgress(total_steps, lambda: env.last_cost, progress) as bar:

        def on_step(td_error: float) -> None:
            ends.append(time.perf_counter())
            bar(td_error)

        try:
            learner.train(env, episodes, seed=seed, callback=on_step)
        except KeyboardInterrupt:
            status, message = "interrupted", "interrupted by the user"
        except MpcSolverError as err:
            status, message = "failed", f"an MPC could not be solved: {err}"
    wall = time.perf_counter() - start
    result = training_result(learner, env, config, wall, status, np.diff(ends))
    save_result(out, result)
    return RunOutcome(status, out, message, result)
