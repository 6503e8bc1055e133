"""Train example 1 (three coupled linear systems) with distributed or centralized MPC-based
Q-learning and write the result pickle.

    python example_1/example_1.py                 # distributed, 200 steps
    python example_1/example_1.py --steps 20000   # the release's long run
    python example_1/example_1.py --centralized --seed 3 --out runs/c3.pkl
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from example_1.config import Example1Config  # noqa: E402
from example_1.env import CoupledLinearSystemsEnv  # noqa: E402
from example_1.model import network  # noqa: E402
from example_1.mpc import Example1Mpc  # noqa: E402
from marl_dmpc import runs  # noqa: E402
from marl_dmpc.cli import (  # noqa: E402
    OneLineArgumentParser,
    TrainingRun,
    add_training_flags,
    parse_training_args,
    positive_int,
)


def parse_args(argv: list[str] | None = None) -> TrainingRun:
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
    add_training_flags(parser, defaults, checkpoint_unit="steps")
    return parse_training_args(parser, Example1Config, "example_1", argv)


def make_learner(config: Example1Config) -> runs.Learner:
    """The learner ``config`` asks for."""
    return runs.make_learner(Example1Mpc(config.horizon, config.discount), network(), config)


def setup(config: Example1Config) -> runs.TrainingSetup:
    """What a run with ``config`` trains."""
    return runs.TrainingSetup(
        label=f"example 1, {config.steps} steps",
        learner=make_learner(config),
        env=CoupledLinearSystemsEnv(max_steps=config.steps),
        episodes=1,
        total_steps=config.steps,
        checkpoint_unit="steps",
    )


def main(argv: list[str] | None = None) -> int:
    return runs.run_training(parse_args(argv), setup, "example_1")


if __name__ == "__main__":
    sys.exit(main())
