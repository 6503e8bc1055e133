"""BLAS threads: off for this package's small dense linear algebra.

The local QPs' KKT systems have about a hundred rows. OpenBLAS splits products and
solves of that size over its threads, and the synchronisation then costs more than the
arithmetic: on a 2-core machine example 1's distributed training ran three times slower
with the default thread pool than with one thread. The learners run inside
:func:`single_threaded_blas`, which restores the previous limits on exit.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from threadpoolctl import threadpool_limits


def single_threaded_blas() -> AbstractContextManager:
    """A context in which the BLAS libraries loaded in this process use one thread."""
    return threadpool_limits(limits=1, user_api="blas")
