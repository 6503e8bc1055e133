"""Command-line plumbing shared by the training scripts.

* :class:`OneLineArgumentParser` reports a bad flag value in one line and exits with 2;
* validators for the common flag types, and :func:`check_writable` for output paths;
* :func:`quiet_solvers` keeps solver banners (qpOASES prints its licence at every solver
  construction) out of the terminal;
* :class:`TrainingProgress` is the progress bar with the running cost and TD error;
* :func:`fail` ends a run with a one-line message.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from tqdm import tqdm


class OneLineArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` to stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer > 0."""
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def nonnegative_float(text: str) -> float:
    """A finite float >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0."""
    value = nonnegative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got 0")
    return value


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Make sure a result can be written at ``path`` (its folder is created if needed).

    Raises
    ------
    ValueError
        With a one-line reason, if it cannot.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out {path} is a directory; give a file name")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the folder of --out {path}: {err.strerror}") from None
    try:  # the only reliable test (root passes os.access on read-only mounts)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write --out {path}: {err.strerror}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"cannot write --out {path}: permission denied")
    return path


@contextlib.contextmanager
def quiet_solvers() -> Iterator[None]:
    """Discard what is printed to ``sys.stdout`` inside the block.

    CasADi routes its plugins' output through ``sys.stdout``; qpOASES prints its licence
    at every solver construction and first solve. Scripts build and train inside this
    block (their progress bar writes to stderr) and print their summary after it.
    """
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


class TrainingProgress:
    """A progress bar over training steps showing the running mean cost and TD error.

    Parameters
    ----------
    total : int
        Number of steps.
    cost_of_last_step : callable
        Returns the cost of the step just taken.
    enabled : bool
        ``False`` shows nothing.
    """

    def __init__(
        self, total: int, cost_of_last_step: Callable[[], float], enabled: bool = True
    ) -> None:
        self._bar = tqdm(
            total=total, unit="step", disable=not enabled, dynamic_ncols=True, mininterval=0.5
        )
        self._cost = cost_of_last_step
        self._cost_sum = 0.0
        self._abs_td_sum = 0.0
        self._n = 0

    def __call__(self, td_error: float) -> None:
        self._n += 1
        self._cost_sum += self._cost()
        self._abs_td_sum += abs(td_error)
        self._bar.set_postfix(
            cost=f"{self._cost_sum / self._n:.3g}",
            td=f"{td_error:+.3g}",
            mean_abs_td=f"{self._abs_td_sum / self._n:.3g}",
            refresh=False,
        )
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
