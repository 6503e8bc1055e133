"""Closed-loop evaluation of controllers: learned policies and baseline MPCs alike.

A controller is anything with ``reset(env, seed)`` and ``act(state, env) -> action``;
:func:`run_episode` runs one episode with it and records states, actions, costs and
the time of every decision. :class:`LearnedPolicy` is a learner's greedy policy with
given parameters, :class:`MpcController` a :class:`~marl_dmpc.baselines.ScenarioMpc`
fed by example-specific inputs. :func:`run_jobs` runs independent episodes in parallel
processes; :func:`evaluation_result` gathers them into a result dict and
:func:`result_table` makes the table the scripts print.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing import get_context
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from gymnasium import Env
from mpcrl import MpcSolverError

from .baselines import ScenarioMpc
from .checkpoints import StopRequest, ignore_signals
from .learning import CentralizedQLearning, DistributedQLearning
from .results import ResultFileError, single, versions
from .threads import single_threaded_blas


class Controller(Protocol):
    """What :func:`run_episode` drives."""

    def reset(self, env: Env, seed: int | None) -> None:
        """Prepare for an episode of ``env`` (just reset); ``seed`` seeds any draws."""

    def act(self, state: npt.NDArray[np.floating], env: Env) -> npt.NDArray[np.floating]:
        """The action at ``state``."""


class LearnedPolicy:
    """The greedy policy of a learner (distributed or centralized) with the learnable
    parameters ``values`` (by global name): the first action of V(s) without
    exploration, the MPC's time-varying parameters read from the env every step."""

    def __init__(
        self,
        learner: DistributedQLearning | CentralizedQLearning,
        values: Mapping[str, npt.ArrayLike],
    ) -> None:
        self.learner = learner
        learner.set_parameter_values(values)

    def reset(self, env: Env, seed: int | None) -> None:
        if isinstance(self.learner, DistributedQLearning):
            self.learner.admm.reset()  # every episode from the same cold start

    def act(self, state: npt.NDArray[np.floating], env: Env) -> npt.NDArray[np.floating]:
        self.learner.read_env_parameters(env)
        action, solution = self.learner.state_value(state, deterministic=True)
        if isinstance(self.learner, CentralizedQLearning) and not solution.success:
            raise MpcSolverError(f"the centralized V failed ({solution.status})")
        return np.asarray(action, dtype=float).reshape(-1)


#: ``inputs(env, rng) -> keyword arguments of ScenarioMpc.solve`` (disturbances, set
#: points) for the env's current step.
MpcInputs = Callable[[Env, np.random.Generator], dict[str, Any]]


class MpcController:
    """A :class:`~marl_dmpc.baselines.ScenarioMpc` in closed loop; ``inputs`` gives its
    disturbances and set points every step, drawing any samples from the controller's
    generator (seeded at every reset)."""

    def __init__(self, mpc: ScenarioMpc, inputs: MpcInputs | None = None) -> None:
        self.mpc = mpc
        self.inputs = inputs
        self.rng: np.random.Generator | None = None  # seeded by reset

    def reset(self, env: Env, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, state: npt.NDArray[np.floating], env: Env) -> npt.NDArray[np.floating]:
        if self.rng is None:
            raise RuntimeError("reset the controller (with a seed) before it acts")
        kwargs = {} if self.inputs is None else self.inputs(env, self.rng)
        answer = self.mpc.solve(state, **kwargs)
        if not answer.success:
            raise MpcSolverError(f"the baseline MPC failed ({answer.status})")
        return answer.u0


ConfigT = TypeVar("ConfigT")


