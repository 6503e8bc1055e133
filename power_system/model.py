"""Example 2's network: four power-system areas on a chain, load frequency control
(docs/reproduction.md, "Example 2"; the Hycon2 benchmark of Riverso and Ferrari-Trecate, 2012).

Area ``i`` has the state ``x_i = [dtheta_i, df_i, dPm_i, dPg_i]`` (phase angle,
frequency, mechanical power, governor), the input ``u_i = dPref_i`` and the load
``dPL_i``; in continuous time

    x_i' = A_i x_i + B_i u_i + L_i dPL_i + sum_{j in N_i} A_ij x_j

with the tie-line coefficients ``P_ij`` in ``A_i`` and ``A_ij``. The matrices are built by
:func:`area_matrices` from numbers or CasADi symbols alike, so the learnable MPC
discretizes the same model with learnable ``P_ij``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import casadi as cs
import numpy as np
import numpy.typing as npt

from marl_dmpc.network import Network

N_AREAS = 4
NX, NU = 4, 1
#: Sampling time (s).
TS = 1.0

H = np.array([12.0, 10.0, 8.0, 8.0])
R = np.array([0.05, 0.0625, 0.08, 0.08])
D = np.array([0.7, 0.9, 0.9, 0.7])
T_T = np.array([0.65, 0.4, 0.3, 0.6])
T_G = np.array([0.1, 0.1, 0.1, 0.1])
#: True tie-line coefficients, ``P_TIE[i, j]`` between areas ``i`` and ``j``.
P_TIE = np.array(
    [
        [0.0, 4.0, 0.0, 0.0],
        [4.0, 0.0, 2.0, 0.0],
        [0.0, 2.0, 0.0, 2.0],
        [0.0, 0.0, 2.0, 0.0],
    ]
)
#: The learner's initial tie-line coefficients: the true ones plus U[-2, 2] noise, as
#: drawn by the paper's code release (P_12, P_21, P_23, P_32, P_34, P_43).
P_TIE_INIT = np.array(
    [
        [0.0, 4.7675, 0.0, 0.0],
        [3.2621, 0.0, 2.7460, 0.0],
        [0.0, 3.3385, 0.0, 0.0732],
        [0.0, 0.0, 3.0006, 0.0],
    ]
)

#: Input bounds ``|u_i| <= U_MAX[i]`` (hard).
U_MAX = np.array([0.2, 0.1, 0.3, 0.1])
#: Angle bound ``|dtheta_i| <= THETA_MAX`` (soft) and the weight of its violation.
THETA_MAX = 0.1
VIOLATION_WEIGHT = 500.0
#: Stage cost weights.
Q_X = np.diag([500.0, 0.01, 0.01, 10.0])
Q_U = 10.0
#: Weight of the tie-line power term ``0.5 ts |P_ij (dtheta_i - dtheta_j)|``.
TIE_WEIGHT = 0.5
#: Every area's load is disturbed by U[-LOAD_NOISE, LOAD_NOISE] every step.
LOAD_NOISE = 0.1
#: Load schedule: from step ``k`` (counted from 1 at reset) on, the loads are ``loads``.
LOAD_STEPS: tuple[tuple[int, tuple[float, ...]], ...] = (
    (5, (0.15, 0.0, 0.0, 0.0)),
    (15, (0.15, -0.15, 0.0, 0.0)),
    (20, (0.15, -0.15, 0.12, 0.0)),
    (40, (0.15, -0.15, -0.12, 0.28)),
)
#: Steps of an episode.
EPISODE_STEPS = 100


@functools.cache
def network() -> Network:
    """The chain 0 - 1 - 2 - 3 (one immutable object, built once: the environment's
    stage cost reads it at every step)."""
    return Network.chain(N_AREAS)


def scheduled_load(step: int) -> npt.NDArray[np.floating]:
    """The nominal loads during step ``step`` (1 is the first step after a reset)."""
    load = np.zeros(N_AREAS)
    for start, values in LOAD_STEPS:
        if step >= start:
            load = np.array(values)
    return load


def set_points(load: npt.ArrayLike) -> tuple[npt.NDArray, npt.NDArray]:
    """The state and input set points of every area for ``load``: ``x_o,i = [0, 0,
    load_i, load_i]`` and ``u_o,i = load_i``; shapes ``(n, NX)`` and ``(n, NU)``."""
    load = np.asarray(load, dtype=float).reshape(-1)
    x_o = np.zeros((load.size, NX))
    x_o[:, 2] = x_o[:, 3] = load
    return x_o, load.reshape(-1, NU).copy()


def area_matrices(
    i: int, tie: Sequence[Any], h: Any = None, d: Any = None, t_t: Any = None, t_g: Any = None
) -> tuple[Any, Any, Any, list[Any]]:
    """Continuous-time ``(A_i, B_i, L_i, [A_ij for each neighbour])`` of area ``i``.

    ``tie`` holds ``P_ij`` for each neighbour ``j`` in increasing order (numbers or
    CasADi symbols); ``h``, ``d``, ``t_t`` and ``t_g`` default to the true values.
    Numeric input gives arrays; symbolic input gives CasADi matrices.
    """
    h = H[i] if h is None else h
    d = D[i] if d is None else d
    t_t = T_T[i] if t_t is None else t_t
    t_g = T_G[i] if t_g is None else t_g
    symbolic = any(isinstance(v, (cs.SX, cs.MX)) for v in (*tie, h, d, t_t, t_g))

    def matrix(rows: list[list[Any]]) -> Any:
        if symbolic:
            return cs.vertcat(*(cs.horzcat(*(cs.SX(v) for v in row)) for row in rows))
        return np.array(rows, dtype=float)

    total = sum(tie[1:], tie[0]) if len(tie) else 0.0
    A = matrix(
        [
            [0.0, 1.0, 0.0, 0.0],
            [-total / (2 * h), -d / (2 * h), 1 / (2 * h), 0.0],
            [0.0, 0.0, -1 / t_t, 1 / t_t],
            [0.0, -1 / (R[i] * t_g), 0.0, -1 / t_g],
        ]
    )
    B = matrix([[0.0], [0.0], [0.0], [1 / t_g]])
    L = matrix([[0.0], [-1 / (2 * h)], [0.0], [0.0]])
    # a neighbour's angle drives the frequency
    couplings = [
        matrix([[0.0] * 4, [p / (2 * h), 0.0, 0.0, 0.0], [0.0] * 4, [0.0] * 4]) for p in tie
    ]
    return A, B, L, couplings


def angle_violations(states: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each network state (rows of ``states``) has some area's angle beyond
    ``THETA_MAX``."""
    x = np.asarray(states, dtype=float).reshape(-1, N_AREAS, NX)
    return (np.abs(x[:, :, 0]) > THETA_MAX).any(axis=1)
