"""How close ADMM's multipliers come to the centralized MPC's after a fixed number of
iterations: the paper's dual-error figure, for any example.

The dual error after ``tau`` iterations is split into the dynamics multipliers,
``sum_i ||lambda_i* - lambda_i^tau||``, and the inequality multipliers,
``sum_i ||mu_i* - mu_i^tau||`` (the paper plots their sum), against the centralized MPC
solved for the same state and parameters
(:class:`~marl_dmpc.learning.check.CentralizedCheck`). It is measured at the states of
one closed-loop episode under the initial parameters (the first episode of a training
run, without exploration; an initial state at rest with no load, where ADMM is exact at
once, is skipped by measuring every ``every``-th state from the ``every``-th), for
several ADMM variants, each from a cold start
(``y = z = 0``) and from a warm start (the converged ``y``, ``z`` of the previous
step, as during training).

:func:`main` is the command of each example's ``admm_dual_error.py``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from .admm import AdmmCoordinator
from .cli import (
    OneLineArgumentParser,
    add_output_flags,
    nonnegative_int,
    positive_float,
    positive_int,
    positive_int_list,
)
from .config import AdmmSettings, TrainingConfig
from .driver import claim_output
from .envs import mpc_parameters
from .learning import DistributedQLearning
from .results import save_result, single, versions
from .solvers import quiet_solvers

#: The paper's iteration counts, then longer ones.
ITERATIONS = (1, 2, 5, 10, 20, 30, 40, 50, 70, 100, 150, 200)
#: The two parts of the dual error (last axis of the study's array).
PARTS = ("lambda (dynamics)", "mu (inequalities)")
STARTS = ("cold", "warm")


@dataclass(frozen=True)
class Visit:
    """A state of the closed-loop episode, the env's time-varying MPC parameters there,
    and the warm start the converged ADMM left at the previous step."""

    step: int
    state: npt.NDArray[np.floating]
    env_parameters: dict[str, npt.NDArray[np.floating]]
    warm_start: dict[str, Any]


def closed_loop_visits(
    learner: DistributedQLearning, env: gym.Env, steps: int, every: int, seed: int
) -> list[Visit]:
    """Every ``every``-th state of a ``steps``-step episode (noise seed ``seed``) driven by
    the learner's converged ADMM without exploration: the states after ``every - 1``,
    ``2 every - 1``, ... steps (with ``every`` 1, the initial state too)."""
    state, _ = env.reset(seed=seed)
    visits = []
    for step in range(steps):
        learner.read_env_parameters(env)
        warm = learner.admm.state()
        if (step + 1) % every == 0:
            visits.append(Visit(step, np.asarray(state), mpc_parameters(env), warm))
        action, _ = learner.state_value(state, deterministic=True)
        state, *_ = env.step(action)
    return visits


def variant_settings(
    config: TrainingConfig, rho: float
) -> dict[str, Callable[[int], AdmmSettings]]:
    """The ADMM variants compared, by label: plain ADMM with penalty ``rho`` (the
    release's; it runs exactly ``tau`` iterations) and this repository's accelerated
    ADMM (``config``'s, at most ``tau`` iterations, tolerance stop)."""
    ours = config.admm()
    return {
        f"plain ADMM, rho {rho:g}": lambda tau: AdmmSettings(rho=rho, admm_iters=tau),
        f"accelerated ADMM (rho {ours.rho:g}, memory {ours.admm_memory}, tolerance stop)": (
            lambda tau: dataclasses.replace(ours, admm_iters=tau)
        ),
    }


def dual_errors(
    learner: DistributedQLearning,
    visits: Sequence[Visit],
    iterations: Sequence[int],
    variants: Mapping[str, Callable[[int], AdmmSettings]],
) -> npt.NDArray[np.floating]:
    """The dual errors, shape ``(len(variants), len(STARTS), len(visits),
    len(iterations), len(PARTS))``. ``learner`` has the centralized check on."""
    if learner.check is None:
        raise ValueError("the dual error needs the learner's centralized check")
    converged = learner.admm
    shape = (len(variants), len(STARTS), len(visits), len(iterations), len(PARTS))
    errors = np.zeros(shape)
    try:
        for v, make in enumerate(variants.values()):
            for t, tau in enumerate(iterations):
                learner.admm = AdmmCoordinator(learner.network, learner.local_mpcs, make(tau))
                for start, name in enumerate(STARTS):
                    for s, visit in enumerate(visits):
                        learner.admm.reset()
                        if name == "warm":
                            learner.admm.load_state(visit.warm_start)
                        learner.set_env_parameters(visit.env_parameters)
                        learner.state_value(visit.state, deterministic=True)
                        check = learner.log.check
                        errors[v, start, s, t] = (
                            check["dual_error_norms"][-1],
                            check["inequality_dual_error_norms"][-1],
                        )
    finally:
        learner.admm = converged
    return errors


def main(
    argv: list[str] | None,
    *,
    example: str,
    config: TrainingConfig,
    build_learner: Callable[[TrainingConfig], Any],
    make_env: Callable[[int], gym.Env],
    steps: int,
    every: int,
    rho: float,
    default_out: str,
    description: str,
) -> int:
    """The command of an example's dual-error study: measure, write the result, print
    the median over the states of each variant's error (lambda + mu)."""
    parser = OneLineArgumentParser(prog="admm_dual_error.py", description=description)
    parser.add_argument(
        "--iterations",
        type=positive_int_list,
        default=list(ITERATIONS),
        help="ADMM iteration counts, comma-separated; default " + ",".join(map(str, ITERATIONS)),
    )
    parser.add_argument(
        "--steps", type=positive_int, default=steps, help="episode length; default %(default)s"
    )
    parser.add_argument(
        "--every",
        type=positive_int,
        default=every,
        help="measure at every this-many-th state; default %(default)s",
    )
    parser.add_argument(
        "--rho", type=positive_float, default=rho, help="plain ADMM's penalty; default %(default)s"
    )
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the episode's noise; default 0"
    )
    add_output_flags(parser, default_out)
    args = parser.parse_args(argv)
    outputs, out = claim_output(args.out, default_out, args.overwrite)
    config = dataclasses.replace(config, check_centralized=True)
    start = time.perf_counter()
    with quiet_solvers():
        learner = build_learner(config)
        env = make_env(args.steps)
        visits = closed_loop_visits(learner, env, args.steps, args.every, args.seed)
        variants = variant_settings(config, args.rho)
        errors = dual_errors(learner, visits, args.iterations, variants)
    wall = time.perf_counter() - start
    result = {
        "kind": f"{example}_admm_dual_error",
        "labels": list(variants),
        "starts": list(STARTS),
        "parts": list(PARTS),
        "iterations": np.array(args.iterations),
        "steps": np.array([visit.step for visit in visits]),
        "dual_errors": single(errors),
        "seed": args.seed,
        "config": dataclasses.asdict(config),
        "wall_time_s": wall,
        "versions": versions(),
    }
    save_result(out, result, outputs)
    total = np.median(errors.sum(axis=-1), axis=2)  # (variants, starts, iterations)
    columns = [f"{label}, {s} start" for label in variants for s in STARTS]
    print("iterations | " + " | ".join(columns))
    for t, tau in enumerate(args.iterations):
        row = [f"{total[v, s, t]:.3g}" for v in range(len(variants)) for s in range(len(STARTS))]
        print(f"{tau} | " + " | ".join(row))
    print(f"median over {len(visits)} states of lambda + mu; {wall:.1f} s; written to {out}")
    return 0