def training_config(result: Mapping[str, Any], config_type: type[ConfigT], example: str) -> ConfigT:
    """The config of a training result of ``example``, as ``config_type`` (a config
    dataclass).

    Raises
    ------
    ResultFileError
        If ``result`` is not a training result, or not one of that example.
    """
    config = result.get("config")
    if result.get("kind") != "training" or not isinstance(config, dict):
        raise ResultFileError("not a training result (no 'kind': 'training' and 'config')")
    known = dataclasses.fields(config_type)  # type: ignore[arg-type]
    # a setting added since the result was written takes its default (the defaults
    # leave the method as it was before the setting existed)
    missing = [f.name for f in known if f.name not in config and not _has_default(f)]
    if set(config) - {f.name for f in known} or missing:
        raise ResultFileError(f"not a training result of {example} (its config differs)")
    try:
        return config_type(**config)
    except (TypeError, ValueError) as err:  # a value of the wrong type or out of range
        raise ResultFileError(f"its config is invalid: {err}") from None


def _has_default(field: dataclasses.Field) -> bool:
    return (
        field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING  # type: ignore[misc]
    )


def parameters_after(result: Mapping[str, Any], update: int) -> dict[str, npt.NDArray]:
    """The learnable parameters of a training result after ``update`` updates (0: the
    initial ones), by global name.

    Raises
    ------
    ResultFileError
        If the run made fewer updates, or its parameter histories are malformed.
    """
    available, params = result.get("updates"), result.get("params")
    if not isinstance(available, int | np.integer) or available < 0:
        raise ResultFileError(f"its 'updates' must be an integer >= 0; got {available!r}")
    if not isinstance(params, dict) or not params:
        raise ResultFileError("it holds no parameter histories ('params')")
    if update > available:
        raise ResultFileError(f"it has {available} updates; cannot evaluate after {update}")
    values = {}
    for name, history in params.items():
        history = np.asarray(history)
        if history.dtype.kind not in "fiu" or history.ndim == 0 or len(history) != available + 1:
            raise ResultFileError(
                f"the history of parameter {name!r} must hold {available + 1} numeric entries"
            )
        values[name] = history[update]
    return values


def run_episode(
    env: Env,
    controller: Controller,
    seed: int,
    controller_seed: int | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, npt.NDArray]:
    """One episode of ``env`` (reset with ``seed`` and ``options``) under ``controller``
    (reset with ``controller_seed``, by default ``seed``), to its end.

    Returns
    -------
    dict
        ``states`` (T+1, nx), ``actions`` (T, nu), ``costs`` (T,) and ``solve_ms``
        (T,), the wall time of every decision.
    """
    state, _ = env.reset(seed=seed, options=options)
    controller.reset(env, seed if controller_seed is None else controller_seed)
    states, actions, costs, solve_ms = [np.asarray(state, dtype=float)], [], [], []
    done = False
    with single_threaded_blas():  # small products; see marl_dmpc.threads
        while not done:
            start = time.perf_counter()
            action = controller.act(states[-1], env)
            solve_ms.append(1e3 * (time.perf_counter() - start))
            state, cost, terminated, truncated, _ = env.step(action)
            states.append(np.asarray(state, dtype=float))
            actions.append(np.asarray(action, dtype=float))
            costs.append(float(cost))
            done = terminated or truncated
    return {
        "states": np.array(states),
        "actions": np.array(actions),
        "costs": np.array(costs),
        "solve_ms": np.array(solve_ms),
    }


def default_workers() -> int:
    """The number of cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


Job = TypeVar("Job")
Outcome = TypeVar("Outcome")


def run_jobs(
    function: Callable[[Job], Outcome], jobs: Sequence[Job], workers: int
) -> list[Outcome]:
    """``[function(job) for job in jobs]``, in ``workers`` processes when more than one
    (``function`` and the jobs must be picklable: a module-level function of plain
    data; every process builds its own MPCs). The order of the results is the jobs'.

    Ctrl-C raises :class:`KeyboardInterrupt` and returns nothing: in a pool, whose
    workers ignore it, the workers are stopped at once; in this process, after the
    current job (:class:`~marl_dmpc.checkpoints.StopRequest` says why not sooner).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}")
    if workers == 1 or len(jobs) < 2:
        stop = StopRequest((signal.SIGINT,))
        outcomes = []
        with stop.catching():
            for job in jobs:
                outcomes.append(function(job))
                if stop.requested:
                    raise KeyboardInterrupt
        return outcomes
    context = get_context("spawn")
    pool = context.Pool(
        min(workers, len(jobs)), initializer=ignore_signals, initargs=(signal.SIGINT,)
    )
    try:
        outcomes = pool.map(function, jobs, chunksize=1)
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()
    return outcomes


