"""Compiled active-set steps of small convex QPs, one QP or many at once (their data in
:class:`QpArrays`, kept by :class:`~marl_dmpc.qp.QpBatch`).

A QP here is ``min 1/2 w'Hw + g'w`` s.t. ``lo <= [A w; w] <= up`` with ``H`` and ``A``
sparse (CasADi's column-compressed storage) and positive semidefinite ``H``. An *active
set* gives every row of ``[A w; w]`` a status: 0 inactive, 1 at its lower bound, 2 at
its upper bound, 3 an equality. For one active set the optimum is the solution of a
linear (KKT) system over the free variables ``F`` and the active constraints ``W``::

    [H_FF  A_WF'] [w_F  ]   [-g_F - H_FB w_B]
    [A_WF  0    ] [lam_W] = [d_W  - A_WB w_B]

with the bound variables ``B`` at their bounds and ``d_W`` the active rows' bound
values. Free variables whose Hessian column is diagonal with a positive entry (in MPC:
states and inputs with diagonal weights, the ADMM penalty's copies) are eliminated: the
system left is ``R = [[H_rr, A_Wr'], [A_Wr, -A_Wd diag(1/h) A_Wd']]`` over the others
and the multipliers, of the size of the active set (about 25 for example 1's local
problems), factorized by LU with partial pivoting. Active rows with no free variable
(e.g. Q's first input fixed by its constraint while also at its bound) get a zero
multiplier, if their bound values are consistent.

The point is *the* optimum if it is feasible and its multipliers have the right signs
(CasADi's sign convention: positive at an upper bound), up to :data:`KKT_TOLERANCE`; the
QP is convex. If not, a primal-dual active-set step follows: rows whose multiplier has
the wrong sign leave the set, violated rows enter it at the bound they cross. A caller
that re-solves a QP whose linear term moves a little (ADMM) keeps the factorization of
the last optimal active set and pays one solve with it per re-solve while that set
holds.

The kernels are compiled with numba (no fast-math, no BLAS): their arithmetic is the
same on every CPU, and a result depends on the data and the starting active set only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from . import compiled
from .compiled import jit

#: Feasibility and multiplier-sign tolerance of an accepted active-set solution.
KKT_TOLERANCE = 1e-9
#: A pivot of the reduced KKT matrix below this, relative to its largest entry, makes
#: the active set singular (its QP goes to a solver).
PIVOT_TOLERANCE = 1e-12
#: Primal-dual active-set steps tried before a QP goes to a solver.
ACTIVE_SET_STEPS = 20

# what a point or a solve gives
OPTIMAL, STEP, SINGULAR = 0, 1, 2
# columns of QpArrays.dims
N, M, OFF_N, OFF_M, OFF_NM, OFF_HP, OFF_AP, OFF_LU, OFF_S, S_MAX = range(10)
# columns of QpArrays.counts
N_W, N_WD, N_FD, N_FR, N_B, N_RANK = range(6)
# columns of QpArrays.stats
REUSED, STEPS, FAILED, FACTORIZATIONS = range(4)


class QpArrays(NamedTuple):
    """The data and workspace of a batch of QPs, as flat arrays (QP ``i``'s entries at
    the offsets of ``dims[i]``): what the compiled kernels read and write."""

    dims: npt.NDArray[np.int64]  # (qps, 10): see the column names above
    Hp: npt.NDArray[np.int64]  # column pointers, n + 1 per QP
    Hi: npt.NDArray[np.int64]  # row indices
    Hx: npt.NDArray[np.floating]  # values
    Ap: npt.NDArray[np.int64]
    Ai: npt.NDArray[np.int64]
    Ax: npt.NDArray[np.floating]
    lo: npt.NDArray[np.floating]  # bounds of [A w; w], m + n per QP
    up: npt.NDArray[np.floating]
    lo_tol: npt.NDArray[np.floating]  # the bounds widened by the tolerance
    up_tol: npt.NDArray[np.floating]
    h: npt.NDArray[np.floating]  # per variable: its diagonal Hessian entry, or 0
    act: npt.NDArray[np.int8]  # the current active set, m + n per QP
    guess: npt.NDArray[np.int8]  # the next active set of a step
    saved: npt.NDArray[np.int8]  # the set the steps started from
    factored: npt.NDArray[np.bool_]  # whether act's factorization is in lu
    W: npt.NDArray[np.int64]  # active rows with free variables, m per QP
    Wd: npt.NDArray[np.int64]  # active rows without (zero multiplier)
    Fd: npt.NDArray[np.int64]  # free variables eliminated, n per QP
    Fr: npt.NDArray[np.int64]  # the other free variables
    B: npt.NDArray[np.int64]  # bound variables
    pos: npt.NDArray[np.int64]  # position of a row of W / variable of Fr in R, or -1
    counts: npt.NDArray[np.int64]  # (qps, 6): sizes of W, Wd, Fd, Fr, B; rank of R
    lu: npt.NDArray[np.floating]  # LU factors of R, s_max**2 per QP
    piv: npt.NDArray[np.int64]
    nz_ptr: npt.NDArray[np.int64]  # the factors' nonzero pattern: 2 s_max + 1 per QP
    nz_col: npt.NDArray[np.int64]  # (at 2 OFF_S + i) and s_max**2 per QP
    sol: npt.NDArray[np.floating]  # scratch, s_max per QP
    rhs: npt.NDArray[np.floating]  # scratch, n per QP
    aw: npt.NDArray[np.floating]  # A w, m per QP
    w: npt.NDArray[np.floating]  # the last optimal point: primal, n per QP
    lam: npt.NDArray[np.floating]  # and constraint multipliers, m per QP
    stats: npt.NDArray[np.int64]  # (qps, 4): see the column names above


@jit
def prepare(a: QpArrays, i: int) -> None:
    """After new data of QP ``i``: drop its factorization, widen its bounds by the
    tolerance, and find ``h``: per variable, its Hessian entry if its column holds only
    that positive diagonal entry, else 0."""
    d = a.dims[i]
    n, hp, onm = d[N], d[OFF_HP], d[OFF_NM]
    a.factored[i] = False
    for r in range(onm, onm + n + d[M]):
        a.lo_tol[r] = a.lo[r] - KKT_TOLERANCE * (1.0 + abs(a.lo[r]))
        a.up_tol[r] = a.up[r] + KKT_TOLERANCE * (1.0 + abs(a.up[r]))
    for j in range(n):
        start, end = a.Hp[hp + j], a.Hp[hp + j + 1]
        a.h[d[OFF_N] + j] = 0.0
        if end - start == 1 and a.Hi[start] == j and a.Hx[start] > 0.0:
            a.h[d[OFF_N] + j] = a.Hx[start]


@jit
def _nonzeros(a: QpArrays, i: int) -> tuple[npt.NDArray, npt.NDArray]:
    """QP ``i``'s share of the factors' nonzero pattern (:func:`compiled.pattern`)."""
    d = a.dims[i]
    return a.nz_ptr[2 * d[OFF_S] + i :], a.nz_col[d[OFF_LU] :]


@jit
def _factor(a: QpArrays, i: int) -> bool:
    """Factorize the reduced KKT matrix of QP ``i``'s active set; ``False`` if it is
    singular."""
    d = a.dims[i]
    n, m, on, om, onm = d[N], d[M], d[OFF_N], d[OFF_M], d[OFF_NM]
    hp, ap = d[OFF_HP], d[OFF_AP]
    act, pos = a.act[onm : onm + n + m], a.pos[onm : onm + n + m]
    h = a.h[on : on + n]
    a.stats[i, FACTORIZATIONS] += 1
    n_fd = n_fr = n_b = 0
    for j in range(n):
        pos[m + j] = -1
        if act[m + j] != 0:
            a.B[on + n_b] = j
            n_b += 1
        elif h[j] > 0.0:
            a.Fd[on + n_fd] = j
            n_fd += 1
        else:
            pos[m + j] = n_fr
            a.Fr[on + n_fr] = j
            n_fr += 1
    # active rows with a free variable
    for r in range(m):
        pos[r] = -1
    for j in range(n):
        if act[m + j] == 0:
            for k in range(a.Ap[ap + j], a.Ap[ap + j + 1]):
                if act[a.Ai[k]] != 0 and a.Ax[k] != 0.0:
                    pos[a.Ai[k]] = 0
    n_w = n_wd = 0
    for r in range(m):
        if act[r] != 0:
            if pos[r] == 0:
                pos[r] = n_fr + n_w
                a.W[om + n_w] = r
                n_w += 1
            else:
                a.Wd[om + n_wd] = r
                n_wd += 1
    c = a.counts[i]
    c[N_W], c[N_WD], c[N_FD], c[N_FR], c[N_B] = n_w, n_wd, n_fd, n_fr, n_b
    s = n_fr + n_w
    lu = a.lu[d[OFF_LU] : d[OFF_LU] + s * s]
    lu[:] = 0.0
    for t in range(n_fr):
        j = a.Fr[on + t]
        for k in range(a.Hp[hp + j], a.Hp[hp + j + 1]):
            p = pos[m + a.Hi[k]]
            if p >= 0:
                lu[p * s + t] = a.Hx[k]
        for k in range(a.Ap[ap + j], a.Ap[ap + j + 1]):
            p = pos[a.Ai[k]]
            if act[a.Ai[k]] != 0 and p >= 0:
                lu[p * s + t] = a.Ax[k]
                lu[t * s + p] = a.Ax[k]
    # the Schur complement of the eliminated variables: -A_Wd diag(1/h) A_Wd'
    for t in range(n_fd):
        j = a.Fd[on + t]
        start, end = a.Ap[ap + j], a.Ap[ap + j + 1]
        for k in range(start, end):
            p = pos[a.Ai[k]]
            if act[a.Ai[k]] == 0 or p < 0:
                continue
            v = a.Ax[k] / h[j]
            for k2 in range(start, end):
                p2 = pos[a.Ai[k2]]
                if act[a.Ai[k2]] != 0 and p2 >= 0:
                    lu[p * s + p2] -= v * a.Ax[k2]
    piv = a.piv[d[OFF_S] : d[OFF_S] + s]
    ptr, col = _nonzeros(a, i)
    if n_fr == 0:  # R = -S with S positive semidefinite: dependent rows get lam = 0
        for k in range(s * s):
            lu[k] = -lu[k]
        c[N_RANK] = compiled.cholesky(lu, s, piv, PIVOT_TOLERANCE)
        compiled.pattern(lu, s, c[N_RANK], True, ptr, col)
        ok = True
    else:
        c[N_RANK] = s
        ok = compiled.lu(lu, s, piv, PIVOT_TOLERANCE)
        if ok:
            compiled.pattern(lu, s, s, False, ptr, col)
    a.factored[i] = ok
    return ok


@jit
def _point(a: QpArrays, i: int, g: npt.NDArray) -> int:
    """The KKT point of QP ``i``'s (factorized) active set for the linear term ``g``:
    :data:`OPTIMAL` (in ``w``, ``lam``) if it satisfies the KKT conditions, else
    :data:`STEP` with the next active set in ``guess``, or :data:`SINGULAR` if the
    active rows without free variables are inconsistent."""
    d = a.dims[i]
    n, m, on, om, onm = d[N], d[M], d[OFF_N], d[OFF_M], d[OFF_NM]
    hp, ap = d[OFF_HP], d[OFF_AP]
    act, pos = a.act[onm : onm + n + m], a.pos[onm : onm + n + m]
    lo, up = a.lo[onm : onm + n + m], a.up[onm : onm + n + m]
    h, w, rhs = a.h[on : on + n], a.w[on : on + n], a.rhs[on : on + n]
    lam, aw = a.lam[om : om + m], a.aw[om : om + m]
    c = a.counts[i]
    n_w, n_wd, n_fd, n_fr, n_b = c[N_W], c[N_WD], c[N_FD], c[N_FR], c[N_B]
    s = n_fr + n_w
    sol = a.sol[d[OFF_S] : d[OFF_S] + s]
    # bound variables at their bounds; right-hand side -g_F - H_FB w_B, d_W - A_WB w_B
    for j in range(n):
        rhs[j] = -g[j]
    for t in range(n_b):
        j = a.B[on + t]
        w[j] = up[m + j] if act[m + j] == 2 else lo[m + j]
    for t in range(n_w):
        r = a.W[om + t]
        sol[n_fr + t] = up[r] if act[r] == 2 else lo[r]
    for t in range(n_b):
        j = a.B[on + t]
        for k in range(a.Hp[hp + j], a.Hp[hp + j + 1]):
            rhs[a.Hi[k]] -= a.Hx[k] * w[j]
        for k in range(a.Ap[ap + j], a.Ap[ap + j + 1]):
            p = pos[a.Ai[k]]
            if act[a.Ai[k]] != 0 and p >= 0:
                sol[p] -= a.Ax[k] * w[j]
    for t in range(n_fr):
        sol[t] = rhs[a.Fr[on + t]]
    # eliminated variables: w_d = t - A_Wd' lam / h with t = rhs_d / h
    for t in range(n_fd):
        j = a.Fd[on + t]
        w[j] = rhs[j] / h[j]
        for k in range(a.Ap[ap + j], a.Ap[ap + j + 1]):
            p = pos[a.Ai[k]]
            if act[a.Ai[k]] != 0 and p >= 0:
                sol[p] -= a.Ax[k] * w[j]
    lu, piv = a.lu[d[OFF_LU] : d[OFF_LU] + s * s], a.piv[d[OFF_S] : d[OFF_S] + s]
    rank = c[N_RANK]
    ptr, col = _nonzeros(a, i)
    if n_fr == 0:
        compiled.cholesky_solve(lu, s, piv, rank, ptr, col, sol)
    else:
        compiled.lu_solve(lu, s, piv, ptr, col, sol)
    for r in range(m):
        lam[r] = 0.0
    for t in range(n_w):
        lam[a.W[om + t]] = sol[n_fr + t]
    for t in range(n_fr):
        w[a.Fr[on + t]] = sol[t]
    for t in range(n_fd):
        j = a.Fd[on + t]
        acc = 0.0
        for k in range(a.Ap[ap + j], a.Ap[ap + j + 1]):
            acc += a.Ax[k] * lam[a.Ai[k]]
        w[j] -= acc / h[j]
    # A w, and the checks
    for r in range(m):
        aw[r] = 0.0
    for j in range(n):
        for k in range(a.Ap[ap + j], a.Ap[ap + j + 1]):
            aw[a.Ai[k]] += a.Ax[k] * w[j]
    # rows without free variables, and rows dependent on the others: consistent? If
    # not, the bound variables in them leave their bounds
    guess = a.guess[onm : onm + n + m]
    step = False
    for t in range(n_wd + s - rank):
        r = a.Wd[om + t] if t < n_wd else a.W[om + piv[rank + t - n_wd] - n_fr]
        target = up[r] if act[r] == 2 else lo[r]
        if abs(aw[r] - target) > KKT_TOLERANCE * (1.0 + abs(target)):
            for u in range(n_b):
                j = a.B[on + u]
                for k in range(a.Ap[ap + j], a.Ap[ap + j + 1]):
                    if a.Ai[k] == r and a.Ax[k] != 0.0 and act[m + j] != 3:
                        if not step:
                            guess[:] = act
                            step = True
                        guess[m + j] = 0
            if not step:
                return SINGULAR
    if step:
        return STEP
    # the next active set, if this point is not the optimum: rows whose multiplier has
    # the wrong sign leave it, violated inactive rows enter it
    for t in range(n_w):
        r = a.W[om + t]
        if (act[r] == 1 and lam[r] > KKT_TOLERANCE) or (act[r] == 2 and lam[r] < -KKT_TOLERANCE):
            if not step:
                guess[:] = act
                step = True
            guess[r] = 0
    for t in range(n_b):
        j = a.B[on + t]
        # the bound's multiplier: -(H_j w + g_j + A_:j' lam)
        acc = g[j]
        for k in range(a.Hp[hp + j], a.Hp[hp + j + 1]):
            acc += a.Hx[k] * w[a.Hi[k]]
        for k in range(a.Ap[ap + j], a.Ap[ap + j + 1]):
            acc += a.Ax[k] * lam[a.Ai[k]]
        if (act[m + j] == 1 and -acc > KKT_TOLERANCE) or (
            act[m + j] == 2 and -acc < -KKT_TOLERANCE
        ):
            if not step:
                guess[:] = act
                step = True
            guess[m + j] = 0
    lo_tol, up_tol = a.lo_tol[onm : onm + n + m], a.up_tol[onm : onm + n + m]
    for r in range(m + n):
        if act[r] != 0:
            continue
        v = aw[r] if r < m else w[r - m]
        if v < lo_tol[r] or v > up_tol[r]:
            if not step:
                guess[:] = act
                step = True
            guess[r] = 1 if v < lo_tol[r] else 2
    return STEP if step else OPTIMAL


@jit
def solve(a: QpArrays, i: int, g: npt.NDArray, steps: int) -> int:
    """Active-set steps on QP ``i`` from its active set (its factorization re-used if
    current; ``steps`` already taken): :data:`OPTIMAL` (point in ``w``, ``lam``; ``act``
    the optimal set), or :data:`SINGULAR` when a set is singular or
    :data:`ACTIVE_SET_STEPS` did not reach the optimum (``act`` back at the set it
    started from or the last optimal one)."""
    d = a.dims[i]
    onm, nm = d[OFF_NM], d[N] + d[M]
    act, saved = a.act[onm : onm + nm], a.saved[onm : onm + nm]
    first = True
    while steps <= ACTIVE_SET_STEPS:
        if not a.factored[i] and not _factor(a, i):
            break
        status = _point(a, i, g)
        if status == OPTIMAL:
            a.stats[i, REUSED if steps == 0 else STEPS] += 1
            return OPTIMAL
        if status == SINGULAR:
            break
        if first:
            saved[:] = act
            first = False
        act[:] = a.guess[onm : onm + nm]
        a.factored[i] = False
        steps += 1
    if not first:
        act[:] = saved
        a.factored[i] = False
    a.stats[i, FAILED] += 1
    return SINGULAR
