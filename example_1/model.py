"""Example 1's network: three coupled linear systems on a chain (docs/reproduction.md, "Example 1").

Agent ``i`` has state ``x_i`` in R^2 and input ``u_i`` in R; its dynamics are
``x_i+ = A x_i + B u_i + sum_{j in N_i} A_c x_j + w_i``. The learner only knows an
inaccurate model (:data:`INACCURATE`); the plant uses :data:`TRUE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from marl_dmpc.envs import soft_bound_stage_costs
from marl_dmpc.network import Network

N_AGENTS = 3
NX, NU = 2, 1


@dataclass(frozen=True)
class LinearModel:
    """One agent's linear model ``x+ = A x + B u + sum_j A_c x_j``."""

    A: npt.NDArray[np.floating]
    B: npt.NDArray[np.floating]
    A_c: npt.NDArray[np.floating]


TRUE = LinearModel(
    A=np.array([[0.9, 0.35], [0.0, 1.1]]),
    B=np.array([[0.0813], [0.2]]),
    A_c=np.array([[0.0, 0.0], [0.0, -0.1]]),
)
INACCURATE = LinearModel(
    A=np.array([[1.0, 0.25], [0.0, 1.0]]),
    B=np.array([[0.0312], [0.25]]),
    A_c=np.zeros((2, 2)),
)

X_LB = np.array([0.0, -1.0])
X_UB = np.array([1.0, 1.0])
U_LB = np.array([-1.0])
U_UB = np.array([1.0])
#: Weight of a state-bound violation in the stage cost (and of the slack in the MPC).
VIOLATION_WEIGHT = np.array([120.0, 120.0])
#: Initial state of every agent at the start of an episode.
X0 = np.array([0.0, 0.15])
#: The first state of every agent is disturbed by U[NOISE_LOW, NOISE_HIGH] each step.
NOISE_LOW, NOISE_HIGH = -0.1, 0.0


def network() -> Network:
    """The chain 0 - 1 - 2."""
    return Network.chain(N_AGENTS)


def network_matrices(
    model: LinearModel | Sequence[LinearModel], net: Network
) -> tuple[npt.NDArray, npt.NDArray]:
    """The stacked ``(A, B)`` of the whole network for ``model`` (one for every agent,
    or one per agent)."""
    n = net.n_agents
    models = [model] * n if isinstance(model, LinearModel) else list(model)
    A = np.zeros((n * NX, n * NX))
    B = np.zeros((n * NX, n * NU))
    for i, m in enumerate(models):
        A[i * NX : (i + 1) * NX, i * NX : (i + 1) * NX] = m.A
        B[i * NX : (i + 1) * NX, i * NU : (i + 1) * NU] = m.B
        for j in net.neighbours(i):
            A[i * NX : (i + 1) * NX, j * NX : (j + 1) * NX] = m.A_c
    return A, B


def stage_costs(x: npt.NDArray, u: npt.NDArray, n_agents: int = N_AGENTS) -> npt.NDArray:
    """Each agent's stage cost ``0.5 (||x_i||^2 + 0.5 ||u_i||^2 + w^T viol(x_i))``."""
    return soft_bound_stage_costs(x, u, n_agents, (X_LB, X_UB), VIOLATION_WEIGHT)


def violations(states: npt.ArrayLike, n_agents: int = N_AGENTS) -> npt.NDArray[np.bool_]:
    """Whether each network state (rows of ``states``) has some agent outside its state
    bounds ``[X_LB, X_UB]``."""
    x = np.asarray(states, dtype=float).reshape(-1, n_agents, NX)
    return ((x < X_LB) | (x > X_UB)).any(axis=(1, 2))


def sample_model(rng: np.random.Generator | np.random.RandomState) -> LinearModel:
    """One agent's model as the scenario MPC samples it (docs/reproduction.md): the inaccurate ``A``
    plus U[-0.1, 0.1] on entries (0, 0), (0, 1), (1, 1); ``A_c`` entry (1, 1) from
    U[-0.1, 0]; the inaccurate ``B`` plus U[0, 0.075] on entry 0 and U[-0.075, 0] on
    entry 1."""
    A = INACCURATE.A.copy()
    A[[0, 0, 1], [0, 1, 1]] += rng.uniform(-0.1, 0.1, 3)
    A_c = np.zeros((NX, NX))
    A_c[1, 1] = rng.uniform(-0.1, 0.0)
    B = INACCURATE.B + np.array([[rng.uniform(0.0, 0.075)], [rng.uniform(-0.075, 0.0)]])
    return LinearModel(A=A, B=B, A_c=A_c)
