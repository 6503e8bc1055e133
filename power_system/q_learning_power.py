"""Train example 2 (four-area power system, load frequency control) with distributed or
centralized MPC-based Q-learning and write the result pickle.

    python power_system/q_learning_power.py                  # distributed, 5 episodes
    python power_system/q_learning_power.py --episodes 100   # the paper's run
    python power_system/q_learning_power.py --centralized --seed 3 --out runs/c3.pkl
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from marl_dmpc import runs  # noqa: E402
from marl_dmpc.cli import (  # noqa: E402
    OneLineArgumentParser,
    TrainingRun,
    add_training_flags,
    parse_training_args,
    positive_int,
)
from power_system.config import PowerSystemConfig  # noqa: E402
from power_system.env import PowerSystemEnv  # noqa: E402
from power_system.model import network  # noqa: E402
from power_system.mpc import PowerSystemMpc  # noqa: E402


def parse_args(argv: list[str] | None = None) -> TrainingRun:
    defaults = PowerSystemConfig()
    parser = OneLineArgumentParser(
        prog="q_learning_power.py",
        description="Train example 2 of Mallick et al. (2024): MPC-based multi-agent "
        "Q-learning for load frequency control of a four-area power system.",
    )
    parser.add_argument(
        "--episodes",
        type=positive_int,
        default=defaults.episodes,
        help=f"training episodes of {defaults.episode_steps} steps; default %(default)s "
        "(the paper: 100)",
    )
    add_training_flags(parser, defaults, checkpoint_unit="episodes")
    return parse_training_args(parser, PowerSystemConfig, "power_system", argv)


def make_learner(config: PowerSystemConfig) -> runs.Learner:
    """The learner ``config`` asks for."""
    return runs.make_learner(PowerSystemMpc(config.horizon, config.discount), network(), config)


def setup(config: PowerSystemConfig) -> runs.TrainingSetup:
    """What a run with ``config`` trains."""
    return runs.TrainingSetup(
        label=f"power system, {config.episodes} episodes",
        learner=make_learner(config),
        env=PowerSystemEnv(max_steps=config.episode_steps),
        episodes=config.episodes,
        total_steps=config.episodes * config.episode_steps,
        checkpoint_unit="episodes",
    )


def main(argv: list[str] | None = None) -> int:
    return runs.run_training(parse_args(argv), setup, "power_system")


if __name__ == "__main__":
    sys.exit(main())
