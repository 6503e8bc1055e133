"""What the compiled kernels share: their decorator (:func:`jit`) and small dense
factorizations: LU with partial pivoting, and Cholesky with diagonal pivoting of a
positive semidefinite matrix, which finds its rank. The matrices are row-major ``s x s``
blocks of flat arrays (:mod:`marl_dmpc.kkt` keeps one per QP).

The kernels (this module, :mod:`~marl_dmpc.kkt`, :mod:`~marl_dmpc.admm_loop`) are
compiled by numba in nopython mode without fast-math and call no BLAS, so their
arithmetic is the same on every CPU. numba caches a compiled function on disk, but it
tells a stale cache only by the function's own file: a kernel that calls one of another
module would keep that one's old code. :func:`jit` therefore names every kernel's cache
after the source of all kernel modules together.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numba
import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: The modules whose kernels call each other.
KERNEL_MODULES = ("compiled", "kkt", "admm_loop")

F = TypeVar("F", bound=Callable)


def _sources_digest() -> str:
    digest = hashlib.sha256()
    for name in KERNEL_MODULES:
        digest.update((Path(__file__).parent / f"{name}.py").read_bytes())
    return digest.hexdigest()[:12]


_DIGEST = _sources_digest()


def jit(function: F) -> F:
    """Compile ``function`` with numba (nopython, cached on disk, releasing the GIL);
    its cache is named after the source of every kernel module (see above)."""
    function.__qualname__ = f"{function.__qualname__}_{_DIGEST}"
    return numba.njit(cache=True, nogil=True)(function)


@intrinsic
def _read_cycle_counter(typingctx):  # noqa: ANN001, ANN202 (numba's signature)
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        function_type = ir.FunctionType(ir.IntType(64), [])
        counter = cgutils.get_or_insert_function(
            builder.module, function_type, "llvm.readcyclecounter"
        )
        return builder.call(counter, [])

    return types.int64(), codegen


@jit
def cycles() -> int:
    """The CPU's cycle counter (on x86 its time-stamp counter, which ticks at a constant
    rate): a clock the kernels can read, which Python's clocks are not."""
    return _read_cycle_counter()


def cycles_per_second(interval: float = 0.05) -> float:
    """The rate of :func:`cycles`, measured against ``time.perf_counter`` over
    ``interval`` seconds."""
    cycles()  # compiled (or loaded) before the measurement
    start_cycles, start = cycles(), time.perf_counter()
    time.sleep(interval)
    return (cycles() - start_cycles) / (time.perf_counter() - start)


@jit
def lu(r: npt.NDArray, s: int, piv: npt.NDArray, tolerance: float) -> bool:
    """LU factors of the ``s x s`` row-major matrix in ``r``, in place, with row pivots;
    ``False`` if a pivot is below ``tolerance`` times the largest entry."""
    scale = 0.0
    for k in range(s * s):
        scale = max(scale, abs(r[k]))
    if scale == 0.0:
        return s == 0
    tiny = tolerance * scale
    for k in range(s):
        p, best = k, abs(r[k * s + k])
        for row in range(k + 1, s):
            v = abs(r[row * s + k])
            if v > best:
                p, best = row, v
        if best <= tiny:
            return False
        piv[k] = p
        if p != k:
            for c in range(s):
                r[k * s + c], r[p * s + c] = r[p * s + c], r[k * s + c]
        pivot = r[k * s + k]
        for row in range(k + 1, s):
            factor = r[row * s + k] / pivot
            r[row * s + k] = factor
            if factor != 0.0:
                for c in range(k + 1, s):
                    r[row * s + c] -= factor * r[k * s + c]
    return True


