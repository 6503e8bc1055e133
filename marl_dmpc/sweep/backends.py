"""Where a sweep's runs go: a local process pool, or Ray.

Both run :func:`~marl_dmpc.sweep.task.run_task` on plain-data tasks and hand back
plain-data results, so the backend changes no number of a run. The driver submits every
run at once and collects them as they finish (:meth:`Backend.wait`); the engine decides
where and when each runs.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
from multiprocessing import active_children, get_context
from typing import Any, Protocol

from ..checkpoints import STOP_SIGNALS, ignore_signals
from .task import run_task

#: How long the driver waits for a run before it looks for a stop request again (s).
POLL_S = 0.5


class Backend(Protocol):
    """What the sweep's driver needs of an engine."""

    def submit(self, task: dict[str, Any]) -> Any:
        """Start ``task``; a handle."""

    def wait(self, handles: list[Any]) -> tuple[list[Any], list[Any]]:
        """Block until at least one of ``handles`` is done, or :data:`POLL_S` passed:
        (done, pending)."""

    def result(self, handle: Any) -> dict[str, Any]:
        """The result of a done task (its exception re-raised)."""

    def stop(self, pending: list[Any], forward: bool) -> None:
        """Drop the tasks not started; with ``forward``, ask the running ones to stop at
        their next checkpoint boundary (a terminal's Ctrl-C reaches them by itself)."""

    def close(self) -> None:
        """Release the engine."""


class LocalBackend:
    """A pool of ``workers`` processes on this machine (spawned; each run pins BLAS to one
    thread). Between runs a worker ignores Ctrl-C and SIGTERM (a run catches them itself
    and stops at its next checkpoint boundary), so the pool survives them."""

    def __init__(self, workers: int) -> None:
        self.pool = concurrent.futures.ProcessPoolExecutor(
            workers,
            mp_context=get_context("spawn"),
            initializer=ignore_signals,
            initargs=STOP_SIGNALS,
        )

    def submit(self, task: dict[str, Any]) -> concurrent.futures.Future:
        return self.pool.submit(run_task, task)

    def wait(self, handles: list[Any]) -> tuple[list[Any], list[Any]]:
        done, pending = concurrent.futures.wait(
            handles, timeout=POLL_S, return_when=concurrent.futures.FIRST_COMPLETED
        )
        return list(done), list(pending)

    def result(self, handle: concurrent.futures.Future) -> dict[str, Any]:
        return handle.result()

    def stop(self, pending: list[Any], forward: bool) -> None:
        for future in pending:
            future.cancel()  # only those not started
        if forward:
            for child in active_children():  # the workers
                os.kill(child.pid, signal.SIGTERM)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayBackend:
    """Ray tasks of one CPU each: a local Ray instance, or the cluster at ``address``."""

    def __init__(self, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError("--backend ray needs ray (see requirements.txt)") from None
        self.ray = ray
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_task)

    def submit(self, task: dict[str, Any]) -> Any:
        return self._remote.remote(task)

    def wait(self, handles: list[Any]) -> tuple[list[Any], list[Any]]:
        return self.ray.wait(handles, num_returns=1, timeout=POLL_S)

    def result(self, handle: Any) -> dict[str, Any]:
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayTaskError as err:
            raise err.as_instanceof_cause() from None

    def stop(self, pending: list[Any], forward: bool) -> None:
        for ref in pending:  # running tasks keep their last scheduled checkpoint
            self.ray.cancel(ref)

    def close(self) -> None:
        self.ray.shutdown()
