"""Running a training or an evaluation from a script.

:func:`train_and_save` trains a learner on an env wrapped in
:class:`~marl_dmpc.envs.StepRecorder` (or resumes a saved run), shows progress, saves
checkpoints (:mod:`marl_dmpc.checkpoints`), and always writes the result file, also
when the run is interrupted (Ctrl-C: a checkpoint is saved first) or an MPC fails: what
was computed is kept and the file's ``status`` says how the run ended. :func:`run_evaluation`,
:func:`evaluation_out` and :func:`write_evaluation` are the common steps of the
evaluation and baseline scripts.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium import Env
from mpcrl import MpcSolverError

from .checkpoints import Checkpointer
from .cli import TrainingProgress, TrainingRun, check_writable, fail, quiet_solvers
from .config import TrainingConfig
from .envs import StepRecorder
from .evaluation import result_table, run_jobs
from .learning import CentralizedQLearning, DistributedQLearning
from .mpc import LocalMpcDefinition
from .network import Network
from .results import save_result, single, versions

Learner = DistributedQLearning | CentralizedQLearning


def make_learner(
    definition: LocalMpcDefinition, network: Network, config: TrainingConfig
) -> Learner:
    """The learner ``config`` asks for: centralized (mpcrl's agent on the network's MPC)
    or distributed (consensus ADMM over the local MPCs)."""
    if config.centralized:
        return CentralizedQLearning(definition, network, config.q_learning(), solver=config.solver)
    return DistributedQLearning(
        definition,
        network,
        config.q_learning(),
        rho=config.rho,
        admm_iterations=config.admm_iters,
        admm_tolerance=config.admm_tol,
        admm_dual_tolerance=config.admm_dual_tol,
        admm_memory=config.admm_memory,
        consensus_iterations=config.consensus_iters,
        solver=config.solver,
        check_centralized=config.check_centralized,
    )


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
        "centralized_check": {k: np.asarray(v) for k, v in log.check.items()},
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


def train_and_save(
    setup: TrainingSetup,
    run: TrainingRun,
    example: str,
) -> RunOutcome:
    """Train (or resume) the run, writing checkpoints as asked, then write the result to
    ``run.out`` whatever happened; the checkpoint file is removed when the run
    completes."""
    learner, config = setup.learner, run.config
    env = StepRecorder(setup.env)
    resume = run.resume or {}
    wall_before = float(resume.get("wall_time_s", 0.0))
    times_before = list(np.asarray(resume.get("step_times_s", ()), dtype=float))
    status, message = "completed", ""
    start = time.perf_counter()
    ends = [start]

    def wall() -> float:
        return wall_before + time.perf_counter() - start

    def step_times() -> npt.NDArray[np.floating]:
        return np.concatenate((times_before, np.diff(ends)))

    def save_checkpoint(training: dict[str, Any]) -> None:
        checkpoint = {
            "kind": "checkpoint",
            "example": example,
            "config": dataclasses.asdict(config),
            "out": str(run.out),
            "steps_completed": training["position"]["steps"],
            "wall_time_s": wall(),
            "step_times_s": step_times(),
            "training": training,
            "versions": versions(),
        }
        save_result(run.checkpoint, checkpoint)

    steps_done = int(resume.get("steps_completed", 0))
    done = steps_done
    if setup.checkpoint_unit == "episodes" and resume:
        done = int(resume["training"]["position"]["episode"])
    checkpointer = Checkpointer(
        config.checkpoint_every, setup.checkpoint_unit, save_checkpoint, done
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
            )
        except KeyboardInterrupt:
            status, message = "interrupted", "interrupted by the user"
        except MpcSolverError as err:
            status, message = "failed", f"an MPC could not be solved: {err}"
    result = training_result(learner, env, config, wall(), status, step_times())
    save_result(run.out, result)
    if status == "completed":
        run.checkpoint.unlink(missing_ok=True)
    return RunOutcome(status, run.out, message, result)


def run_training(run: TrainingRun, make_setup: Callable[[Any], TrainingSetup], example: str) -> int:
    """A training script's body: build what it trains from the config (solver banners
    silenced), train (or resume) and save, print a one-line summary; returns the exit
    code (0, or 130 if interrupted; a failed MPC ends with a one-line error)."""
    config = run.config
    with quiet_solvers():
        setup = make_setup(config)
    resumed = f" (resumed at step {run.resume['steps_completed']})" if run.resume else ""
    print(f"{setup.label}, {config.mode}, seed {config.seed}{resumed} -> {run.out}", flush=True)
    with quiet_solvers():
        outcome = train_and_save(setup, run, example)
    result = outcome.result
    costs = result["episode_costs"]
    episodes_text = f", last episode {costs[-1]:.4g}" if len(costs) > 1 else ""
    print(
        f"{outcome.status}: {result['steps_completed']} steps, {result['updates']} updates, "
        f"total cost {costs.sum():.4g}{episodes_text}, {result['ms_per_step']:.1f} ms/step; "
        f"result written to {run.out}"
    )
    if outcome.status == "interrupted" and run.checkpoint.exists():
        print(f"resume with --resume {run.checkpoint}")
    if outcome.status == "failed":
        fail(outcome.message)
    return 130 if outcome.status == "interrupted" else 0


def evaluation_out(out: Path | None, source: Path) -> Path:
    """``out``, or by default ``source``'s name with ``_eval`` (checked writable; if not,
    the script ends with a one-line error)."""
    if out is not None:
        return out
    try:
        return check_writable(source.with_name(source.stem + "_eval.pkl"))
    except ValueError as err:
        fail(str(err))


def run_evaluation(
    function: Callable[[Any], Any], jobs: Sequence[Any], workers: int
) -> tuple[list[Any], float]:
    """:func:`~marl_dmpc.evaluation.run_jobs` and its wall time (s); an MPC that cannot be
    solved ends the script with a one-line error."""
    start = time.perf_counter()
    try:
        outcomes = run_jobs(function, jobs, workers)
    except MpcSolverError as err:
        fail(str(err))
    return outcomes, time.perf_counter() - start


def write_evaluation(out: Path, result: dict[str, Any], first: str, keys: Sequence[Any]) -> int:
    """Save an evaluation result, print its table (see
    :func:`~marl_dmpc.evaluation.result_table`) and where it went; the exit code (0)."""
    save_result(out, result)
    print(result_table(result, first, keys))
    print(f"result written to {out}")
    return 0
