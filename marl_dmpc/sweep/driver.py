"""The sweep's driver: what is left to run, the backend, the results as they arrive.

A run's state is read from its files: a completed, diverged or failed result is kept (a failed run
would fail again), an interrupted result or a checkpoint is resumed, nothing is started.
Results come back from the backend as plain data and are written here (atomically,
replacing only the run's own partial result); a completed run's checkpoint is then
deleted if its header says it is the run's. Ctrl-C or SIGTERM stops the sweep: runs not
started are dropped, running ones stop at their next checkpoint boundary (a pool's
workers; Ray tasks are cancelled and keep their last scheduled checkpoint).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import signal
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..checkpoints import StopRequest
from ..files import Outputs
from ..results import ResultFileError, load_result, save_result, versions
from ..runs import is_partial_result
from .backends import Backend
from .plan import PlannedRun, load_example
from .task import own_checkpoint

#: How a run can end for good (a rerun of the sweep keeps its result).
FINAL = ("completed", "diverged", "failed")


def run_state(folder: Path, run: PlannedRun) -> str:
    """``"completed"``, ``"diverged"``, ``"failed"`` (kept as they are) or ``"todo"`` (new
    or to resume)."""
    path = folder / run.result
    if not path.exists():
        return "todo"
    try:
        result = load_result(path)
    except ResultFileError:
        return "todo"
    if result.get("config") != run.config:
        return "todo"
    status = result.get("status")
    return status if status in FINAL else "todo"


def failure_result(example: str, run: PlannedRun, err: BaseException) -> dict[str, Any]:
    """The result of a run whose task raised ``err``."""
    return {
        "kind": "training",
        "example": example,
        "status": "failed",
        "message": f"{type(err).__name__}: {err}".splitlines()[0],
        "config": run.config,
        "steps_completed": 0,
        "versions": versions(),
    }


@dataclasses.dataclass
class SweepOutcome:
    """Counts of a sweep's runs when the driver ended, and the signal that stopped it."""

    completed: int = 0
    diverged: int = 0
    failed: int = 0
    left: int = 0
    stop_signal: int | None = None

    @property
    def finished(self) -> int:
        """Runs that ended for good."""
        return self.completed + self.diverged + self.failed

    @property
    def exit_code(self) -> int:
        if self.stop_signal is not None:
            return 128 + self.stop_signal
        return 1 if self.failed else 0


def run_sweep(
    folder: Path,
    manifest: dict[str, Any],
    backend: Backend,
    progress: bool = True,
    eval_seed: int = 0,
) -> SweepOutcome:
    """Run what is left of the sweep in ``folder`` (its ``manifest``) on ``backend``."""
    example = manifest["example"]
    load_example(example)  # a clear error here rather than in every task
    runs = manifest["runs"]
    states = [run_state(folder, run) for run in runs]
    outcome = SweepOutcome(**{status: states.count(status) for status in FINAL})
    todo = [run for run, state in zip(runs, states, strict=True) if state == "todo"]
    outputs = Outputs()
    bar = tqdm(
        total=len(states),
        initial=outcome.finished,
        disable=not progress,
        unit="run",
        dynamic_ncols=True,
    )
    stop = StopRequest()
    with stop.catching():
        handles = {
            backend.submit(
                {
                    "example": example,
                    "config": run.config,
                    "result": str(folder / run.result),
                    "checkpoint": str(folder / run.checkpoint),
                    "eval_episodes": manifest["eval_episodes"],
                    "eval_seed": eval_seed,
                }
            ): run
            for run in todo
        }
        pending, stopping = list(handles), False
        while pending:
            bar.set_postfix_str(
                f"completed {outcome.completed}, diverged {outcome.diverged}, "
                f"failed {outcome.failed}, queued or running {len(pending)}"
            )
            done, pending = backend.wait(pending)
            if stop.requested and not stopping:
                stopping = True
                backend.stop(pending, forward=stop.signal == signal.SIGTERM)
            for handle in done:
                run = handles[handle]
                try:
                    result = backend.result(handle)
                except concurrent.futures.CancelledError:
                    continue
                except Exception as err:  # noqa: BLE001 - recorded, the others go on
                    if stopping and "cancel" in type(err).__name__.lower():
                        continue
                    result = failure_result(example, run, err)
                _write(folder, run, result, outputs, example)
                status = result["status"]
                if status in FINAL:
                    setattr(outcome, status, getattr(outcome, status) + 1)
                if status in ("diverged", "failed"):
                    tqdm.write(f"{run.label}, seed {run.seed} {status}: {result['message']}")
                bar.update(status in FINAL)
    bar.close()
    outcome.left = len(states) - outcome.finished
    outcome.stop_signal = stop.signal if stop.requested else None
    return outcome


def _write(
    folder: Path, run: PlannedRun, result: dict[str, Any], outputs: Outputs, example: str
) -> None:
    """Write a run's result; delete a completed run's own checkpoint."""
    path = folder / run.result
    outputs.claim(path, "result", may_replace=lambda p: is_partial_result(p, run.config))
    save_result(path, result, outputs)
    checkpoint = folder / run.checkpoint
    if result["status"] == "completed" and checkpoint.exists():
        config = load_example(example).config_type(**run.config)
        outputs.claim(
            checkpoint,
            "checkpoint",
            may_replace=lambda p: own_checkpoint(p, example, config) is not None,
        )
        outputs.remove(checkpoint)


def summary(outcome: SweepOutcome, folder: Path) -> str:
    """The last line a sweep prints."""
    text = (
        f"{outcome.completed} completed, {outcome.diverged} diverged, {outcome.failed} failed, "
        f"{outcome.left} left"
    )
    if outcome.stop_signal is not None:
        text += f"; stopped: rerun the same command to continue (results in {folder})"
    return text
