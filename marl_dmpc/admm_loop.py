"""The compiled inner loop of consensus ADMM (:func:`iterate`): every agent's local QP
by :mod:`~marl_dmpc.kkt`'s active-set steps, the averaging, the residuals, residual
balancing of ``rho`` and Anderson acceleration (:func:`anderson`), on the arrays of a
:class:`Loop`. :class:`~marl_dmpc.admm.AdmmCoordinator` sets it up, solves outside it
what it hands back (a QP its steps do not solve, an agent of another solver), and reads
the result; its docstring describes the iteration."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from . import kkt
from .compiled import cycles, jit
from .kkt import QpArrays

#: Residual balancing: from this iteration of a solve on (earlier, ``rho`` is nominal),
RHO_WAIT = 100
#: every this many iterations,
RHO_PERIOD = 10
#: ``rho`` changes when one residual exceeds the other this many times,
RHO_BALANCE = 10.0
#: by this factor.
RHO_FACTOR = 2.0
#: Tikhonov term of Anderson acceleration's least squares, relative to the mean squared
#: norm of the residual differences.
ANDERSON_REGULARIZATION = 1e-12


class Loop(NamedTuple):
    """The state of one ADMM solve, as arrays the compiled iteration (:func:`iterate`)
    reads and writes (``S``: the length of all agents' ``x_aug`` together; ``Z``: of
    ``z``; ``V``: of all the batch's QP variables)."""

    aug_off: npt.NDArray[np.int64]  # agent i's entries of an S-vector: aug_off[i]:aug_off[i+1]
    aug_pos: npt.NDArray[np.int64]  # the batch's QP variable under each entry (S)
    qp_of: npt.NDArray[np.int64]  # agent -> its QP in the batch, -1 if solved outside
    need_solver: npt.NDArray[np.bool_]  # per agent: its QP has no active set yet
    all_index: npt.NDArray[np.int64]  # the entry of z under each entry (S)
    counts: npt.NDArray[np.floating]  # copies of each entry of z (Z)
    linear0: npt.NDArray[np.floating]  # the QPs' linear terms at d = 0 (V)
    g: npt.NDArray[np.floating]  # and at this iteration's d (V)
    y: npt.NDArray[np.floating]  # (S)
    z: npt.NDArray[np.floating]  # (Z)
    views: npt.NDArray[np.floating]  # every agent's view of z (S)
    d: npt.NDArray[np.floating]  # y - rho views, the local problems' input (S)
    step: npt.NDArray[np.floating]  # the plain ADMM step's d (S)
    x: npt.NDArray[np.floating]  # the local solutions (S)
    x_given: npt.NDArray[np.floating]  # solutions given from outside (S)
    given: npt.NDArray[np.bool_]  # per agent: its x this iteration is in x_given
    y_used: npt.NDArray[np.floating]  # y and views at the start of the iteration (S)
    views_used: npt.NDArray[np.floating]
    primal: npt.NDArray[np.floating]  # the residuals after every iteration
    dual: npt.NDArray[np.floating]
    F: npt.NDArray[np.floating]  # Anderson: residual differences (S x memory)
    G: npt.NDArray[np.floating]  # and step differences (memory x S)
    gram: npt.NDArray[np.floating]  # F' F
    chol: npt.NDArray[np.floating]  # its Cholesky factor, transposed (memory x memory)
    column: npt.NDArray[np.floating]  # scratch: gram's new row (memory)
    rhs: npt.NDArray[np.floating]  # F' f, then the coefficients (memory)
    f_prev: npt.NDArray[np.floating]
    g_prev: npt.NDArray[np.floating]
    agent_cycles: npt.NDArray[np.int64]  # with I_TIMING: per iteration and agent, the
    # cycles of its local work (shape (cap, agents); (0, agents) without)
    ints: npt.NDArray[np.int64]  # see the I_* names
    floats: npt.NDArray[np.floating]  # see the F_* names


# entries of Loop.ints: the iteration, the agent to solve next, Anderson's history (has
# a previous point, rows in use, the next row), the iteration cap, the memory, and
# whether the agents' local work is timed
I_IT, I_AGENT, I_HAS, I_USED, I_NEXT, I_CAP, I_MEMORY, I_TIMING = range(8)
# entries of Loop.floats: rho, the next iteration's rho, the two tolerances
F_RHO, F_NEXT_RHO, F_TOL, F_DUAL_TOL = range(4)
# what the compiled iteration returns: the cap reached, converged, an agent to solve
# outside (I_AGENT), a new rho (the QPs' data to update)
DONE, CONVERGED, SOLVE_OUTSIDE, NEW_RHO = range(4)


@jit
def _average(L: Loop, values: npt.NDArray, out: npt.NDArray) -> None:
    """``out``: the average over every copy of each entry of ``z``."""
    out[:] = 0.0
    for k in range(len(values)):
        out[L.all_index[k]] += values[k]
    for k in range(len(out)):
        out[k] /= L.counts[k]


@jit
def anderson_reset(L: Loop) -> None:
    L.ints[I_HAS] = 0
    L.ints[I_USED] = 0
    L.ints[I_NEXT] = 0


@jit
def anderson(L: Loop, d: npt.NDArray, g: npt.NDArray) -> bool:
    """Type-II Anderson acceleration of the fixed-point iteration ``d <- G(d)`` (Walker
    and Ni, "Anderson acceleration for fixed-point iterations", 2011): the next point is
    ``G(d) - dG gamma``, with ``gamma`` fitting the last ``memory`` residual differences
    ``dF`` to the residual ``G(d) - d`` in least squares (normal equations with a small
    Tikhonov term, :data:`ANDERSON_REGULARIZATION`). While ``G`` is affine (the local
    problems keep their active sets), this is GMRES on the fixed-point equation, which
    removes the few slow modes plain ADMM has when ``rho`` suits some entries and not
    others. ``d`` becomes the next point (``g``, the plain step, when there is no
    history); whether it is an extrapolation."""
    memory, size = L.ints[I_MEMORY], len(d)
    if memory == 0:
        d[:] = g
        return False
    # F is kept transposed (size x memory) and G not, so that every loop below runs
    # along contiguous memory over independent sums, each summed in the same order as
    # one at a time would be: the same bits, without long chains of dependent additions
    F, G, gram, rhs = L.F, L.G, L.gram, L.rhs
    if not L.ints[I_HAS]:
        for e in range(size):
            L.f_prev[e] = g[e] - d[e]
            L.g_prev[e] = g[e]
        L.ints[I_HAS] = 1
        d[:] = g
        return False
    k = L.ints[I_NEXT]
    used = max(L.ints[I_USED], k + 1)
    L.ints[I_USED] = used
    L.ints[I_NEXT] = (k + 1) % memory
    # the new differences, and in one pass gram's new row F F_k and the right-hand
    # side F f
    column = L.column
    column[:used] = 0.0
    rhs[:used] = 0.0
    for e in range(size):
        f = g[e] - d[e]
        fk = f - L.f_prev[e]
        F[e, k] = fk
        G[k, e] = g[e] - L.g_prev[e]
        L.f_prev[e] = f
        L.g_prev[e] = g[e]
        for r in range(used):
            column[r] += F[e, r] * fk
            rhs[r] += F[e, r] * f
    for r in range(used):
        gram[k, r] = column[r]
        gram[r, k] = column[r]
    # (gram + reg I) gamma = F f, by Cholesky, column by column (chol[c, r] is the
    # factor's entry (r, c))
    trace = 0.0
    for r in range(used):
        trace += gram[r, r]
    shift = ANDERSON_REGULARIZATION * trace / used
    chol = L.chol
    for c in range(used):
        chol[c, c] = gram[c, c] + shift
        for r in range(c + 1, used):
            chol[c, r] = gram[r, c] + 0.0  # as the row-by-row order adds (-0.0 + 0.0)
        for j in range(c):
            factor = chol[j, c]
            for r in range(c, used):
                chol[c, r] -= chol[j, r] * factor
        if not chol[c, c] > 0.0:  # numerically dependent differences: start over
            anderson_reset(L)
            d[:] = g
            return False
        diagonal = np.sqrt(chol[c, c])
        chol[c, c] = diagonal
        for r in range(c + 1, used):
            chol[c, r] /= diagonal
    for r in range(used):
        acc = rhs[r]
        for j in range(r):
            acc -= chol[j, r] * rhs[j]
        rhs[r] = acc / chol[r, r]
    for r in range(used - 1, -1, -1):
        acc = rhs[r]
        for j in range(r + 1, used):
            acc -= chol[r, j] * rhs[j]
        rhs[r] = acc / chol[r, r]
    d[:] = g
    for r in range(used):
        for e in range(size):
            d[e] -= rhs[r] * G[r, e]
    return True


@jit
def iterate(a: QpArrays, L: Loop) -> int:
    """Run ADMM iterations from ``L``'s state until the cap, convergence, a local
    problem to solve outside (an agent of another solver, or a QP whose active-set
    steps failed) or a new ``rho``; what stopped them."""
    n = len(L.qp_of)
    cap, tol, dual_tol = L.ints[I_CAP], L.floats[F_TOL], L.floats[F_DUAL_TOL]
    size = len(L.y)
    z_new = np.empty(len(L.z))
    timing = L.ints[I_TIMING] != 0
    while L.ints[I_IT] < cap:
        it, rho = L.ints[I_IT], L.floats[F_RHO]
        if L.ints[I_AGENT] == 0:
            L.y_used[:] = L.y
            L.views_used[:] = L.views
        for i in range(L.ints[I_AGENT], n):
            lo, hi = L.aug_off[i], L.aug_off[i + 1]
            if L.given[i]:
                L.given[i] = False
                for e in range(lo, hi):
                    L.x[e] = L.x_given[e]
                anderson_reset(L)  # the map d -> x changed
                continue
            b = L.qp_of[i]
            if b < 0 or L.need_solver[i]:
                L.ints[I_AGENT] = i
                # the linear term, for the solver outside
                if b >= 0:
                    _linear_term(a, L, i, b)
                return SOLVE_OUTSIDE
            start = cycles() if timing else 0
            _linear_term(a, L, i, b)
            factorizations = a.stats[b, kkt.FACTORIZATIONS]
            on = a.dims[b, kkt.OFF_N]
            solved = kkt.solve(a, b, L.g[on : on + a.dims[b, kkt.N]], 0) == kkt.OPTIMAL
            if solved:
                for e in range(lo, hi):
                    L.x[e] = a.w[L.aug_pos[e]]
            if timing:
                L.agent_cycles[it, i] += cycles() - start
            if not solved:
                L.ints[I_AGENT] = i
                return SOLVE_OUTSIDE
            if a.stats[b, kkt.FACTORIZATIONS] != factorizations:
                anderson_reset(L)  # the active set changed: so did the map d -> x
        L.ints[I_AGENT] = 0
        _average(L, L.x, z_new)
        primal = dual = 0.0
        for e in range(size):
            view = z_new[L.all_index[e]]
            r = L.x[e] - view
            dz = view - L.views[e]
            primal += r * r
            dual += dz * dz
            L.y[e] += rho * r
            L.views[e] = view
            L.step[e] = L.y[e] - rho * view
        primal, dual = np.sqrt(primal), rho * np.sqrt(dual)
        L.primal[it], L.dual[it] = primal, dual
        L.z[:] = z_new
        L.ints[I_IT] = it + 1
        if tol > 0:
            if primal <= tol and dual <= dual_tol:
                return CONVERGED
            if (it + 1) >= RHO_WAIT and (it + 1) % RHO_PERIOD == 0:
                if primal > RHO_BALANCE * dual:
                    L.floats[F_NEXT_RHO] = rho * RHO_FACTOR
                elif dual > RHO_BALANCE * primal:
                    L.floats[F_NEXT_RHO] = rho / RHO_FACTOR
        if anderson(L, L.d, L.step):  # the extrapolated point's z and y
            _average(L, L.d, L.z)
            for k in range(len(L.z)):
                L.z[k] = -L.z[k] / rho
            for e in range(size):
                L.views[e] = L.z[L.all_index[e]]
                L.y[e] = L.d[e] + rho * L.views[e]
        if L.floats[F_NEXT_RHO] != rho:
            # same y and z, new penalty: the QPs' data changes
            rho = L.floats[F_NEXT_RHO]
            L.floats[F_RHO] = rho
            for e in range(size):
                L.d[e] = L.y[e] - rho * L.views[e]
            anderson_reset(L)
            return NEW_RHO
    return DONE


@jit
def _linear_term(a: QpArrays, L: Loop, i: int, b: int) -> None:
    """QP ``b``'s (agent ``i``'s) linear term at this iteration's ``d``."""
    on, nv = a.dims[b, kkt.OFF_N], a.dims[b, kkt.N]
    for k in range(on, on + nv):
        L.g[k] = L.linear0[k]
    for e in range(L.aug_off[i], L.aug_off[i + 1]):
        L.g[L.aug_pos[e]] += L.d[e]
