"""Fast re-solves of a parametric convex QP by re-using its optimal active set.

Within one ADMM solve an agent's local QP keeps its Hessian and constraint matrix; only
the linear term moves (``y`` and ``z`` enter the cost linearly), and it moves little
from one iteration to the next, so the optimal active set rarely changes. For a given
active set the QP's solution is the solution of one linear (KKT) system;
:class:`ActiveSetQp` tries the last optimal active set first: if the resulting point is
feasible and its multipliers have the right signs, it *is* the optimum (the QP is
convex). If not, primal-dual active-set steps follow, and only if they do not reach the
optimum within :data:`~marl_dmpc.kkt.ACTIVE_SET_STEPS` does a QP solver (e.g. qpOASES,
a new instance each time: :class:`FreshConic`) solve the QP. The answer is the QP's
optimum either way; only the cost changes. The steps are :mod:`marl_dmpc.kkt`'s compiled
kernels; :class:`~marl_dmpc.admm.AdmmCoordinator` runs them on all agents' QPs at once
(:meth:`ActiveSetQp.data` gives it a QP's data).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import casadi as cs
import daqp
import numpy as np
import numpy.typing as npt

from . import kkt
from .casadi_call import BufferedFunction
from .conic import DirectSolve, FreshConic, QpSolution
from .kkt import (
    OFF_M,
    OFF_N,
    OFF_NM,
    OPTIMAL,
    M,
    N,
    QpArrays,
)

__all__ = ["ActiveSetQp", "DirectSolve", "FreshConic", "QpBatch", "QpSolution", "QpStructure"]


#: DAQP's sense of an equality row: active and immutable.
DAQP_EQUALITY = 5


def _nonzeros(matrix: cs.SX) -> cs.SX:
    """The structural nonzeros of ``matrix``, column by column, as a column."""
    entries = matrix.nonzeros()
    return cs.vertcat(*entries) if entries else cs.SX(0, 1)


class QpStructure(NamedTuple):
    """The sparsity of one QP: sizes and the column-compressed patterns of ``H`` and
    ``A``."""

    n: int
    m: int
    H_colind: npt.NDArray[np.int64]
    H_row: npt.NDArray[np.int64]
    A_colind: npt.NDArray[np.int64]
    A_row: npt.NDArray[np.int64]


class QpBatch:
    """Several QPs of fixed sparsity whose data (matrices, bounds) is set between solves
    and whose active sets and factorizations persist, in flat arrays for the kernels
    (:attr:`arrays`).

    Parameters
    ----------
    structures : sequence of QpStructure
        The QPs' sizes and sparsity patterns.
    """

    def __init__(self, structures: Sequence[QpStructure]) -> None:
        self.structures = list(structures)
        q = len(self.structures)
        dims = np.zeros((q, 10), dtype=np.int64)
        total = np.zeros(7, dtype=np.int64)  # n, m, n+m, n+1, n+1, s**2, s
        hnz = anz = 0
        self._hx, self._ax = [], []
        for i, s in enumerate(self.structures):
            s_max = s.n + s.m
            dims[i] = (s.n, s.m, total[0], total[1], total[2], total[3], total[4], total[5],
                       total[6], s_max)  # fmt: skip
            total += (s.n, s.m, s.n + s.m, s.n + 1, s.n + 1, s_max**2, s_max)
            self._hx.append(slice(hnz, hnz + len(s.H_row)))
            self._ax.append(slice(anz, anz + len(s.A_row)))
            hnz, anz = hnz + len(s.H_row), anz + len(s.A_row)

        def cat(arrays):
            return np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, np.int64)

        nn, mm, nm = int(total[0]), int(total[1]), int(total[2])
        self.arrays = QpArrays(
            dims=dims,
            # column pointers into the batch's nonzeros
            Hp=cat([s.H_colind + x.start for s, x in zip(self.structures, self._hx, strict=True)]),
            Hi=cat([s.H_row for s in self.structures]).astype(np.int64),
            Hx=np.zeros(hnz),
            Ap=cat([s.A_colind + x.start for s, x in zip(self.structures, self._ax, strict=True)]),
            Ai=cat([s.A_row for s in self.structures]).astype(np.int64),
            Ax=np.zeros(anz),
            lo=np.zeros(nm),
            up=np.zeros(nm),
            lo_tol=np.zeros(nm),
            up_tol=np.zeros(nm),
            h=np.zeros(nn),
            act=np.zeros(nm, dtype=np.int8),
            guess=np.zeros(nm, dtype=np.int8),
            saved=np.zeros(nm, dtype=np.int8),
            factored=np.zeros(q, dtype=np.bool_),
            W=np.zeros(mm, dtype=np.int64),
            Wd=np.zeros(mm, dtype=np.int64),
            Fd=np.zeros(nn, dtype=np.int64),
            Fr=np.zeros(nn, dtype=np.int64),
            B=np.zeros(nn, dtype=np.int64),
            pos=np.full(nm, -1, dtype=np.int64),
            counts=np.zeros((q, 6), dtype=np.int64),
            lu=np.zeros(int(total[5])),
            piv=np.zeros(int(total[6]), dtype=np.int64),
            nz_ptr=np.zeros(2 * int(total[6]) + q, dtype=np.int64),
            nz_col=np.zeros(int(total[5]), dtype=np.int64),
            sol=np.zeros(int(total[6])),
            rhs=np.zeros(nn),
            aw=np.zeros(mm),
            w=np.zeros(nn),
            lam=np.zeros(mm),
            stats=np.zeros((q, 4), dtype=np.int64),
        )

        d = self.arrays.dims
        self._slices = {
            size: [
                slice(int(o), int(o + length)) for o, length in zip(offset, lengths, strict=True)
            ]
            for size, offset, lengths in (
                ("n", d[:, OFF_N], d[:, N]),
                ("m", d[:, OFF_M], d[:, M]),
                ("nm", d[:, OFF_NM], d[:, N] + d[:, M]),
            )
        }

    def _slice(self, i: int, size: str) -> slice:
        return self._slices[size][i]

    def variables(self, i: int) -> slice:
        """QP ``i``'s variables in a vector over all the batch's variables."""
        return self._slices["n"][i]

    def set_data(
        self,
        i: int,
        Hx: npt.NDArray[np.floating],
        Ax: npt.NDArray[np.floating],
        lo: npt.NDArray[np.floating],
        up: npt.NDArray[np.floating],
    ) -> None:
        """QP ``i``'s matrices (nonzeros in the structure's order) and the bounds of
        ``[A w; w]``; its factorization is dropped, its active set kept."""
        a = self.arrays
        a.Hx[self._hx[i]] = Hx
        a.Ax[self._ax[i]] = Ax
        rows = self._slices["nm"][i]
        a.lo[rows], a.up[rows] = lo, up
        kkt.prepare(a, i)

    def dense(self, i: int) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
        """QP ``i``'s ``H`` and ``A`` as dense matrices (for a QP solver)."""
        s, a = self.structures[i], self.arrays
        H, A = np.zeros((s.n, s.n)), np.zeros((s.m, s.n))
        H[s.H_row, np.repeat(np.arange(s.n), np.diff(s.H_colind))] = a.Hx[self._hx[i]]
        A[s.A_row, np.repeat(np.arange(s.n), np.diff(s.A_colind))] = a.Ax[self._ax[i]]
        return H, A

    def bounds(self, i: int) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
        """QP ``i``'s bounds of ``[A w; w]``."""
        rows = self._slice(i, "nm")
        return self.arrays.lo[rows], self.arrays.up[rows]

    def active_set(self, i: int) -> npt.NDArray[np.int8]:
        """QP ``i``'s current active set (a view)."""
        return self.arrays.act[self._slice(i, "nm")]

    def set_active_set(self, i: int, active: npt.NDArray[np.int8]) -> None:
        """Start QP ``i``'s next steps from ``active``."""
        self.arrays.act[self._slice(i, "nm")] = active
        self.arrays.factored[i] = False

    def point(self, i: int) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
        """QP ``i``'s last optimal point: primal and constraint multipliers (views)."""
        return self.arrays.w[self._slice(i, "n")], self.arrays.lam[self._slice(i, "m")]

    def solve(self, i: int, g: npt.NDArray[np.floating]) -> bool:
        """Active-set steps on QP ``i`` with the linear term ``g``, from its current active
        set; whether they reached the optimum (then :meth:`point`) within
        :data:`~marl_dmpc.kkt.ACTIVE_SET_STEPS`."""
        return kkt.solve(self.arrays, i, np.asarray(g, dtype=float), 0) == OPTIMAL


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
        Entries ``r`` of ``w``: the only entries of the cost's linear term that ``q``
        moves (checked). A caller that moves the linear term itself (ADMM) adds its
        moving part there.
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
        hessian = cs.hessian(f, w)[0]
        jacobian = cs.jacobian(g, w)
        linear = cs.substitute(cs.gradient(f, w), w, zero)
        self.structure = QpStructure(
            n=w.numel(),
            m=g.numel(),
            H_colind=np.asarray(hessian.sparsity().colind(), dtype=np.int64),
            H_row=np.asarray(hessian.sparsity().row(), dtype=np.int64),
            A_colind=np.asarray(jacobian.sparsity().colind(), dtype=np.int64),
            A_row=np.asarray(jacobian.sparsity().row(), dtype=np.int64),
        )
        self._matrices = BufferedFunction(
            cs.Function(
                "qp_matrices",
                [p],
                [
                    _nonzeros(hessian),
                    _nonzeros(jacobian),
                    cs.densify(cs.substitute(g, w, zero)),
                    cs.densify(linear),
                ],
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
        self.lbg, self.ubg = fallback.lbg, fallback.ubg
        self.lbx, self.ubx = fallback.lbx, fallback.ubx
        self.n, self.m = w.numel(), g.numel()
        self._batch = QpBatch([self.structure])
        # compile the steps (or load them from numba's cache) now rather than in a solve
        kkt.prepare(self._batch.arrays, 0)
        kkt.solve(self._batch.arrays, 0, np.zeros(self.n), kkt.ACTIVE_SET_STEPS + 1)
        self._batch.arrays.stats[:] = 0
        self._fixed: npt.NDArray[np.floating] | None = None
        self._active: npt.NDArray[np.int8] | None = None
        #: Counts of solves answered from the last active set, after active-set steps,
        #: from DAQP's active set, and by the fallback solver; and of KKT factorizations.
        self.stats = {"reused": 0, "guessed": 0, "dual": 0, "solver": 0, "factorizations": 0}

    # ------------------------------------------------------------------ data
    def data(self, fixed: npt.NDArray[np.floating]) -> tuple[npt.NDArray[np.floating], ...]:
        """The QP at ``q = 0`` for the fixed parameters ``fixed`` (``p[:n_fixed]``): the
        nonzeros of ``H`` and ``A`` (in :attr:`structure`'s order), the bounds ``lo``,
        ``up`` of ``[A w; w]`` and the linear term (fresh arrays)."""
        p0 = np.concatenate((fixed, np.zeros(self._matrices.function.numel_in(0) - len(fixed))))
        Hx, Ax, g0, linear0 = (v.reshape(-1).copy() for v in self._matrices(p0))
        lo = np.concatenate((self.lbg - g0, self.lbx))
        up = np.concatenate((self.ubg - g0, self.ubx))
        return Hx, Ax, lo, up, linear0

    @property
    def n_fixed(self) -> int:
        """How many of the first parameters the matrices may depend on (see the class)."""
        return self._n_fixed

    def linear_term(self, p: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        """The cost's linear term at the parameters ``p`` (the data of the QP of ``p``'s
        fixed part set, as for :meth:`solve`)."""
        self._set_fixed(p)
        return self._linear0 + self._linear_slope @ p[self._n_fixed :]

    def _set_fixed(self, p: npt.NDArray[np.floating]) -> None:
        fixed = p[: self._n_fixed]
        if self._fixed is not None and np.array_equal(fixed, self._fixed):
            return
        Hx, Ax, lo, up, self._linear0 = self.data(fixed)
        self._batch.set_data(0, Hx, Ax, lo, up)
        p0 = np.concatenate((fixed, np.zeros(len(p) - self._n_fixed)))
        self._linear_slope = self._slope(p0)[0].copy()
        self._fixed = fixed.copy()

    def rescue(self, batch: QpBatch, index: int, g: npt.NDArray[np.floating]) -> QpSolution:
        """The optimum of QP ``index`` of ``batch`` (of this QP's structure and data) for
        the linear term ``g``, where its active-set steps have failed (or it has no active
        set yet): the steps again from the active set of DAQP's solution
        (:func:`dual_active_set`; the answer is then theirs, to their precision), and the
        fallback solver's answer if they fail again. The batch's active set becomes the answer's."""
        H, A = batch.dense(index)
        lo, up = batch.bounds(index)
        active = dual_active_set(H, A, g, lo, up)
        if active is not None:
            batch.set_active_set(index, active)
            if batch.solve(index, g):
                self.stats["dual"] += 1
                w, lam = batch.point(index)
                return QpSolution(w.copy(), lam.copy(), True, "active set of DAQP")
        solution = self.fallback_solve(H, A, g, lo, up)
        if solution.success:
            batch.set_active_set(index, active_set_from_multipliers(solution, lo, up))
        return solution

    def fallback_solve(
        self,
        H: npt.NDArray[np.floating],
        A: npt.NDArray[np.floating],
        g: npt.NDArray[np.floating],
        lo: npt.NDArray[np.floating],
        up: npt.NDArray[np.floating],
    ) -> QpSolution:
        """The optimum from the fallback solver (a new qpOASES instance) of the QP with
        dense ``H``, ``A``, the linear term ``g`` and the bounds ``lo``, ``up`` of
        ``[A w; w]``."""
        self.stats["solver"] += 1
        return self._fallback.solve(H, A, g, lo[: self.m], up[: self.m])

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
    def solve(self, p: npt.NDArray[np.floating]) -> QpSolution:
        """The QP's optimum for the parameters ``p``; the active-set steps start from
        the last optimal active set."""
        g = self.linear_term(p)
        batch = self._batch
        if self._active is not None:
            batch.set_active_set(0, self._active)
            before = batch.arrays.stats[0].copy()
            if batch.solve(0, g):
                counts = batch.arrays.stats[0] - before
                self.stats["reused" if counts[0] else "guessed"] += 1
                self.stats["factorizations"] += int(counts[3])
                self._active = batch.active_set(0).copy()
                w, lam = batch.point(0)
                return QpSolution(w.copy(), lam.copy(), True, "active set re-used")
        solution = self.rescue(batch, 0, g)
        if solution.success:
            self._active = batch.active_set(0).copy()
        return solution


def dual_active_set(
    H: npt.NDArray[np.floating],
    A: npt.NDArray[np.floating],
    g: npt.NDArray[np.floating],
    lo: npt.NDArray[np.floating],
    up: npt.NDArray[np.floating],
) -> npt.NDArray[np.int8] | None:
    """The active set of DAQP's solution of ``min 1/2 w'Hw + g'w`` s.t. ``lo <= [A w; w]
    <= up`` (``None`` if DAQP fails). DAQP (Arnstrom et al., "A dual active-set solver
    for embedded quadratic programming using recursive LDL' updates", IEEE TAC 2022) is a
    dual active-set method; a semidefinite ``H`` (slacks with linear costs) is
    regularized proximally. It keeps no state between calls, so the answer depends on the
    QP alone."""
    m, n = A.shape
    equal = lo == up
    # DAQP's order: the variables' bounds, then the rows of A; 1e30 is its infinity
    lower = np.maximum(np.concatenate((lo[m:], lo[:m])), -1e30)
    upper = np.minimum(np.concatenate((up[m:], up[:m])), 1e30)
    sense = np.concatenate((equal[m:], equal[:m])).astype(np.int32) * DAQP_EQUALITY
    _, _, flag, info = daqp.solve(
        np.ascontiguousarray(H), g, np.ascontiguousarray(A), upper, lower, sense
    )
    if flag <= 0:
        return None
    lam = np.asarray(info["lam"])
    return _active_set(np.concatenate((lam[n:], lam[:n])), equal)


def active_set_from_multipliers(
    solution: QpSolution, lo: npt.NDArray[np.floating], up: npt.NDArray[np.floating]
) -> npt.NDArray[np.int8]:
    """The active set of a solver's ``solution`` of a QP with the bounds ``lo``, ``up`` of
    ``[A w; w]`` (see :func:`_active_set`)."""
    return _active_set(np.concatenate((solution.lam_g, solution.lam_x)), lo == up)


def _active_set(
    lam: npt.NDArray[np.floating], equal: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int8]:
    """The active set of the multipliers ``lam`` of ``[A w; w]``'s rows: a row with a
    positive multiplier at its upper bound, a negative one at its lower bound, an
    equality (``equal``) always."""
    active = np.where(lam > 0, 2, np.where(lam < 0, 1, 0)).astype(np.int8)
    active[equal] = 3
    return active