@jit
def pattern(
    r: npt.NDArray, s: int, rank: int, transposed: bool, ptr: npt.NDArray, col: npt.NDArray
) -> None:
    """The nonzero pattern of a factorization's triangles over its leading ``rank`` rows,
    for :func:`lu_solve` and :func:`cholesky_solve`: row ``k`` of the lower triangle
    (below the diagonal) has its nonzeros in the columns ``col[ptr[k]:ptr[k+1]]``, row
    ``k`` of the upper one (right of the diagonal) in ``col[ptr[s+k]:ptr[s+k+1]]``, in
    ascending order. The upper triangle is :func:`lu`'s ``U``, or with ``transposed``
    the transpose of :func:`cholesky`'s ``L`` (its column ``k``)."""
    count = 0
    ptr[0] = 0
    for k in range(rank):
        for c in range(k):
            if r[k * s + c] != 0.0:
                col[count] = c
                count += 1
        ptr[k + 1] = count
    ptr[s] = count
    for k in range(rank):
        for c in range(k + 1, rank):
            if (r[c * s + k] if transposed else r[k * s + c]) != 0.0:
                col[count] = c
                count += 1
        ptr[s + k + 1] = count


@jit
def lu_solve(
    r: npt.NDArray, s: int, piv: npt.NDArray, ptr: npt.NDArray, col: npt.NDArray, b: npt.NDArray
) -> None:
    """Solve with :func:`lu`'s factors and their :func:`pattern`, ``b`` in place:
    every row's products summed in ascending column order, the zeros skipped (the
    same numbers as the dense substitution, but for the sign of a zero)."""
    for k in range(s):
        p = piv[k]
        if p != k:
            b[k], b[p] = b[p], b[k]
    for k in range(s):
        acc = b[k]
        for t in range(ptr[k], ptr[k + 1]):
            c = col[t]
            acc -= r[k * s + c] * b[c]
        b[k] = acc
    for k in range(s - 1, -1, -1):
        acc = b[k]
        for t in range(ptr[s + k], ptr[s + k + 1]):
            c = col[t]
            acc -= r[k * s + c] * b[c]
        b[k] = acc / r[k * s + k]


@jit
def cholesky(r: npt.NDArray, s: int, piv: npt.NDArray, tolerance: float) -> int:
    """Cholesky factor ``L`` (lower, in place) of the ``s x s`` row-major positive
    semidefinite matrix in ``r`` with diagonal pivoting (``piv``: the rows in pivot
    order), stopped where the largest remaining diagonal entry is below
    ``tolerance`` times the largest one; its rank, so found."""
    scale = 0.0
    for k in range(s):
        piv[k] = k
        scale = max(scale, r[k * s + k])
    tiny = tolerance * scale
    for k in range(s):
        p, best = k, r[k * s + k]
        for j in range(k + 1, s):
            if r[j * s + j] > best:
                p, best = j, r[j * s + j]
        if best <= tiny:
            return k
        if p != k:  # swap rows and columns k and p
            piv[k], piv[p] = piv[p], piv[k]
            for c in range(s):
                r[k * s + c], r[p * s + c] = r[p * s + c], r[k * s + c]
            for c in range(s):
                r[c * s + k], r[c * s + p] = r[c * s + p], r[c * s + k]
        root = np.sqrt(r[k * s + k])
        r[k * s + k] = root
        for row in range(k + 1, s):
            r[row * s + k] /= root
        for col in range(k + 1, s):  # the trailing matrix, both triangles
            v = r[col * s + k]
            if v != 0.0:
                for row in range(k + 1, s):
                    r[row * s + col] -= r[row * s + k] * v
    return s


@jit
def cholesky_solve(
    r: npt.NDArray,
    s: int,
    piv: npt.NDArray,
    rank: int,
    ptr: npt.NDArray,
    col: npt.NDArray,
    b: npt.NDArray,
) -> None:
    """``b`` becomes ``x`` with ``-S x = b`` over the ``rank`` pivot rows of
    :func:`cholesky`'s factors (``R = -S``) and their :func:`pattern` (transposed), 0 on
    the others (zeros skipped as in :func:`lu_solve`)."""
    x = np.empty(rank)
    for k in range(rank):
        acc = -b[piv[k]]
        for t in range(ptr[k], ptr[k + 1]):
            c = col[t]
            acc -= r[k * s + c] * x[c]
        x[k] = acc / r[k * s + k]
    for k in range(rank - 1, -1, -1):
        acc = x[k]
        for t in range(ptr[s + k], ptr[s + k + 1]):
            c = col[t]
            acc -= r[c * s + k] * x[c]
        x[k] = acc / r[k * s + k]
    for k in range(s):
        b[k] = 0.0
    for k in range(rank):
        b[piv[k]] = x[k]
