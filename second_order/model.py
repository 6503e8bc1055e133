"""The network of the authors' follow-up on second-order learning (docs/second_order.md):
three agents on a chain, each ``x_i+ = A x_i + B u_i + A_c sum_{j in N_i} x_j + w_i``,
where the coupling acts from every neighbour's second state on the agent's second state.
The learner starts from an inaccurate model (:data:`INACCURATE`); the plant is
:data:`TRUE`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from marl_dmpc.envs import soft_bound_stage_costs
from marl_dmpc.network import Network

N_AGENTS = 3
NX, NU = 2, 1


@dataclass(frozen=True)
class AgentModel:
    """One agent's model: ``A``, ``B`` and the coupling coefficient ``ac`` (from each
    neighbour's second state to the agent's second state)."""

    A: npt.NDArray[np.floating]
    B: npt.NDArray[np.floating]
    ac: float


TRUE = AgentModel(A=np.array([[0.9, 0.35], [0.0, 1.1]]), B=np.array([[0.0813], [0.2]]), ac=-0.1)
INACCURATE = AgentModel(
    A=np.array([[1.0, 0.25], [0.0, 1.0]]), B=np.array([[0.0312], [0.25]]), ac=0.0
)

X_LB = np.array([0.0, -1.0])
X_UB = np.array([1.0, 1.0])
U_LB = np.array([-1.0])
U_UB = np.array([1.0])
#: Weight of a state-bound violation in the stage cost (and the slacks' initial weight).
VIOLATION_WEIGHT = np.array([500.0, 500.0])
#: Every agent's initial state.
X0 = np.array([0.0, 0.15])
#: Every agent's first state is disturbed by U[NOISE_LOW, NOISE_HIGH] each step.
NOISE_LOW, NOISE_HIGH = -0.1, 0.0


def network() -> Network:
    """The chain 0 - 1 - 2."""
    return Network.chain(N_AGENTS)


def coupling(ac: float) -> npt.NDArray[np.floating]:
    """The coupling matrix of coefficient ``ac``: a neighbour's second state into the
    agent's second state."""
    return np.array([[0.0, 0.0], [0.0, ac]])


def network_matrices(model: AgentModel, net: Network) -> tuple[npt.NDArray, npt.NDArray]:
    """The stacked ``(A, B)`` of the whole network, every agent with ``model``."""
    n = net.n_agents
    A = np.zeros((n * NX, n * NX))
    B = np.zeros((n * NX, n * NU))
    for i in range(n):
        A[i * NX : (i + 1) * NX, i * NX : (i + 1) * NX] = model.A
        B[i * NX : (i + 1) * NX, i * NU : (i + 1) * NU] = model.B
        for j in net.neighbours(i):
            A[i * NX : (i + 1) * NX, j * NX : (j + 1) * NX] = coupling(model.ac)
    return A, B


def stage_costs(x: npt.NDArray, u: npt.NDArray, n_agents: int = N_AGENTS) -> npt.NDArray:
    """Each agent's stage cost ``0.5 (||x_i||^2 + 0.5 ||u_i||^2 + w^T viol(x_i))``."""
    return soft_bound_stage_costs(x, u, n_agents, (X_LB, X_UB), VIOLATION_WEIGHT)
