"""How fast ADMM's multipliers reach the centralized MPC's in the power system, the
paper's dual-error figure: sum over the 4 areas of ||lambda_i* - lambda_i^tau|| +
||mu_i* - mu_i^tau|| (dynamics and inequality multipliers) after tau ADMM iterations, at
every 5th state of a closed-loop episode under the initial parameters; plain ADMM with
the release's penalty (rho 50) and this repository's accelerated ADMM, each from a cold
and a warm start (:mod:`marl_dmpc.dual_error`).

    python power_system/admm_dual_error.py --out data/power_system/admm_dual_error.pkl
"""

from __future__ import annotations

import sys

from marl_dmpc import dual_error
from reproduction.power_system import model
from reproduction.power_system.config import PowerSystemConfig
from reproduction.power_system.env import PowerSystemEnv
from reproduction.power_system.q_learning_power import build_learner

#: The default result file (with _2, _3, ... if it exists).
DEFAULT_OUT = "runs/power_system_admm_dual_error.pkl"
#: The release's ADMM penalty for the power system.
RELEASE_RHO = 50.0


def main(argv: list[str] | None = None) -> int:
    return dual_error.main(
        argv,
        example="power_system",
        config=PowerSystemConfig(),
        build_learner=build_learner,
        make_env=lambda steps: PowerSystemEnv(max_steps=steps),
        steps=model.EPISODE_STEPS,
        every=5,
        rho=RELEASE_RHO,
        default_out=DEFAULT_OUT,
        description=__doc__.split("\n\n")[0],
    )


if __name__ == "__main__":
    sys.exit(main())
