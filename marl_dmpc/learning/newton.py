"""Second-order (regularized Newton) updates of MPC-based Q-learning, centralized and
distributed.

A replay sample of ``T`` transitions gives the TD errors ``delta_t``, the gradients
``g_t = dQ/dtheta (s_t, a_t)`` (the columns of ``G``, ``d x T``) and the second derivatives
``K_t`` of Q's Lagrangian w.r.t. the parameters (mpcrl's "approx" Hessian). The loss is
the mean squared TD error ``(1 / 2T) sum_t delta_t^2`` with ``delta_t = c_t + gamma
V(s_t+) - Q(s_t, a_t)`` (a semi-gradient: V's dependence on theta left out), so

    gradient  r = -(1/T) G delta,
    Hessian   H = (1/T) G G^T + D,    D = tau I - (1/T) sum_t delta_t K_t,

and the update is ``dtheta = -lr H^{-1} r``. With ``C = G^T D^{-1} G`` (``T x T``), the
Woodbury identity gives ``H^{-1} G = T D^{-1} G (T I + C)^{-1}``, so

    dtheta = lr D^{-1} G (T I + C)^{-1} delta.

In the distributed MPC, Q is the sum of the agents' local Lagrangians and agent ``i``'s
parameters enter only its own: ``G`` stacks the agents' local gradients ``G_i`` and ``D``
is block diagonal with one block ``D_i`` per agent. Then ``C = sum_i G_i^T D_i^{-1} G_i``,
a sum every agent obtains by average consensus (``n`` times the average of its own
term), and agent ``i``'s share of the update is

    dtheta_i = lr D_i^{-1} G_i (T I + C)^{-1} delta,

which needs only its own ``D_i`` and ``G_i``, the consensus on ``C`` and the TD errors
(which the agents already share). :func:`newton_step` is the centralized step,
:class:`LocalNewtonTerms` and :func:`local_newton_step` the distributed one; they agree
to round-off when the consensus is exact (``tests/test_newton.py``).

With ``definite``, a block ``D_i`` that is not positive definite (a large curvature
term) is made so by mpcrl's :func:`~mpcrl.util.math.cholesky_added_multiple_identity`,
block by block in both forms, so that the two stay the same update; by default (as the
follow-up) the blocks are used as they are.

The follow-up's code release computes its distributed step as ``lr D_i^{-1} G_i (I +
C)^{-1} delta``: with ``I`` where the exact step has ``T I``. That is the exact step with
every block ``D_i`` divided by ``T`` (regularization ``tau / T`` and curvature term
``(1/T^2) sum_t delta_t K_t``), which its centralized optimizer does not do (it takes the
exact step). ``block_scale = 1 / T`` gives that variant in both forms (the config's
``newton_variant = "follow_up"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from mpcrl.util.math import cholesky_added_multiple_identity
from scipy.linalg import solve

Array = npt.NDArray[np.floating]


def curvature_block(
    td: Array,
    hessians: Array | None,
    tau: float,
    size: int,
    scale: float = 1.0,
    definite: bool = False,
) -> Array:
    """One agent's regularized curvature block ``D_i = tau I - (1/T) sum_t delta_t K_t``
    (``hessians`` of shape (T, d_i, d_i), or None where Q's Lagrangian is linear in the
    parameters), times ``scale`` (1; ``1/T`` for the follow-up's variant); with
    ``definite``, made positive definite by mpcrl's added multiple of the identity."""
    block = tau * np.eye(size)
    if hessians is not None:
        block -= np.tensordot(td, hessians, axes=1) / len(td)
    block = scale * block
    if definite:
        L = cholesky_added_multiple_identity(block)
        block = L @ L.T
    return block


class LocalNewtonTerms:
    """Agent ``i``'s part of a distributed Newton step: ``W_i = D_i^{-1} G_i``
    (:attr:`weighted`) and its term ``G_i^T D_i^{-1} G_i`` of ``C`` (:attr:`term`).

    Parameters
    ----------
    gradients : ndarray, shape (d_i, T)
        The agent's local gradients of the sample's transitions, as columns.
    td : ndarray, shape (T,)
        The sample's TD errors.
    hessians : ndarray, shape (T, d_i, d_i), optional
        The second derivatives of the agent's local Lagrangian (None: zero).
    tau : float
        The regularization.
    scale : float, optional
        The block's factor (:func:`curvature_block`).
    definite : bool, optional
        Make the block positive definite by mpcrl's added multiple of the identity;
        otherwise (the learners' default, the follow-up's) use it as it is: only ``tau``
        is added, and an indefinite block gives a step that is not a descent direction
        everywhere.
    """

    def __init__(
        self,
        gradients: Array,
        td: Array,
        hessians: Array | None,
        tau: float,
        scale: float = 1.0,
        definite: bool = True,
    ) -> None:
        gradients = np.asarray(gradients, dtype=float)
        block = curvature_block(td, hessians, tau, gradients.shape[0], scale, definite)
        self.definite = definite
        self.weighted = solve(block, gradients, assume_a="pos" if definite else "gen")
        self.term = gradients.T @ self.weighted


def local_newton_step(terms: LocalNewtonTerms, C: Array, td: Array, lr: float) -> Array:
    """Agent ``i``'s update ``lr D_i^{-1} G_i (T I + C)^{-1} delta`` from its own terms,
    ``C`` (the consensus on every agent's :attr:`LocalNewtonTerms.term`, summed) and the
    TD errors."""
    T = len(td)
    kind = "pos" if terms.definite else "gen"
    return lr * terms.weighted @ solve(T * np.eye(T) + C, td, assume_a=kind)


def newton_step(
    gradients: Sequence[Array],
    td: Array,
    hessians: Sequence[Array | None],
    tau: float,
    lr: float,
    scale: float = 1.0,
    definite: bool = True,
) -> list[Array]:
    """The centralized update ``-lr H^{-1} r`` of every agent's parameters, from the full
    ``H = (1/T) G G^T + blockdiag(D_i)`` (each block as :class:`LocalNewtonTerms` makes
    it): the centralized learner's step; the distributed learner takes the same by
    :func:`local_newton_step`, whose cost grows with ``T`` instead of the number of
    parameters."""
    T = len(td)
    G = np.vstack([np.asarray(g, dtype=float) for g in gradients])
    blocks = [
        curvature_block(td, k, tau, len(g), scale, definite)
        for g, k in zip(gradients, hessians, strict=True)
    ]
    sizes = np.cumsum([0, *(len(b) for b in blocks)])
    H = G @ G.T / T
    for b, start in zip(blocks, sizes, strict=False):
        H[start : start + len(b), start : start + len(b)] += b
    step = solve(H, G @ td / T, assume_a="pos" if definite else "gen") * lr
    return [step[a:b] for a, b in zip(sizes[:-1], sizes[1:], strict=True)]


def sample_parts(items: Sequence[tuple[float, Array, Array]]) -> tuple[Array, Array, Array]:
    """A replay sample's stored ``(TD error, gradient, curvature)`` items (one agent's, or
    the centralized learner's) as the TD errors ``delta`` (T,), the gradients ``G``
    (d x T) and the curvatures ``K`` (T x d x d)."""
    td = np.array([item[0] for item in items], dtype=float)
    gradients = np.column_stack([item[1] for item in items])
    return td, gradients, np.stack([item[2] for item in items])


def block_scale(variant: str, T: int) -> float:
    """The curvature blocks' factor of a Newton variant: 1 for ``"exact"``, ``1/T`` for
    the follow-up's ``"follow_up"``."""
    if variant == "exact":
        return 1.0
    if variant == "follow_up":
        return 1.0 / T
    raise ValueError(f"unknown Newton variant {variant!r}")
