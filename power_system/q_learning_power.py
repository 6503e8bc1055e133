"""Train example 2 (four-area power system, load frequency control) with distributed or
centralized MPC-based Q-learning and write the result pickle.

    python power_system/q_learning_power.py                  # distributed, 5 episodes
    python power_system/q_learning_power.py --episodes 100   # the paper's run
    python power_system/q_learning_power.py --centralized --seed 3 --out runs/c3.pkl
    python power_system/q_learning_power.py --help           # every setting

What is specific to the power system is here and in this folder (model, env, local MPC,
config); the command line and the run are :mod:`marl_dmpc.driver`'s.
"""

from __future__ import annotations

import sys

from marl_dmpc.driver import TrainingExample
from marl_dmpc.learning import Learner, make_learner
from marl_dmpc.runs import TrainingSetup
from reproduction.power_system.config import PowerSystemConfig
from reproduction.power_system.env import PowerSystemEnv
from reproduction.power_system.model import network
from reproduction.power_system.mpc import PowerSystemMpc


def build_learner(config: PowerSystemConfig) -> Learner:
    """The learner ``config`` asks for."""
    return make_learner(PowerSystemMpc(config.horizon, config.discount), network(), config)


def setup(config: PowerSystemConfig) -> TrainingSetup:
    """What a run with ``config`` trains: ``config.episodes`` episodes of
    ``config.episode_steps`` steps."""
    return TrainingSetup(
        label=f"power system, {config.episodes} episodes",
        learner=build_learner(config),
        env=PowerSystemEnv(max_steps=config.episode_steps),
        episodes=config.episodes,
        total_steps=config.episodes * config.episode_steps,
        checkpoint_unit="episodes",
    )


EXAMPLE = TrainingExample(
    name="power_system",
    config_type=PowerSystemConfig,
    setup=setup,
    prog="q_learning_power.py",
    description="Train example 2 of Mallick et al. (2024): MPC-based multi-agent "
    "Q-learning for load frequency control of a four-area power system.",
)


def main(argv: list[str] | None = None) -> int:
    return EXAMPLE.main(argv)


if __name__ == "__main__":
    sys.exit(main())
