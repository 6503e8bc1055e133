"""Train example 1 (three coupled linear systems) with distributed or centralized MPC-based
Q-learning and write the result pickle.

    python example_1/example_1.py                 # distributed, 200 steps
    python example_1/example_1.py --steps 20000   # the release's long run
    python example_1/example_1.py --centralized --seed 3 --out runs/c3.pkl
    python example_1/example_1.py --help          # every setting, with its default

What is specific to example 1 is here and in this folder (model, env, local MPC,
config); the command line and the run are :mod:`marl_dmpc.driver`'s.
"""

from __future__ import annotations

import sys

from marl_dmpc.driver import TrainingExample
from marl_dmpc.learning import Learner, make_learner
from marl_dmpc.runs import TrainingSetup
from reproduction.example_1.config import Example1Config
from reproduction.example_1.env import CoupledLinearSystemsEnv
from reproduction.example_1.model import network
from reproduction.example_1.mpc import Example1Mpc


def build_learner(config: Example1Config) -> Learner:
    """The learner ``config`` asks for."""
    return make_learner(Example1Mpc(config.horizon, config.discount), network(), config)


def setup(config: Example1Config) -> TrainingSetup:
    """What a run with ``config`` trains: one episode of ``config.steps`` steps."""
    env = CoupledLinearSystemsEnv(max_steps=config.steps)
    return TrainingSetup.one_episode("example 1", build_learner(config), env, config.steps)


EXAMPLE = TrainingExample(
    name="example_1",
    config_type=Example1Config,
    setup=setup,
    prog="example_1.py",
    description="Train example 1 of Mallick et al. (2024): MPC-based multi-agent "
    "Q-learning on three coupled linear systems.",
)


def main(argv: list[str] | None = None) -> int:
    return EXAMPLE.main(argv)


if __name__ == "__main__":
    sys.exit(main())
