"""The linear algebra of one active set of a convex QP: the factorized KKT system
(:class:`Kkt`), the data cached per active set (:class:`ActiveSet`) and the region of the
linear term where that set stays optimal, on which the solution is affine
(:class:`AffineRegion`). :class:`~marl_dmpc.qp.ActiveSetQp` builds and uses them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.linalg import lapack

#: Feasibility and multiplier-sign tolerance of an accepted active-set solution.
KKT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Kkt:
    """The KKT matrix ``K = [[H_FF, C^T], [C, 0]]`` of one active set (``F`` the free
    variables, ``C`` the active rows), factorized after eliminating the free variables
    ``d`` whose Hessian row is diagonal (``H_dd = diag(h)``, ``h > 0``): the rest is the
    Schur complement ``R = [[H_rr, C_r^T], [C_r, -C_d diag(1/h) C_d^T]]``, much smaller
    than ``K`` for MPC costs (diagonal state and input weights). A singular ``R``
    (dependent active rows) is solved by its pseudo-inverse: the least-norm multipliers,
    kept only where the system is consistent."""

    nf: int
    d: npt.NDArray[np.intp]  # positions in F of the eliminated variables
    r: npt.NDArray[np.intp]  # positions in F of the others
    h: npt.NDArray[np.floating]
    C_d: npt.NDArray[np.floating]
    lu: npt.NDArray[np.floating] | None  # LU factors of R (LAPACK's getrf)
    pivots: npt.NDArray[np.int32] | None
    pinv: npt.NDArray[np.floating] | None  # when R is singular: its pseudo-inverse
    R: npt.NDArray[np.floating] | None  # and R, to check consistency

    @classmethod
    def factor(
        cls,
        H: npt.NDArray[np.floating],
        C: npt.NDArray[np.floating],
        F: npt.NDArray[np.intp],
        diagonal: npt.NDArray[np.bool_],
    ) -> Kkt:
        """Factorize the KKT matrix of the Hessian ``H``, active rows ``C`` (over all
        variables) and free variables ``F``; ``diagonal`` marks the variables whose
        Hessian row is diagonal with a positive entry."""
        d, r = np.flatnonzero(diagonal[F]), np.flatnonzero(~diagonal[F])
        Fd, Fr = F[d], F[r]
        h = H[Fd, Fd]
        C_d, C_r = C[:, Fd], C[:, Fr]
        nr, k = len(r), len(C)
        R = np.empty((nr + k, nr + k))
        R[:nr, :nr] = H[Fr[:, None], Fr]
        R[nr:, :nr] = C_r
        R[:nr, nr:] = C_r.T
        R[nr:, nr:] = -(C_d / h) @ C_d.T
        lu, pivots, info = lapack.dgetrf(R)
        if info == 0 and lapack.dgecon(lu, np.abs(R).sum(axis=0).max())[0] > 1e-12:
            return cls(len(F), d, r, h, C_d, lu, pivots, None, None)
        return cls(len(F), d, r, h, C_d, None, None, np.linalg.pinv(R, rcond=1e-10), R)

    def solve(self, rhs: npt.NDArray[np.floating]) -> npt.NDArray[np.floating] | None:
        """``K^-1 rhs`` (``rhs`` a vector or a matrix); ``None`` if ``K`` is singular and
        the system inconsistent."""
        nf, nr = self.nf, len(self.r)
        h = self.h if rhs.ndim == 1 else self.h[:, None]
        t = rhs[self.d] / h
        reduced = np.concatenate((rhs[self.r], rhs[nf:] - self.C_d @ t))
        if self.pinv is None:
            sol = lapack.dgetrs(self.lu, self.pivots, reduced)[0]
        else:
            sol = self.pinv @ reduced
            if np.abs(self.R @ sol - reduced).max() > KKT_TOLERANCE * (1.0 + np.abs(reduced).max()):
                return None
        out = np.empty_like(rhs)
        lam = sol[nr:]
        out[self.d] = t - (self.C_d.T @ lam) / h
        out[self.r] = sol[:nr]
        out[nf:] = lam
        return out


@dataclass(frozen=True)
class ActiveSet:
    """The cached KKT data of one active set (see :meth:`marl_dmpc.qp.ActiveSetQp._factor`)."""

    kkt: Kkt
    W: npt.NDArray[np.intp]
    B: npt.NDArray[np.intp]
    F: npt.NDArray[np.intp]
    status_W: npt.NDArray[np.int8]
    at_lower: npt.NDArray[np.bool_]  # over the multipliers [lam_W, lam_B]
    at_upper: npt.NDArray[np.bool_]
    checked: npt.NDArray[np.intp]  # inactive rows of [constraints, bounds] with a finite bound
    H_FB: npt.NDArray[np.floating]
    H_B: npt.NDArray[np.floating]
    A_WB: npt.NDArray[np.floating]
    w_B: npt.NDArray[np.floating]  # the bound variables' values
    A_checked: npt.NDArray[np.floating]  # the checked constraint rows of A
    checked_bounds: npt.NDArray[np.intp]  # the checked variable bounds, as variables
    slopes: dict[str, npt.NDArray[np.floating]] = field(default_factory=dict)


@dataclass(frozen=True)
class AffineRegion:
    """Where one active set stays optimal, the QP's solution is affine in the moving part
    ``d`` of the linear term: ``v = offset + slope @ d``, whose first ``n_out`` entries
    are the requested primal entries and whose others must not exceed ``limit`` (the
    multipliers' signs and the inactive rows' feasibility, one side per entry, tolerance
    included). Check ``k`` failing means entry ``flip_index[k]`` of the active set
    ``active`` should become ``flip_status[k]`` (a primal-dual active-set step)."""

    offset: npt.NDArray[np.floating]
    slope: npt.NDArray[np.floating]
    n_out: int
    limit: npt.NDArray[np.floating]
    active: npt.NDArray[np.int8]
    flip_index: npt.NDArray[np.intp]
    flip_status: npt.NDArray[np.int8]

    def evaluate(self, d: npt.NDArray[np.floating]) -> npt.NDArray[np.floating] | None:
        """The primal entries at ``d``, or ``None`` if ``d`` is outside the region."""
        v = self.offset + self.slope @ d
        if (v[self.n_out :] > self.limit).any():
            return None
        return v[: self.n_out]

    def next_active_set(self, d: npt.NDArray[np.floating]) -> npt.NDArray[np.int8]:
        """The active set of one primal-dual active-set step from this region's at
        ``d`` (for :meth:`marl_dmpc.qp.ActiveSetQp.solve`); this region's own if ``d`` is inside."""
        bad = (self.offset[self.n_out :] + self.slope[self.n_out :] @ d) > self.limit
        guess = self.active.copy()
        guess[self.flip_index[bad]] = self.flip_status[bad]
        return guess
