"""Multi-agent Q-learning with an MPC as the Q-function, distributed or centralized.

:class:`DistributedQLearning` (:mod:`.distributed`) is the paper's method: the network's
V(s) and Q(s, a) are solved by consensus ADMM over the agents' local MPCs; global scalars
(stage cost, V, Q) are formed by average consensus; every agent computes the TD error
and updates its own parameters with the gradient of its local Lagrangian. It is built
from mpcrl's parts (:mod:`.settings`) and follows the steps of mpcrl's
:class:`~mpcrl.LstdQLearningAgent` one for one, so that with the same seed it draws the
same exploration, env noise and replay samples as :class:`CentralizedQLearning`
(:mod:`.centralized`), which *is* mpcrl's agent on the centralized MPC. Both run the
resumable loop of :mod:`.loop` and record into a :class:`~.records.TrainingLog`;
:mod:`.check` compares a distributed solve with the centralized MPC.

Q(s, a) at V's own action. Exploration perturbs V's cost, so the action a taken in s is
always V(s)'s first input; if no update came between V(s) and Q(s, a), Q's problem has
V's primal solution, and both learners read Q(s, a) and dQ/dtheta off V(s)'s solution
(the value without the perturbation; V's multipliers, the perturbation taking the place
of the first-action constraint's). That is not only one solve saved: fixing u_0 pins
x_1, so wherever V's solution puts x_1 on a soft bound with zero slack (often: the
penalty is linear) Q's multipliers are not unique -- solvers, ADMM included, then return
different points of an interval (seen: 0.04 against 11.6) -- while V's are (u_0 is free).
Both learners make this choice, so their gradients stay equal. After an update, Q(s, a)
is solved.
"""

from __future__ import annotations

from ..config import TrainingConfig
from ..mpc import LocalMpcDefinition
from ..network import Network
from .centralized import CentralizedQLearning
from .check import CentralizedCheck
from .distributed import ActionValue, DistributedQLearning
from .divergence import DivergenceMonitor, LearningDiverged
from .loop import StepCallback, TrainingLoop
from .records import TrainingLog

Learner = DistributedQLearning | CentralizedQLearning

__all__ = [
    "ActionValue",
    "CentralizedCheck",
    "CentralizedQLearning",
    "DistributedQLearning",
    "DivergenceMonitor",
    "Learner",
    "LearningDiverged",
    "StepCallback",
    "TrainingLog",
    "TrainingLoop",
    "make_learner",
]


def make_learner(
    definition: LocalMpcDefinition, network: Network, config: TrainingConfig
) -> Learner:
    """The learner ``config`` asks for: centralized (mpcrl's agent on the network's MPC)
    or distributed (consensus ADMM over the local MPCs)."""
    if config.centralized:
        return CentralizedQLearning(
            definition,
            network,
            config.q_learning(),
            solver=config.solver,
            safeguards=config.stabilization(),
        )
    return DistributedQLearning(
        definition,
        network,
        config.q_learning(),
        config.admm(),
        consensus_iters=config.consensus_iters,
        solver=config.solver,
        check_centralized=config.check_centralized,
        safeguards=config.stabilization(),
    )
