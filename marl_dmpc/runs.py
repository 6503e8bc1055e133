"""Running a training: what a run is asked to do (:class:`TrainingRun`), what it trains
(:class:`TrainingSetup`), and :func:`train_and_save`, which trains a learner on an env
wrapped in :class:`~marl_dmpc.envs.StepRecorder` (or resumes a saved run), shows
progress, saves checkpoints (:mod:`marl_dmpc.checkpoints`), and always writes the result
file, also when the run is interrupted (Ctrl-C: a checkpoint is saved first) or an MPC
fails: what was computed is kept and the file's ``status`` says how the run ended.
"""

from __future__ import annotations

import dataclasses
import resource
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium import Env
from mpcrl import MpcSolverError

from .checkpoints import CHECKPOINT_FORMAT, Checkpointer, config_fingerprint
from .envs import StepRecorder
from .files import Outputs
from .learning import CentralizedQLearning, DivergenceMonitor, Learner, LearningDiverged
from .progress import TrainingProgress
from .results import ResultFileError, load_result, save_result, single, versions


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """What a training was asked to do.

    Attributes
    ----------
    config : TrainingConfig
        The run's settings (a resumed run's are its checkpoint's).
    out : Path
        The result file.
    progress : bool
        Whether to show the progress bar.
    checkpoint : Path
        The checkpoint file.
    resume : dict or None
        The checkpoint to continue from (a checkpoint file's contents).
    outputs : Outputs
        The files the run may write (the data-safety rule of :mod:`marl_dmpc.files`):
        ``out`` and ``checkpoint`` were claimed in it.
    """

    config: Any
    out: Path
    progress: bool
    checkpoint: Path
    resume: dict[str, Any] | None = None
    outputs: Outputs = dataclasses.field(default_factory=Outputs)


def is_partial_result(path: Path, config: dict[str, Any]) -> bool:
    """Whether ``path`` holds an unfinished training result of a run with the settings
    ``config`` (a dict): the file its resumption may replace."""
    try:
        result = load_result(path)
    except ResultFileError:
        return False
    return (
        result.get("kind") == "training"
        and result.get("status") != "completed"
        and result.get("config") == config
    )


def checkpoint_path(out: Path) -> Path:
    """The default checkpoint file of the result file ``out``."""
    return out.with_name(out.name.removesuffix(".pkl") + ".checkpoint.pkl")


@dataclasses.dataclass
class RunOutcome:
    """How a run ended: ``status`` is ``"completed"``, ``"interrupted"`` (by the signal
    ``signal``), ``"diverged"`` (its learning diverged) or ``"failed"`` (an MPC could not
    be solved); ``message`` says why; ``path`` is the result file."""

    status: str
    path: Path
    message: str = ""
    result: dict[str, Any] = dataclasses.field(default_factory=dict)
    signal: int = signal.SIGINT


def training_result(
    learner: Learner,
    env: StepRecorder,
    config: Any,
    wall_time_s: float,
    status: str,
    step_times_s: npt.ArrayLike = (),
) -> dict[str, Any]:
    """The result dict of a training run (see docs/results.md)."""
    log = learner.log
    steps = env.steps
    episodes = [env.episode_arrays(e) for e in range(len(env.costs))]
    if len(episodes) == 1:
        arrays = episodes[0]
    else:  # (episodes, steps, ...); an unfinished last episode is padded with NaN
        arrays = {}
        for key in episodes[0] if episodes else ():
            longest = max(len(ep[key]) for ep in episodes)
            stacked = np.full((len(episodes), longest, *episodes[0][key].shape[1:]), np.nan)
            for e, ep in enumerate(episodes):
                stacked[e, : len(ep[key])] = ep[key]
            arrays[key] = stacked
    td_errors = np.asarray(log.td_errors, dtype=float)
    ends = np.cumsum([len(costs) for costs in env.costs])
    return {
        "kind": "training",
        "mode": "centralized" if isinstance(learner, CentralizedQLearning) else "distributed",
        "status": status,
        "config": dataclasses.asdict(config),
        **{key: single(value) for key, value in arrays.items()},
        "td_errors": single(td_errors),
        "episode_costs": np.array([sum(costs) for costs in env.costs], dtype=float),
        "episode_td_errors": np.array(
            [
                td_errors[end - len(costs) : end].mean() if len(costs) else np.nan
                for costs, end in zip(env.costs, ends, strict=True)
            ]
        ),
        "params": log.parameter_history(),
        "admm_iterations": np.asarray(log.admm_iterations, dtype=np.int32),
        "admm_at_cap": config.solves_at_cap(log.admm_iterations),
        "consensus_error_bound": (
            learner.consensus.error_bound if hasattr(learner, "consensus") else float("nan")
        ),
        "centralized_check": {k: np.asarray(v) for k, v in log.check.items()},
        "solver_fallbacks": log.fallbacks,
        "steps_completed": steps,
        "updates": len(next(iter(log.parameters.values()), [None])) - 1,
        "wall_time_s": wall_time_s,
        "ms_per_step": 1e3 * wall_time_s / steps if steps else float("nan"),
        "step_times_s": single(step_times_s),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "versions": versions(),
    }


