"""Train the example of the authors' follow-up, "Second-order MPC-based distributed
Q-learning" (three coupled systems, learned cost weights and model), with second-order
(the default) or first-order updates, distributed or centralized, and write the result
pickle.

    python second_order/second_order.py                                  # Newton, 2,000 steps
    python second_order/second_order.py --optimizer gradient --learning-rate 1e-8
    python second_order/second_order.py --centralized --seed 3 --out runs/so_c3.pkl

What is specific to the example is in this folder (model, env, local MPC, config); the
command line and the run are :mod:`marl_dmpc.driver`'s.
"""

from __future__ import annotations

import sys

from marl_dmpc.driver import TrainingExample
from marl_dmpc.learning import Learner, make_learner
from marl_dmpc.runs import TrainingSetup
from reproduction.second_order.config import SecondOrderConfig
from reproduction.second_order.env import ChainNetworkEnv
from reproduction.second_order.model import network
from reproduction.second_order.mpc import SecondOrderMpc


def build_learner(config: SecondOrderConfig) -> Learner:
    """The learner ``config`` asks for."""
    return make_learner(SecondOrderMpc(config.horizon, config.discount), network(), config)


def setup(config: SecondOrderConfig) -> TrainingSetup:
    """What a run with ``config`` trains: one episode of ``config.steps`` steps."""
    env = ChainNetworkEnv(max_steps=config.steps)
    return TrainingSetup.one_episode(
        "second-order example", build_learner(config), env, config.steps
    )


EXAMPLE = TrainingExample(
    name="second_order",
    config_type=SecondOrderConfig,
    setup=setup,
    prog="second_order.py",
    description="Train the example of Mallick et al.'s follow-up (2025): second-order "
    "MPC-based distributed Q-learning on three coupled systems.",
)


def main(argv: list[str] | None = None) -> int:
    return EXAMPLE.main(argv)


if __name__ == "__main__":
    sys.exit(main())
