"""Fast re-solves of a parametric convex QP by re-using its optimal active set.

Within one ADMM solve an agent's local QP keeps its Hessian and constraint matrix; only
the linear term moves (``y`` and ``z`` enter the cost linearly), and it moves little
from one iteration to the next, so the optimal active set rarely changes. For a given
active set the QP's solution is the solution of one linear (KKT) system::

    [H  C^T] [w  ]   [-g]
    [C  0  ] [lam] = [ d]

with ``C`` the active rows (equalities, active constraints and active variable bounds)
and ``d`` their bound values. :class:`ActiveSetQp` keeps the inverse of that matrix per
active set and, for new data, first tries the last optimal active set: if the resulting
point is feasible and its multipliers have the right signs, it satisfies the KKT
conditions, so it *is* the optimum (the QP is convex). Otherwise the wrapped solver
(e.g., qpOASES) solves the QP and its active set is cached. The answer is the QP's
optimum either way; only the cost changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as cs
import numpy as np
import numpy.typing as npt
from scipy.linalg import lapack

#: Feasibility and multiplier-sign tolerance of an accepted active-set solution.
KKT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class _ActiveSet:
    """The cached KKT data of one active set (see :meth:`ActiveSetQp._factor`)."""

    inverse: npt.NDArray[np.floating]
    check: npt.NDArray[np.floating] | None  # the KKT matrix when inverse is a pseudo-inverse
    W: npt.NDArray[np.intp]
    B: npt.NDArray[np.intp]
    F: npt.NDArray[np.intp]
    status_W: npt.NDArray[np.int8]
    status_B: npt.NDArray[np.int8]
    at_lower: npt.NDArray[np.bool_]  # over the multipliers [lam_W, lam_B]
    at_upper: npt.NDArray[np.bool_]
    inactive: npt.NDArray[np.bool_]  # over the rows [constraints, bounds]
    H_FB: npt.NDArray[np.floating]
    H_B: npt.NDArray[np.floating]
    A_WB: npt.NDArray[np.floating]


@dataclass
class QpSolution:
    """Primal solution ``x``, constraint multipliers ``lam_g`` (CasADi's convention:
    positive at an active upper bound), the solver's verdict, and the bound multipliers
    ``lam_x`` when the solver returned them."""

    x: npt.NDArray[np.floating]
    lam_g: npt.NDArray[np.floating]
    success: bool
    status: str
    lam_x: npt.NDArray[np.floating] | None = None


class DirectSolve:
    """Calls a CasADi solver (``qpsol`` or ``nlpsol``) with fixed bounds, every time."""

    def __init__(
        self,
        solver: cs.Function,
        lbg: npt.ArrayLike,
        ubg: npt.ArrayLike,
        lbx: npt.ArrayLike,
        ubx: npt.ArrayLike,
    ) -> None:
        self.solver = solver
        self.lbg = np.asarray(lbg, dtype=float).reshape(-1)
        self.ubg = np.asarray(ubg, dtype=float).reshape(-1)
        self.lbx = np.asarray(lbx, dtype=float).reshape(-1)
        self.ubx = np.asarray(ubx, dtype=float).reshape(-1)

    def solve(self, p: npt.NDArray[np.floating]) -> QpSolution:
        out = self.solver(p=p, lbx=self.lbx, ubx=self.ubx, lbg=self.lbg, ubg=self.ubg)
        stats = self.solver.stats()
        return QpSolution(
            np.asarray(out["x"]).reshape(-1),
            np.asarray(out["lam_g"]).reshape(-1),
            bool(stats["success"]),
            str(stats["return_status"]),
            np.asarray(out["lam_x"]).reshape(-1),
        )


class ActiveSetQp:
    """A convex QP ``min f(w, p)`` s.t. ``lbg <= g(w, p) <= ubg``, ``lbx <= w <= ubx``
    (``f`` quadratic, ``g`` affine in ``w``), solved by active-set re-use with
    ``fallback`` (a :class:`DirectSolve` of the same problem) when that fails.

    Parameters
    ----------
    w, p : casadi.SX
        Decision variables and parameters.
    f, g : casadi.SX
        Cost and constraints.
    fallback : DirectSolve
        The QP solver for the same problem, with its (constant) bounds.
    n_fixed : int
        The first ``n_fixed`` parameters change only between re-solves of a series (the
        matrices may depend on them); the others enter the cost's linear term only.
    """

    def __init__(
        self,
        w: cs.SX,
        p: cs.SX,
        f: cs.SX,
        g: cs.SX,
        fallback: DirectSolve,
        n_fixed: int,
    ) -> None:
        zero = cs.DM.zeros(w.shape)
        hessian = cs.densify(cs.hessian(f, w)[0])
        jacobian = cs.densify(cs.jacobian(g, w))
        linear = cs.substitute(cs.gradient(f, w), w, zero)
        self._matrices = cs.Function(
            "qp_matrices", [p], [hessian, jacobian, cs.substitute(g, w, zero), linear]
        )
        # the linear term is affine in the parameters that move within a series
        slope = cs.densify(cs.jacobian(linear, p[n_fixed:]))
        if cs.depends_on(slope, p):
            raise ValueError("the cost's linear term must be affine in p[n_fixed:]")
        self._linear_slope = np.asarray(cs.evalf(slope))
        self._fallback = fallback
        self._n_fixed = n_fixed
        self.lbg, self.ubg = fallback.lbg, fallback.ubg
        self.lbx, self.ubx = fallback.lbx, fallback.ubx
        self.n, self.m = w.numel(), g.numel()
        self._fixed: npt.NDArray[np.floating] | None = None
        # per active set: its KKT data
        self._kkt: dict[bytes, _ActiveSet] = {}
        self._active: npt.NDArray[np.int8] | None = None
        #: Counts of solves answered from an active set and by the fallback solver.
        self.stats = {"reused": 0, "solver": 0, "factorizations": 0}

    # ------------------------------------------------------------------ data
    def _set_fixed(self, p: npt.NDArray[np.floating]) -> None:
        fixed = p[: self._n_fixed]
        if self._fixed is not None and np.array_equal(fixed, self._fixed):
            return
        H, A, g0, linear = (np.asarray(v) for v in self._matrices(p))
        # the linear term at p[n_fixed:] = 0
        self._linear0 = linear.reshape(-1) - self._linear_slope @ p[self._n_fixed :]
        if self._fixed is None or not (np.array_equal(H, self._H) and np.array_equal(A, self._A)):
            self._kkt.clear()
        self._H, self._A = H, A
        g0 = g0.reshape(-1)
        self._lower = np.concatenate((self.lbg - g0, self.lbx))
        self._upper = np.concatenate((self.ubg - g0, self.ubx))
        self._fixed = fixed.copy()

    # ------------------------------------------------------------- active set
    # status per row of [constraints, bounds]: 0 inactive, 1 at lower, 2 at upper,
    # 3 equality (lower == upper). Variables at a bound are eliminated: the KKT system is
    # over the free variables F and the active constraints W only.
    def _factor(self, active: npt.NDArray[np.int8]) -> _ActiveSet:
        key = active.tobytes()
        if key not in self._kkt:
            self.stats["factorizations"] += 1
            m = self.m
            W = np.flatnonzero(active[:m])
            B = np.flatnonzero(active[m:])
            F = np.flatnonzero(active[m:] == 0)
            A_WF = self._A[np.ix_(W, F)]
            k = len(W)
            K = np.block([[self._H[np.ix_(F, F)], A_WF.T], [A_WF, np.zeros((k, k))]])
            lu, pivots, info = lapack.dgetrf(K)
            inverse, check = None, None
            if info == 0 and lapack.dgecon(lu, np.abs(K).sum(axis=0).max())[0] > 1e-12:
                inverse, info = lapack.dgetri(lu, pivots)
                inverse = inverse if info == 0 else None
            if inverse is None:
                # dependent active rows (e.g., a fixed input at its bound): the least-norm
                # solution, kept only where the system is consistent (checked per solve)
                inverse, check = np.linalg.pinv(K, rcond=1e-10), K
            status = np.concatenate((active[W], active[m + B]))
            self._kkt[key] = _ActiveSet(
                inverse=inverse,
                check=check,
                W=W,
                B=B,
                F=F,
                status_W=active[W],
                status_B=active[m + B],
                at_lower=status == 1,
                at_upper=status == 2,
                inactive=active == 0,
                H_FB=self._H[np.ix_(F, B)],
                H_B=self._H[B],
                A_WB=self._A[np.ix_(W, B)],
            )
        return self._kkt[key]

    def _try(self, active: npt.NDArray[np.int8], g: npt.NDArray[np.floating]) -> QpSolution | None:
        s = self._factor(active)
        m, tol = self.m, KKT_TOLERANCE
        w_B = np.where(s.status_B == 2, self.ubx[s.B], self.lbx[s.B])
        d_W = np.where(s.status_W == 2, self._upper[s.W], self._lower[s.W])
        rhs = np.concatenate((-(g[s.F] + s.H_FB @ w_B), d_W - s.A_WB @ w_B))
        sol = s.inverse @ rhs
        if s.check is not None and np.abs(s.check @ sol - rhs).max() > tol * (
            1.0 + np.abs(rhs).max()
        ):
            return None
        nf = len(s.F)
        lam_W = sol[nf:]
        w = np.empty(self.n)
        w[s.F], w[s.B] = sol[:nf], w_B
        lam_B = -(s.H_B @ w + g[s.B] + s.A_WB.T @ lam_W)
        lam = np.concatenate((lam_W, lam_B))
        if np.any(lam[s.at_lower] > tol) or np.any(lam[s.at_upper] < -tol):
            return None
        values_all = np.concatenate((self._A @ w, w))
        margin = tol * (1.0 + np.abs(values_all))
        if np.any(s.inactive & (values_all < self._lower - margin)) or np.any(
            s.inactive & (values_all > self._upper + margin)
        ):
            return None
        lam_g = np.zeros(m)
        lam_g[s.W] = lam_W
        return QpSolution(w, lam_g, True, "active set re-used")

    def _active_set(
        self, lam_g: npt.NDArray[np.floating], lam_x: npt.NDArray[np.floating]
    ) -> npt.NDArray[np.int8]:
        lam = np.concatenate((lam_g, lam_x))
        active = np.where(lam > 0, 2, np.where(lam < 0, 1, 0)).astype(np.int8)
        active[self._lower == self._upper] = 3
        return active

    # ------------------------------------------------------------------ solve
    def solve(self, p: npt.NDArray[np.floating]) -> QpSolution:
        """The QP's optimum for the parameters ``p``."""
        self._set_fixed(p)
        g = self._linear0 + self._linear_slope @ p[self._n_fixed :]
        if self._active is not None:
            solution = self._try(self._active, g)
            if solution is not None:
                self.stats["reused"] += 1
                return solution
        self.stats["solver"] += 1
        solution = self._fallback.solve(p)
        if solution.success:
            self._active = self._active_set(solution.lam_g, solution.lam_x)
        return solution
