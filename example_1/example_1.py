"""Train example 1 (three coupled linear systems) with distributed or centralized MPC-based
Q-learning and write the result pickle.

    python example_1/example_1.py                 # distributed, 200 steps
    python example_1/example_1.py --steps 20000   # the release's long run
    python example_1/example_1.py --centralized --seed 3 --out runs/c3.pkl
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from example_1.config import Example1Config  # noqa: E402
from example_1.env import CoupledLinearSystemsEnv  # noqa: E402
from example_1.model import network  # noqa: E402
from example_1.mpc import Example1Mpc  # noqa: E402
from marl_dmpc.cli import (  # noqa: E402
    OneLineArgumentParser,
    check_writable,
    fail,
    nonnegative_float,
    nonnegative_int,
    positive_int,
    quiet_solvers,
)
from marl_dmpc.envs import StepRecorder  # noqa: E402
from marl_dmpc.learning import CentralizedQLearning, DistributedQLearning  # noqa: E402
from marl_dmpc.runs import train_and_save  # noqa: E402
from marl_dmpc.solvers import SOLVER_CHOICES  # noqa: E402


def parse_args(argv: list[str] | None = None) -> tuple[Example1Config, Path, bool]:
    defaults = Example1Config()
    parser = OneLineArgumentParser(
        prog="example_1.py",
        description="Train example 1 of Mallick et al. (2024): MPC-based multi-agent "
        "Q-learning on three coupled linear systems.",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=defaults.steps,
        help="training steps (one episode); default %(default)s",
    )
    parser.add_argument(
        "--seed",
        type=nonnegative_int,
        default=defaults.seed,
        help="seed of the run (env noise, exploration, replay); default %(default)s",
    )
    parser.add_argument(
        "--centralized",
        action="store_true",
        help="learn with the centralized MPC (mpcrl's LSTD Q-learning)",
    )
    parser.add_argument(
        "--out", default=None, help="result pickle; default runs/example_1_<mode>_seed<seed>.pkl"
    )
    parser.add_argument(
        "--solver",
        choices=SOLVER_CHOICES,
        default=defaults.solver,
        help="solver of the MPCs; default %(default)s",
    )
    parser.add_argument(
        "--admm-iters",
        type=positive_int,
        default=defaults.admm_iters,
        help="ADMM iteration cap; default %(default)s",
    )
    parser.add_argument(
        "--admm-tol",
        type=nonnegative_float,
        default=defaults.admm_tol,
        help="ADMM primal-residual tolerance, 0 runs exactly --admm-iters "
        "(the release: --admm-iters 50 --admm-tol 0); default %(default)s",
    )
    parser.add_argument(
        "--admm-dual-tol",
        type=nonnegative_float,
        default=defaults.admm_dual_tol,
        help="ADMM dual-residual tolerance; default %(default)s",
    )
    parser.add_argument(
        "--consensus-iters",
        type=nonnegative_int,
        default=defaults.consensus_iters,
        help="average-consensus iterations; default %(default)s",
    )
    parser.add_argument(
        "--check-centralized",
        action="store_true",
        help="also solve the centralized MPC at every distributed solve and "
        "record the V, Q and multiplier gaps",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.centralized and args.check_centralized:
        parser.error("--check-centralized applies to distributed runs only")
    # every flag named like a config field sets that field
    config = Example1Config(
        **{f.name: getattr(args, f.name) for f in fields(Example1Config) if hasattr(args, f.name)}
    )
    out = args.out or f"runs/example_1_{config.mode}_seed{config.seed}.pkl"
    try:
        out_path = check_writable(out)
    except ValueError as err:
        parser.error(str(err))
    return config, out_path, not args.no_progress


def make_learner(config: Example1Config) -> DistributedQLearning | CentralizedQLearning:
    """The learner ``config`` asks for."""
    definition = Example1Mpc(config.horizon, config.discount)
    net = network()
    if config.centralized:
        return CentralizedQLearning(definition, net, config.q_learning(), solver=config.solver)
    return DistributedQLearning(
        definition,
        net,
        config.q_learning(),
        rho=config.rho,
        admm_iterations=config.admm_iters,
        admm_tolerance=config.admm_tol,
        admm_dual_tolerance=config.admm_dual_tol,
        consensus_iterations=config.consensus_iters,
        solver=config.solver,
        check_centralized=config.check_centralized,
    )


def main(argv: list[str] | None = None) -> int:
    config, out, progress = parse_args(argv)
    print(
        f"example 1, {config.mode}, {config.steps} steps, seed {config.seed} -> {out}", flush=True
    )
    with quiet_solvers():
        learner = make_learner(config)
        env = StepRecorder(CoupledLinearSystemsEnv(max_steps=config.steps))
        outcome = train_and_save(learner, env, 1, config.steps, config.seed, config, out, progress)
    result = outcome.result
    print(
        f"{outcome.status}: {result['steps_completed']} steps, {result['updates']} updates, "
        f"total cost {result['costs'].sum():.4g}, {result['ms_per_step']:.1f} ms/step; "
        f"result written to {out}"
    )
    if outcome.status == "failed":
        fail(outcome.message)
    return 130 if outcome.status == "interrupted" else 0


if __name__ == "__main__":
    sys.exit(main())