@dataclasses.dataclass
class TrainingSetup:
    """What a training script trains, built from its config.

    Attributes
    ----------
    label : str
        Names the run in the first printed line.
    learner : Learner
        The learner.
    env : Env
        The env (it is wrapped in a :class:`~marl_dmpc.envs.StepRecorder`).
    episodes : int
        Number of episodes.
    total_steps : int
        Number of steps of all episodes (for the progress bar).
    checkpoint_unit : {"steps", "episodes"}
        What ``--checkpoint-every`` counts.
    """

    label: str
    learner: Learner
    env: Env
    episodes: int
    total_steps: int
    checkpoint_unit: str

    @classmethod
    def one_episode(cls, label: str, learner: Learner, env: Env, steps: int) -> TrainingSetup:
        """A run of one episode of ``steps`` steps, checkpointed by steps."""
        return cls(f"{label}, {steps} steps", learner, env, 1, steps, "steps")


def train_and_save(
    setup: TrainingSetup,
    run: TrainingRun,
    example: str,
) -> RunOutcome:
    """:func:`train`, then write the result to ``run.out`` whatever happened; the
    checkpoint file is removed when the run completes (if the run wrote or adopted it)."""
    outcome = train(setup, run, example)
    save_result(run.out, outcome.result, run.outputs)
    if outcome.status == "completed":
        run.outputs.remove(run.checkpoint)  # only this run's own checkpoint
    return outcome


def train(setup: TrainingSetup, run: TrainingRun, example: str) -> RunOutcome:
    """Train (or resume) the run, writing checkpoints as asked; the outcome holds the
    result dict (see docs/results.md), which is not written."""
    learner, config = setup.learner, run.config
    env = StepRecorder(setup.env)
    resume = run.resume or {}
    wall_before = float(resume.get("wall_time_s", 0.0))
    times_before = list(np.asarray(resume.get("step_times_s", ()), dtype=float))
    status, message, stop_signal = "completed", "", signal.SIGINT
    start = time.perf_counter()
    ends = [start]

    def wall() -> float:
        return wall_before + time.perf_counter() - start

    def step_times() -> npt.NDArray[np.floating]:
        return np.concatenate((times_before, np.diff(ends)))

    def save_checkpoint(training: dict[str, Any]) -> None:
        checkpoint = {
            "kind": "checkpoint",
            "format": CHECKPOINT_FORMAT,
            "example": example,
            "fingerprint": config_fingerprint(config),
            "config": dataclasses.asdict(config),
            "out": str(run.out),
            "steps_completed": training["position"]["steps"],
            "wall_time_s": wall(),
            "step_times_s": step_times(),
            "training": training,
            "versions": versions(),
        }
        save_result(run.checkpoint, checkpoint, run.outputs)

    steps_done = int(resume.get("steps_completed", 0))
    done = steps_done
    if setup.checkpoint_unit == "episodes" and resume:
        done = int(resume["training"]["position"]["episode"])
    checkpointer = Checkpointer(
        config.checkpoint_every, setup.checkpoint_unit, save_checkpoint, done
    )
    monitor = DivergenceMonitor(
        config.divergence(),
        learner.parameter_values(),
        learner.parameter_agents(),
        env.unwrapped.state_bounds() if hasattr(env.unwrapped, "state_bounds") else None,
        None if isinstance(learner, CentralizedQLearning) else config.convergence_cap,
    )
    with (
        TrainingProgress(setup.total_steps, lambda: env.last_cost, run.progress, steps_done) as bar,
        checkpointer.catching_interrupts(),
    ):

        def on_step(td_error: float) -> None:
            ends.append(time.perf_counter())
            bar(td_error)

        try:
            learner.train(
                env,
                setup.episodes,
                seed=config.seed,
                callback=on_step,
                checkpointer=checkpointer,
                resume=resume.get("training"),
                monitor=monitor,
            )
        except KeyboardInterrupt:
            status, message = "interrupted", "interrupted by the user"
            stop_signal = checkpointer.stop_signal or signal.SIGINT
        except LearningDiverged as err:
            status, message = "diverged", str(err)
        except MpcSolverError as err:
            status, message = "failed", f"an MPC could not be solved: {err}"
    result = training_result(learner, env, config, wall(), status, step_times())
    result["example"] = example
    result["message"] = message
    return RunOutcome(status, run.out, message, result, int(stop_signal))
