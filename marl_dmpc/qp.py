"""Fast re-solves of a parametric convex QP by re-using its optimal active set.

Within one ADMM solve an agent's local QP keeps its Hessian and constraint matrix; only
the linear term moves (``y`` and ``z`` enter the cost linearly), and it moves little
from one iteration to the next, so the optimal active set rarely changes. For a given
active set the QP's solution is the solution of one linear (KKT) system::

    [H  C^T] [w  ]   [-g]
    [C  0  ] [lam] = [ d]

with ``C`` the active rows (equalities, active constraints and active variable bounds)
and ``d`` their bound values. :class:`ActiveSetQp` keeps the LU factors of that matrix
per active set and, for new data, first tries the last optimal active set: if the
resulting point is feasible and its multipliers have the right signs, it satisfies the
KKT conditions, so it *is* the optimum (the QP is convex). If not, primal-dual
active-set steps follow (rows whose multiplier has the wrong sign leave the set,
violated rows enter it; each step is tried the same way), and only if they do not reach
the optimum within :data:`ACTIVE_SET_STEPS` does a QP solver (e.g., qpOASES, a new
instance each time: :class:`FreshConic`) solve the QP. The answer is the QP's optimum
either way; only the cost changes.

For a fixed active set the solution is affine in the linear term, and the conditions
that keep the active set optimal are linear inequalities in it: :meth:`ActiveSetQp.region`
returns that map as an :class:`AffineRegion`, so a loop that re-solves the QP many times
(ADMM) costs one matrix-vector product per re-solve while the active set holds.
"""

from __future__ import annotations

import casadi as cs
import numpy as np
import numpy.typing as npt

from .casadi_call import BufferedFunction
from .conic import DirectSolve, FreshConic, QpSolution
from .kkt import KKT_TOLERANCE, ActiveSet, AffineRegion, Kkt

__all__ = ["ActiveSetQp", "AffineRegion", "DirectSolve", "FreshConic", "QpSolution"]

#: Primal-dual active-set steps tried from the last active set before the solver is called.
ACTIVE_SET_STEPS = 20


