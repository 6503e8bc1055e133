"""Zero-order-hold discretization of a linear model, numeric or symbolic (CasADi).

For ``x' = A x + B v`` with ``v`` held over a step of length ``ts``,
``x+ = Ad x + Bd v`` with ``Ad = exp(A ts)`` and ``Bd = int_0^ts exp(A s) ds B``: the
blocks of ``exp([[A, B], [0, 0]] ts)``. :func:`zero_order_hold` computes them by scaling
and squaring a Taylor series, with operations CasADi's symbols support too, so a model
whose matrices depend on learnable parameters is discretized exactly (to rounding) and
remains differentiable w.r.t. them. The number of squarings must then be fixed when the
expression is built: :func:`squarings_for` picks it from a numeric value of ``A`` (e.g.
at the nominal parameters), with room for the parameters to move.
"""

from __future__ import annotations

import math
from typing import TypeVar

import casadi as cs
import numpy as np
import numpy.typing as npt

Matrix = TypeVar("Matrix", npt.NDArray[np.floating], cs.SX, cs.MX, cs.DM)

#: Terms of the Taylor series of the scaled exponential (its remainder is below 1e-17
#: relative for a scaled norm of at most :data:`SCALED_NORM`).
TAYLOR_TERMS = 14
#: Largest 1-norm of ``A ts / 2^s`` that :func:`squarings_for` allows.
SCALED_NORM = 0.5


def squarings_for(A: npt.ArrayLike, ts: float, margin: float = 4.0) -> int:
    """The number of squarings ``s`` for which ``margin * ||A ts||_1 / 2^s`` is at most
    :data:`SCALED_NORM` (``A`` numeric; ``margin`` leaves room for a symbolic ``A``
    whose parameters move away from the values ``A`` was evaluated at)."""
    norm = margin * float(np.abs(np.asarray(A, dtype=float)).sum(axis=0).max()) * abs(ts)
    return max(0, math.ceil(math.log2(norm / SCALED_NORM))) if norm > SCALED_NORM else 0


def _is_symbolic(*matrices: object) -> bool:
    return any(isinstance(m, (cs.SX, cs.MX)) for m in matrices)


def zero_order_hold(
    A: Matrix, B: Matrix, ts: float, squarings: int | None = None
) -> tuple[Matrix, Matrix]:
    """``(Ad, Bd)``: the zero-order-hold discretization of ``x' = A x + B v`` over
    ``ts``.

    Parameters
    ----------
    A, B : array or casadi.SX/MX/DM
        The continuous-time matrices, ``(n, n)`` and ``(n, m)``.
    ts : float
        The step length.
    squarings : int, optional
        Number of squarings of the scaled exponential. Required for symbolic matrices
        (see :func:`squarings_for`); computed from ``A`` for numeric ones.

    Returns
    -------
    Ad, Bd
        NumPy arrays for numeric input, CasADi expressions for symbolic input.
    """
    symbolic = _is_symbolic(A, B)
    if squarings is None:
        if symbolic:
            raise ValueError("a symbolic A needs an explicit number of squarings")
        squarings = squarings_for(A, ts, margin=1.0)
    if not symbolic:
        A, B = cs.DM(np.asarray(A, dtype=float)), cs.DM(np.asarray(B, dtype=float))
    n = A.shape[0]
    if A.shape != (n, n) or B.shape[0] != n:
        raise ValueError(f"A must be square and B have as many rows; got {A.shape}, {B.shape}")
    h = ts / 2**squarings
    Ah = A * h
    eye = cs.DM.eye(n)
    # T = sum_k (A h)^k / (k + 1)!, by Horner's rule; exp(A h) = I + A h T and the
    # held-input integral over h is T h B
    T = eye
    for k in range(TAYLOR_TERMS, 0, -1):
        T = eye + cs.mtimes(Ah, T) / (k + 1)
    Ad = eye + cs.mtimes(Ah, T)
    Bd = cs.mtimes(T, B) * h
    # [[Ad, Bd], [0, I]]^2 = [[Ad^2, Ad Bd + Bd], [0, I]]
    for _ in range(squarings):
        Bd = cs.mtimes(Ad, Bd) + Bd
        Ad = cs.mtimes(Ad, Ad)
    if symbolic:
        return Ad, Bd
    return np.asarray(Ad), np.asarray(Bd)