def episode_chunks(episodes: int, workers: int) -> list[list[int]]:
    """``range(episodes)`` in at most ``workers`` contiguous chunks of near-equal size
    (one job each, so that a process builds its controller once)."""
    return [
        [int(e) for e in c] for c in np.array_split(np.arange(episodes), min(workers, episodes))
    ]


def seed_of(*keys: int) -> int:
    """A seed derived from ``keys`` (e.g. a run's seed and an episode's index), so that
    every episode's draws are the same however the episodes are split into jobs."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def summary(episodes: Sequence[Mapping[str, npt.NDArray]], violations: Callable) -> dict:
    """Per-episode totals of ``episodes`` (from :func:`run_episode`): ``costs`` (total
    cost of each), ``violating_steps`` (steps whose next state ``violations(states)``
    flags, per episode) and ``mean_solve_ms`` (over every decision)."""
    return {
        "costs": np.array([ep["costs"].sum() for ep in episodes]),
        "violating_steps": np.array([int(violations(ep["states"][1:]).sum()) for ep in episodes]),
        "mean_solve_ms": float(np.mean(np.concatenate([ep["solve_ms"] for ep in episodes]))),
    }


def evaluation_result(
    kind: str,
    labels: Sequence[str],
    episodes: Sequence[Sequence[Mapping[str, npt.NDArray]]],
    violations: Callable[[npt.NDArray], npt.NDArray],
    wall_time_s: float,
    **extra: Any,
) -> dict[str, Any]:
    """The result dict of an evaluation (see docs/results.md): for every
    controller ``labels[c]``, its episodes ``episodes[c]`` (of equal length) stacked as
    ``states`` (C, E, T+1, nx), ``actions`` (C, E, T, nu), ``costs`` and ``solve_ms``
    (C, E, T); ``episode_costs`` and ``violating_steps`` (C, E); ``mean_solve_ms``
    (C,); plus ``extra``."""
    summaries = [summary(eps, violations) for eps in episodes]
    return {
        "kind": kind,
        "labels": list(labels),
        **{
            key: single([[ep[key] for ep in eps] for eps in episodes])
            for key in ("states", "actions", "costs", "solve_ms")
        },
        "episode_costs": np.array([s["costs"] for s in summaries]),
        "violating_steps": np.array([s["violating_steps"] for s in summaries]),
        "mean_solve_ms": np.array([s["mean_solve_ms"] for s in summaries]),
        "wall_time_s": wall_time_s,
        "versions": versions(),
        **extra,
    }


def result_table(result: Mapping[str, Any], first: str, keys: Sequence[Any]) -> str:
    """The table of an :func:`evaluation_result`, one row per controller named by
    ``keys`` under the heading ``first``. With one episode per controller: its total
    cost and violating steps; with more: the mean and median episode cost and the share
    of steps that end in a violating state. Then the mean decision time."""
    episodes, steps = result["costs"].shape[1:]
    if episodes == 1:
        header = [first, "total cost", "steps violating a state bound"]
    else:
        header = [first, "mean episode cost", "median episode cost", "violating steps"]
    rows = []
    for key, cost, viol, ms in zip(
        keys,
        result["episode_costs"],
        result["violating_steps"],
        result["mean_solve_ms"],
        strict=True,
    ):
        if episodes == 1:
            rows.append([key, float(cost[0]), int(viol[0]), float(ms)])
        else:
            share = f"{100 * viol.sum() / (episodes * steps):.2f} %"
            rows.append([key, float(np.mean(cost)), float(np.median(cost)), share, float(ms)])
    return format_table([*header, "mean solve ms"], rows)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A ``|``-separated table, numbers to 4 significant digits."""

    def cell(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)

    return "\n".join(" | ".join(cell(v) for v in row) for row in [header, *rows])