class ActiveSetQp:
    """A convex QP ``min f(w, p)`` s.t. ``lbg <= g(w, p) <= ubg``, ``lbx <= w <= ubx``
    (``f`` quadratic, ``g`` affine in ``w``), solved by active-set re-use with
    ``fallback`` (a :class:`FreshConic` with the problem's bounds) when that fails. The
    answer depends on ``p`` and the last optimal active set only (:attr:`active_set`),
    never on an instance's hidden state, so a run restored from its saved active sets
    continues bit for bit.

    Parameters
    ----------
    w, p : casadi.SX
        Decision variables and parameters.
    f, g : casadi.SX
        Cost and constraints.
    fallback : FreshConic
        The QP solver called when the active-set steps fail, with the problem's
        (constant) bounds.
    n_fixed : int
        The first ``n_fixed`` parameters change only between re-solves of a series (the
        matrices may depend on them); the others, ``q = p[n_fixed:]``, enter the cost's
        linear term only.
    region_rows : array of int, optional
        Entries ``r`` of ``w``: :meth:`region` maps ``d = g[r] - g0[r]``, the moving part
        of the cost's linear term ``g`` at those entries (``g0``: ``g`` at ``q = 0``), to
        ``w[r]``. ``q`` must move no other entry of ``g``.
    """

    def __init__(
        self,
        w: cs.SX,
        p: cs.SX,
        f: cs.SX,
        g: cs.SX,
        fallback: FreshConic,
        n_fixed: int,
        region_rows: npt.ArrayLike = (),
    ) -> None:
        zero = cs.DM.zeros(w.shape)
        hessian = cs.densify(cs.hessian(f, w)[0])
        jacobian = cs.densify(cs.jacobian(g, w))
        linear = cs.substitute(cs.gradient(f, w), w, zero)
        self._matrices = BufferedFunction(
            cs.Function(
                "qp_matrices",
                [p],
                [hessian, jacobian, cs.densify(cs.substitute(g, w, zero)), cs.densify(linear)],
            )
        )
        # the linear term is affine in the parameters that move within a series; its
        # slope may depend on the others
        moving = p[n_fixed:]
        slope = cs.jacobian(linear, moving)
        if cs.depends_on(slope, moving):
            raise ValueError("the cost's linear term must be affine in p[n_fixed:]")
        self._slope = BufferedFunction(cs.Function("qp_slope", [p], [cs.densify(slope)]))
        self._fallback = fallback
        self._n_fixed = n_fixed
        rows = np.asarray(region_rows, dtype=np.intp)
        if len(rows) and not set(slope.sparsity().row()) <= set(rows.tolist()):
            raise ValueError("p[n_fixed:] moves the linear term outside region_rows")
        self._rows = rows
        # d enters the linear term as g = g0 + E d
        self._E = np.zeros((w.numel(), len(rows)))
        self._E[rows, np.arange(len(rows))] = 1.0
        self.lbg, self.ubg = fallback.lbg, fallback.ubg
        self.lbx, self.ubx = fallback.lbx, fallback.ubx
        self.n, self.m = w.numel(), g.numel()
        self._fixed: npt.NDArray[np.floating] | None = None
        # per active set: its KKT data
        self._kkt: dict[bytes, ActiveSet] = {}
        self._active: npt.NDArray[np.int8] | None = None
        # the linear term and KKT point (w, lam, checked rows) of the last solve, when
        # the active-set steps found it
        self._last_point: tuple[npt.NDArray, ...] | None = None
        #: Counts of solves answered from the last active set, from a guess of an
        #: active-set step, and by the fallback solver; and of KKT factorizations.
        self.stats = {"reused": 0, "guessed": 0, "solver": 0, "factorizations": 0}

    # ------------------------------------------------------------------ data
    def _set_fixed(self, p: npt.NDArray[np.floating]) -> None:
        fixed = p[: self._n_fixed]
        if self._fixed is not None and np.array_equal(fixed, self._fixed):
            return
        # the data at q = 0 (so it depends on the fixed parameters only, bit for bit)
        p0 = np.concatenate((fixed, np.zeros(len(p) - self._n_fixed)))
        H, A, g0, linear0 = (v.copy() for v in self._matrices(p0))
        self._linear_slope = self._slope(p0)[0].copy()
        self._linear0 = linear0.reshape(-1)
        if self._fixed is None or not (np.array_equal(H, self._H) and np.array_equal(A, self._A)):
            self._kkt.clear()
            diagonal = np.diag(H)
            self._diagonal = (diagonal > 0.0) & (np.count_nonzero(H, axis=1) == 1)
        self._H, self._A = H, A
        g0 = g0.reshape(-1)
        self._lower = np.concatenate((self.lbg - g0, self.lbx))
        self._upper = np.concatenate((self.ubg - g0, self.ubx))
        self._finite = np.isfinite(self._lower) | np.isfinite(self._upper)
        # the feasibility test of an inactive row, tolerance included
        self._lower_tol = self._lower - KKT_TOLERANCE * (1.0 + np.abs(self._lower))
        self._upper_tol = self._upper + KKT_TOLERANCE * (1.0 + np.abs(self._upper))
        self._fixed = fixed.copy()

    # ------------------------------------------------------------- active set
    # status per row of [constraints, bounds]: 0 inactive, 1 at lower, 2 at upper,
    # 3 equality (lower == upper). Variables at a bound are eliminated: the KKT system is
    # over the free variables F and the active constraints W only (see Kkt).
    def _factor(self, active: npt.NDArray[np.int8]) -> ActiveSet:
        key = active.tobytes()
        if key not in self._kkt:
            self.stats["factorizations"] += 1
            m = self.m
            W = np.flatnonzero(active[:m])
            B = np.flatnonzero(active[m:])
            F = np.flatnonzero(active[m:] == 0)
            status = np.concatenate((active[W], active[m + B]))
            checked = np.flatnonzero((active == 0) & self._finite)
            n_checked_constraints = np.searchsorted(checked, m)
            self._kkt[key] = ActiveSet(
                kkt=Kkt.factor(self._H, self._A[W], F, self._diagonal),
                W=W,
                B=B,
                F=F,
                status_W=active[W],
                at_lower=status == 1,
                at_upper=status == 2,
                checked=checked,
                H_FB=self._H[F[:, None], B],
                H_B=self._H[B],
                A_WB=self._A[W[:, None], B],
                w_B=np.where(active[m + B] == 2, self.ubx[B], self.lbx[B]),
                A_checked=self._A[checked[:n_checked_constraints]],
                checked_bounds=checked[n_checked_constraints:] - m,
            )
        return self._kkt[key]

    def _kkt_solution(
        self,
        s: ActiveSet,
        g: npt.NDArray[np.floating],
        w_B: npt.NDArray[np.floating],
        d_W: npt.NDArray[np.floating],
    ) -> tuple[npt.NDArray, npt.NDArray] | None:
        """The primal ``w`` and the multipliers ``[lam_W, lam_B]`` of active set ``s``
        for the linear term ``g``, the bound variables at ``w_B`` and the active rows at
        ``d_W``; with a matrix ``g`` (and zero ``w_B``, ``d_W``) the same, column by
        column: the derivative w.r.t. what ``g``'s columns move. ``None`` if the
        (singular) KKT system is inconsistent."""
        rhs = np.concatenate((-(g[s.F] + s.H_FB @ w_B), d_W - s.A_WB @ w_B))
        sol = s.kkt.solve(rhs)
        if sol is None:
            return None
        nf = len(s.F)
        lam_W = sol[nf:]
        w = np.empty((self.n, *g.shape[1:]))
        w[s.F], w[s.B] = sol[:nf], w_B
        lam_B = -(s.H_B @ w + g[s.B] + s.A_WB.T @ lam_W)
        return w, np.concatenate((lam_W, lam_B))

    def _point(
        self, s: ActiveSet, g: npt.NDArray[np.floating]
    ) -> tuple[npt.NDArray, npt.NDArray, npt.NDArray] | None:
        """The KKT point of active set ``s`` for the linear term ``g``: the primal
        ``w``, the multipliers ``[lam_W, lam_B]`` and the values of the checked rows;
        ``None`` if the (singular) KKT system is inconsistent."""
        d_W = np.where(s.status_W == 2, self._upper[s.W], self._lower[s.W])
        solution = self._kkt_solution(s, g, s.w_B, d_W)
        if solution is None:
            return None
        w, lam = solution
        return w, lam, self._checked_values(s, w)

    @staticmethod
    def _checked_values(s: ActiveSet, w: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        """The values of the checked rows of ``[g(w) - g(0); w]`` (``w`` may be a
        matrix)."""
        return np.concatenate((s.A_checked @ w, w[s.checked_bounds]))

    def _try(
        self, active: npt.NDArray[np.int8], g: npt.NDArray[np.floating]
    ) -> tuple[QpSolution | None, npt.NDArray[np.int8] | None]:
        """The optimum if ``active`` is its active set; otherwise ``None`` and the next
        guess of a primal-dual active-set step (``None`` if there is none): rows whose
        multiplier has the wrong sign leave the set, violated rows enter it."""
        s = self._factor(active)
        point = self._point(s, g)
        if point is None:
            return None, None
        w, lam, values = point
        tol = KKT_TOLERANCE
        wrong_sign = (s.at_lower & (lam > tol)) | (s.at_upper & (lam < -tol))
        below = values < self._lower_tol[s.checked]
        above = values > self._upper_tol[s.checked]
        if wrong_sign.any() or below.any() or above.any():
            guess = active.copy()
            guess[np.concatenate((s.W, self.m + s.B))[wrong_sign]] = 0
            guess[s.checked[below]] = 1
            guess[s.checked[above]] = 2
            return None, guess
        lam_g = np.zeros(self.m)
        lam_g[s.W] = lam[: len(s.W)]
        self._last_point = (g, w, lam, values)
        return QpSolution(w, lam_g, True, "active set re-used"), None

    def _active_set(
        self, lam_g: npt.NDArray[np.floating], lam_x: npt.NDArray[np.floating]
    ) -> npt.NDArray[np.int8]:
        lam = np.concatenate((lam_g, lam_x))
        active = np.where(lam > 0, 2, np.where(lam < 0, 1, 0)).astype(np.int8)
        active[self._lower == self._upper] = 3
        return active

    @property
    def fallbacks(self) -> int:
        """How many QPs the fallback's own fallback solver has solved."""
        return self._fallback.fallbacks

    @property
    def active_set(self) -> npt.NDArray[np.int8] | None:
        """The last optimal active set, where the next :meth:`solve` starts (``None``
        before the first); settable, e.g. to resume a run."""
        return self._active

    @active_set.setter
    def active_set(self, active: npt.ArrayLike | None) -> None:
        if active is not None:
            active = np.asarray(active, dtype=np.int8)
            if active.shape != (self.m + self.n,):
                raise ValueError(f"an active set has {self.m + self.n} entries; got {active.shape}")
        self._active = active

    # ------------------------------------------------------------------ solve
    def solve(
        self, p: npt.NDArray[np.floating], guess: npt.NDArray[np.int8] | None = None
    ) -> QpSolution:
        """The QP's optimum for the parameters ``p``; the active-set steps start from
        ``guess`` (e.g. :meth:`AffineRegion.next_active_set`) if given, else from the
        last optimal active set."""
        self._set_fixed(p)
        g = self._linear0 + self._linear_slope @ p[self._n_fixed :]
        active, steps = (self._active, 0) if guess is None else (guess, 1)
        while active is not None and steps <= ACTIVE_SET_STEPS:
            solution, guess = self._try(active, g)
            if solution is not None:
                self._active = active
                self.stats["reused" if steps == 0 else "guessed"] += 1
                return solution
            active, steps = guess, steps + 1
        self.stats["solver"] += 1
        self._last_point = None
        m = self.m
        solution = self._fallback.solve(self._H, self._A, g, self._lower[:m], self._upper[:m])
        if solution.success:
            self._active = self._active_set(solution.lam_g, solution.lam_x)
        return solution

    def region(self) -> AffineRegion | None:
        """The region of the last optimal active set, for the fixed parameters of the
        last :meth:`solve`, mapping ``d`` to ``w[region_rows]`` (see the class); ``None``
        if there is none yet or the active set's KKT system is singular (its solves go
        through :meth:`solve`)."""
        if self._active is None:
            return None
        s = self._factor(self._active)
        if s.kkt.pinv is not None:
            return None
        if not s.slopes:
            s.slopes.update(self._region_slopes(s))
        slope, signs, rows = s.slopes["slope"], s.slopes["signs"], s.slopes["rows"]
        # the region's [w[rows]; signs * [lam; checked rows]] at d = 0: from the last
        # solve's point (affine in d) when it has one, else from the KKT system
        if self._last_point is not None:
            g, w, lam, values = self._last_point
            shift = slope @ (g - self._linear0)[self._rows]
        else:
            w, lam, values = self._point(s, self._linear0)  # type: ignore[misc]
            shift = 0.0
        n_lam = len(lam)
        base = np.concatenate((lam, values))[rows]
        limits = np.concatenate((np.full(n_lam, KKT_TOLERANCE), self._upper_tol[s.checked]))
        lower_limits = np.concatenate((np.full(n_lam, KKT_TOLERANCE), -self._lower_tol[s.checked]))
        return AffineRegion(
            offset=np.concatenate((w[self._rows], signs * base)) - shift,
            slope=slope,
            n_out=len(self._rows),
            limit=np.where(signs > 0, limits[rows], lower_limits[rows]),
            active=self._active,
            flip_index=s.slopes["flip_index"],
            flip_status=s.slopes["flip_status"],
        )

    def _region_slopes(self, s: ActiveSet) -> dict[str, npt.NDArray[np.floating]]:
        """d/dd of ``w[region_rows]`` and of the region's one-sided checks."""
        columns = self._E.shape[1]
        zero_B, zero_W = np.zeros((len(s.B), columns)), np.zeros((len(s.W), columns))
        dw, dlam = self._kkt_solution(s, self._E, zero_B, zero_W)  # type: ignore[misc]
        # one-sided checks on the rows of [lam; checked row values], as sign * v <= limit:
        # lam <= tol at a lower bound, -lam <= tol at an upper one; value <= upper and
        # -value <= -lower for every finite bound of an inactive row
        upper = np.concatenate((s.at_lower, np.isfinite(self._upper[s.checked])))
        lower = np.concatenate((s.at_upper, np.isfinite(self._lower[s.checked])))
        rows = np.concatenate((np.flatnonzero(upper), np.flatnonzero(lower)))
        signs = np.concatenate(
            (np.ones(np.count_nonzero(upper)), -np.ones(np.count_nonzero(lower)))
        )
        derivative = np.concatenate((dlam, self._checked_values(s, dw)))[rows]
        slope = np.concatenate((dw[self._rows], signs[:, None] * derivative))
        # a failing check: a multiplier's row leaves the active set, an inactive row
        # enters it at the bound it crosses
        n_lam = len(dlam)
        entries = np.concatenate((s.W, self.m + s.B, s.checked))[rows]
        status = np.where(rows < n_lam, 0, np.where(signs > 0, 2, 1)).astype(np.int8)
        return {
            "slope": slope,
            "signs": signs,
            "rows": rows,
            "flip_index": entries,
            "flip_status": status,
        }
