"""How fast ADMM's multipliers reach the centralized MPC's in example 1: the dual error
(dynamics and inequality multipliers, against the centralized MPC) after tau ADMM
iterations, at the states of a closed-loop episode under the initial parameters; plain
ADMM (the release's penalty) and this repository's accelerated ADMM, each from a cold and
a warm start (:mod:`marl_dmpc.dual_error`).

    python example_1/admm_dual_error.py --out data/example_1/admm_dual_error.pkl
"""

from __future__ import annotations

import sys

from marl_dmpc import dual_error
from reproduction.example_1.config import Example1Config
from reproduction.example_1.env import CoupledLinearSystemsEnv
from reproduction.example_1.example_1 import build_learner

#: The default result file (with _2, _3, ... if it exists).
DEFAULT_OUT = "runs/example_1_admm_dual_error.pkl"


def main(argv: list[str] | None = None) -> int:
    config = Example1Config()
    return dual_error.main(
        argv,
        example="example_1",
        config=config,
        build_learner=build_learner,
        make_env=lambda steps: CoupledLinearSystemsEnv(max_steps=steps),
        steps=20,
        every=1,
        rho=config.rho,
        default_out=DEFAULT_OUT,
        description=__doc__.split("\n\n")[0],
    )


if __name__ == "__main__":
    sys.exit(main())
