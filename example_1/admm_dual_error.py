"""How fast ADMM's multipliers reach the centralized MPC's in example 1: the dual error
sum_i ||lambda_i* - lambda_i^tau|| (dynamics multipliers, agent by agent) of V(s) after tau
ADMM iterations from a cold start, for states along a closed-loop episode under the
initial (unlearned) parameters; plain ADMM (the release's) and the Anderson-accelerated
ADMM of this repository. The data of the paper's dual-error figure.

    python example_1/admm_dual_error.py --out data/example_1/admm_dual_error.pkl
"""

from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np

from marl_dmpc.admm import AdmmCoordinator
from marl_dmpc.cli import (
    OneLineArgumentParser,
    add_output_flags,
    nonnegative_int,
    positive_int,
    positive_int_list,
)
from marl_dmpc.config import AdmmSettings
from marl_dmpc.driver import claim_output
from marl_dmpc.results import save_result, single, versions
from marl_dmpc.solvers import quiet_solvers
from reproduction.example_1.config import Example1Config
from reproduction.example_1.env import CoupledLinearSystemsEnv
from reproduction.example_1.example_1 import build_learner

#: The default result file (with _2, _3, ... if it exists).
DEFAULT_OUT = "runs/example_1_admm_dual_error.pkl"
ITERATIONS = (1, 2, 5, 10, 20, 30, 40, 50, 70, 100, 150, 200)


def dual_errors(
    config: Example1Config, iterations: list[int], states: int, seed: int
) -> tuple[np.ndarray, list[str]]:
    """The dual errors, shape (variants, states, len(iterations)), and the variants'
    labels."""
    learner = build_learner(dataclasses.replace(config, check_centralized=True))
    network, mpcs = learner.network, learner.local_mpcs
    variants = {
        "plain ADMM": lambda tau: AdmmCoordinator(
            network, mpcs, AdmmSettings(rho=config.rho, admm_iters=tau)
        ),
        f"Anderson-accelerated ADMM (memory {config.admm_memory})": lambda tau: AdmmCoordinator(
            network,
            mpcs,
            dataclasses.replace(config.admm(), admm_iters=tau, admm_tol=1e-14, admm_dual_tol=1e-14),
        ),
    }
    # the states: a closed-loop episode with the converged ADMM's actions
    env = CoupledLinearSystemsEnv(max_steps=states)
    state, _ = env.reset(seed=seed)
    visited = []
    for _ in range(states):
        visited.append(state)
        action, _ = learner.state_value(state, deterministic=True)
        state, *_ = env.step(action)
    errors = np.zeros((len(variants), states, len(iterations)))
    for v, make in enumerate(variants.values()):
        for t, tau in enumerate(iterations):
            learner.admm = make(tau)
            for s, x in enumerate(visited):
                learner.admm.reset()  # a cold start: y = z = 0
                learner.state_value(x, deterministic=True)
                errors[v, s, t] = learner.log.check["dual_error_norms"][-1]
    return errors, list(variants)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="admm_dual_error.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations",
        type=positive_int_list,
        default=list(ITERATIONS),
        help="ADMM iteration counts, comma-separated; default "
        + ",".join(str(i) for i in ITERATIONS),
    )
    parser.add_argument(
        "--states", type=positive_int, default=20, help="states of the episode; default 20"
    )
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the episode's noise; default 0"
    )
    add_output_flags(parser, DEFAULT_OUT)
    args = parser.parse_args(argv)
    outputs, out = claim_output(args.out, DEFAULT_OUT, args.overwrite)
    config = Example1Config()
    start = time.perf_counter()
    with quiet_solvers():
        errors, labels = dual_errors(config, args.iterations, args.states, args.seed)
    wall = time.perf_counter() - start
    result = {
        "kind": "example_1_admm_dual_error",
        "labels": labels,
        "iterations": np.array(args.iterations),
        "dual_errors": single(errors),
        "seed": args.seed,
        "config": dataclasses.asdict(config),
        "wall_time_s": wall,
        "versions": versions(),
    }
    save_result(out, result, outputs)
    median = np.median(errors, axis=1)
    print("iterations | " + " | ".join(labels))
    for t, tau in enumerate(args.iterations):
        print(f"{tau} | " + " | ".join(f"{median[v, t]:.3g}" for v in range(len(labels))))
    print(f"median over {args.states} states; {wall:.1f} s; result written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
