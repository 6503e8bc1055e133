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


@dataclass
class QpSolution:
    """Primal solution ``x``, constraint multipliers ``lam_g`` (CasADi's convention:
    positive at an active upper bound), and the solver's verdict."""

    x: npt.NDArray[np.floating]
    lam_g: npt.NDArray[np.floating]
    success: bool
    status: str


class ActiveSetQp:
    """A convex QP ``min f(w, p)`` s.t. ``lbg <= g(w, p) <= ubg``, ``lbx <= w <= ubx``
    (``f`` quadratic, ``g`` affine in ``w``), solved by active-set re-use with
    ``solver`` (a CasADi ``qpsol``) as the fallback.

    Parameters
    ----------
    w, p : casadi.SX
        Decision variables and parameters.
    f, g : casadi.SX
        Cost and constraints.
    lbg, ubg, lbx, ubx : array_like
        Constant bounds.
    solver : casadi.Function
        The QP solver for the same problem.
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
        lbg: npt.ArrayLike,
        ubg: npt.ArrayLike,
        lbx: npt.ArrayLike,
        ubx: npt.ArrayLike,
        solver: cs.Function,
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
        self._solver = solver
        self._n_fixed = n_fixed
        self.lbg = np.asarray(lbg, dtype=float).reshape(-1)
        self.ubg = np.asarray(ubg, dtype=float).reshape(-1)
        self.lbx = np.asarray(lbx, dtype=float).reshape(-1)
        self.ubx = np.asarray(ubx, dtype=float).reshape(-1)
        self.n, self.m = w.numel(), g.numel()
        self._fixed: npt.NDArray[np.floating] | None = None
        # per active set: the KKT inverse (None: singular), the active rows, their status
        self._kkt: dict[bytes, tuple | None] = {}
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
    # 3 equality (lower == upper)
    def _factor(self, active: npt.NDArray[np.int8]) -> tuple | None:
        key = active.tobytes()
        if key not in self._kkt:
            rows = np.flatnonzero(active)
            C = np.vstack((self._A, np.eye(self.n)))[rows]
            k = len(rows)
            K = np.block([[self._H, C.T], [C, np.zeros((k, k))]])
            self.stats["factorizations"] += 1
            self._kkt[key] = None
            lu, pivots, info = lapack.dgetrf(K)
            if info == 0:
                rcond, _ = lapack.dgecon(lu, np.abs(K).sum(axis=0).max(), norm="1")
                if rcond > 1e-12:
                    inverse, info = lapack.dgetri(lu, pivots)
                    if info == 0:
                        self._kkt[key] = (inverse, rows, active[rows])
        return self._kkt[key]

    def _try(self, active: npt.NDArray[np.int8], g: npt.NDArray[np.floating]) -> QpSolution | None:
        factor = self._factor(active)
        if factor is None:
            return None
        inverse, rows, status = factor
        values = np.where(status == 2, self._upper[rows], self._lower[rows])
        n = self.n
        sol = inverse @ np.concatenate((-g, values))
        w, lam = sol[:n], sol[n:]
        if np.any(lam[status == 1] > KKT_TOLERANCE) or np.any(lam[status == 2] < -KKT_TOLERANCE):
            return None
        values_all = np.concatenate((self._A @ w, w))
        tol = KKT_TOLERANCE * (1.0 + np.abs(values_all))
        inactive = active == 0
        if np.any(inactive & (values_all < self._lower - tol)) or np.any(
            inactive & (values_all > self._upper + tol)
        ):
            return None
        multipliers = np.zeros(self.m + n)
        multipliers[rows] = lam
        return QpSolution(w, multipliers[: self.m], True, "active set re-used")

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
        out = self._solver(p=p, lbx=self.lbx, ubx=self.ubx, lbg=self.lbg, ubg=self.ubg)
        stats = self._solver.stats()
        lam_g = np.asarray(out["lam_g"]).reshape(-1)
        success = bool(stats["success"])
        if success:
            self._active = self._active_set(lam_g, np.asarray(out["lam_x"]).reshape(-1))
        return QpSolution(
            np.asarray(out["x"]).reshape(-1), lam_g, success, str(stats["return_status"])
        )
