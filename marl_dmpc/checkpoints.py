"""Resumable training: where a run is, what it must remember, and when to save it.

A training run can be saved and continued only between two steps at which no solution
is in flight: Q(s, a) is read off V(s)'s solution when no update came between them (see
:mod:`marl_dmpc.learning`), so a checkpoint is taken right after an update or between
episodes (in example 1, every other step; in the power system, at an episode's end).
What is saved is plain data (:mod:`marl_dmpc.results`): the learner's parameters,
optimizer, exploration, replay memory, update counter, the warm starts of its solvers
and its records, the env's state and every random generator's state. A solver's memory
of its earlier calls cannot be saved (qpOASES hot-starts each call from the previous one,
inside CasADi), so the learners keep their answers from depending on it: the distributed
learner's local QPs call a new solver instance whenever they call one
(:class:`~marl_dmpc.qp.FreshConic`), and the centralized learner rebuilds its solvers
after every scheduled checkpoint, as a resumed run starts them. A run resumed from a
scheduled checkpoint therefore ends with the uninterrupted run's result, bit for bit; a
centralized run resumed from a Ctrl-C checkpoint (between the scheduled ones) continues
it up to the solvers' round-off.

:class:`Position` is where the loop is; :class:`Checkpointer` decides when to save (every
``every`` steps or episodes, and once more when the user presses Ctrl-C) and saves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

#: Units of ``--checkpoint-every``.
UNITS = ("steps", "episodes")
#: The version of the checkpoint layout; a checkpoint of another version is refused.
CHECKPOINT_FORMAT = 1
#: The signals that ask a run to stop at its next checkpoint boundary.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(KeyboardInterrupt):
    """Raised by :class:`Checkpointer` after saving, when the run was asked to stop
    (Ctrl-C or SIGTERM)."""


class CheckpointError(ValueError):
    """A checkpoint file does not hold what a checkpoint holds; the message is one line."""


def config_fingerprint(config: Any) -> str:
    """A short hash of a config dataclass's values (a checkpoint's header records it)."""
    text = json.dumps(dataclasses.asdict(config), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _nonnegative_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0


def validate_checkpoint(data: Mapping[str, Any], example: str) -> None:
    """Check a loaded checkpoint file's header and the layout of what it saved.

    Raises
    ------
    CheckpointError
        Naming the first thing that is wrong.
    """
    if data.get("kind") != "checkpoint":
        raise CheckpointError(f"not a checkpoint (its kind is {data.get('kind')!r})")
    if data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint format {data.get('format')!r}; this version reads {CHECKPOINT_FORMAT}"
        )
    if data.get("example") != example:
        raise CheckpointError(f"a checkpoint of {data.get('example')!r}, not {example!r}")
    required = {
        "config": dict,
        "fingerprint": str,
        "out": str,
        "steps_completed": int,
        "wall_time_s": float,
        "training": dict,
    }
    for key, kind in required.items():
        if key not in data:
            raise CheckpointError(f"it lacks {key!r}")
        value = data[key]
        if kind is int and not _nonnegative_int(value):
            raise CheckpointError(f"{key} must be an integer >= 0; got {value!r}")
        if kind is float and not (isinstance(value, int | float) and math.isfinite(value)):
            raise CheckpointError(f"{key} must be a finite number; got {value!r}")
        if kind in (dict, str) and not isinstance(value, kind):
            raise CheckpointError(f"{key} must be a {kind.__name__}")
    training = data["training"]
    for key in ("position", "rng", "env", "learner"):
        if not isinstance(training.get(key), dict):
            raise CheckpointError(f"training state lacks {key!r}")
    position = training["position"]
    for key in ("episode", "timestep", "steps"):
        if not _nonnegative_int(position.get(key)):
            raise CheckpointError(f"position {key} must be an integer >= 0")
    if position["steps"] != data["steps_completed"]:
        raise CheckpointError("its step counts disagree")
    learner = training["learner"]
    for key in ("parameters", "optimizers", "exploration", "experience", "log"):
        if key not in learner:
            raise CheckpointError(f"learner state lacks {key!r}")


def ignore_signals(*signals: int) -> None:
    """Ignore ``signals`` in this process (the initializer of worker processes that must
    survive a Ctrl-C or SIGTERM meant for their parent or for the run they are in)."""
    for sig in signals:
        signal.signal(sig, signal.SIG_IGN)


class StopRequest:
    """A request to stop made by a signal, to be acted upon at a safe point.

    Within :meth:`catching`, the first of ``signals`` sets :attr:`requested` (and
    :attr:`signal`) instead of interrupting the program; a second one raises
    :class:`KeyboardInterrupt` at once. A safe point matters: a KeyboardInterrupt raised
    while CasADi's IPOPT runs is caught by CasADi, which ends that solve early (a wrong
    answer) and carries on.

    Parameters
    ----------
    signals : tuple of int, optional
        The signals caught (:data:`STOP_SIGNALS` by default).
    """

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.requested = False
        self.signal: int | None = None

    @contextmanager
    def catching(self) -> Iterator[None]:
        """Catch the signals within the block (only in the main thread; elsewhere they are
        left alone)."""

        def request_stop(signum: int, frame: Any) -> None:
            if self.requested:  # the second signal: stop now
                raise KeyboardInterrupt
            self.requested = True
            self.signal = signum

        try:
            previous = {sig: signal.signal(sig, request_stop) for sig in self.signals}
        except ValueError:  # not the main thread
            yield
            return
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass
class Position:
    """Where a training loop is.

    Attributes
    ----------
    episode : int
        The current episode (the number of finished episodes).
    timestep : int
        Steps taken in the current episode.
    state, action : ndarray or None
        The current state and the action V(state) chose; ``None`` between episodes.
    total : float
        The current episode's cost so far.
    returns : list of float
        The total cost of every finished episode.
    steps : int
        Steps taken in all episodes.
    """

    episode: int = 0
    timestep: int = 0
    state: npt.NDArray[np.floating] | None = None
    action: npt.NDArray[np.floating] | None = None
    total: float = 0.0
    returns: list[float] = field(default_factory=list)
    steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("state", "action"):  # e.g. mpcrl's actions are CasADi matrices
            if data[key] is not None:
                data[key] = np.array(data[key], dtype=float)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        position = cls(**data)
        position.returns = [float(r) for r in position.returns]
        if position.state is not None:
            position.state = np.asarray(position.state, dtype=float)
            position.action = np.asarray(position.action, dtype=float)
        return position


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """The state of a NumPy generator, as plain data."""
    return dict(rng.bit_generator.state)


def set_generator_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Put ``rng`` back into ``state`` (from :func:`generator_state`)."""
    if state["bit_generator"] != type(rng.bit_generator).__name__:
        raise ValueError(f"a {state['bit_generator']} state cannot seed {rng.bit_generator}")
    rng.bit_generator.state = state


def generator_from_state(state: dict[str, Any]) -> np.random.Generator:
    """A new generator in ``state`` (from :func:`generator_state`)."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


class Checkpointer:
    """Saves a running training's state every ``every`` steps or episodes.

    The loop calls :meth:`at_boundary` wherever it could be saved; the checkpoint is
    taken at the first such point at or after each multiple of ``every`` (``every = 0``:
    never, except on Ctrl-C). Inside :meth:`catching_interrupts`, the first Ctrl-C asks
    the loop to stop at its next such point, where it saves and raises
    :class:`TrainingStopped`; a second one stops at once.

    Parameters
    ----------
    every : int
        Checkpoint period; 0 for none.
    unit : {"steps", "episodes"}
        What ``every`` counts.
    save : callable
        Called with the loop's state (a dict of plain data) to write it.
    done : int, optional
        Steps or episodes already done (when resuming).
    """

    def __init__(
        self,
        every: int,
        unit: str,
        save: Callable[[dict[str, Any]], None],
        done: int = 0,
    ) -> None:
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}; got {unit!r}")
        if every < 0:
            raise ValueError(f"the checkpoint period must be >= 0; got {every}")
        self.every = every
        self.unit = unit
        self._save = save
        self._next = (done // every + 1) * every if every else None
        self.stop = StopRequest()
        self.saved = 0

    def at_boundary(self, position: Position, state: Callable[[], dict[str, Any]]) -> bool:
        """Save ``state()`` if a checkpoint is due at ``position``; then, if the user asked
        to stop, raise :class:`TrainingStopped`. Returns whether it saved."""
        done = position.steps if self.unit == "steps" else position.episode
        due = self._next is not None and done >= self._next
        if due or self.stop_requested:
            self.save_now(state)
            if self.every:
                self._next = (done // self.every + 1) * self.every
        if self.stop_requested:
            raise TrainingStopped("stopped by the user after saving a checkpoint")
        return due

    def save_now(self, state: Callable[[], dict[str, Any]]) -> None:
        """Save ``state()`` whether or not a checkpoint is due (e.g. when the run has
        diverged; the state may then hold a solution in flight, which a resumed run
        solves again)."""
        self._save(state())
        self.saved += 1

    @property
    def stop_requested(self) -> bool:
        """Whether a signal asked the run to stop."""
        return self.stop.requested

    @property
    def stop_signal(self) -> int | None:
        """The signal that asked the run to stop, if one did."""
        return self.stop.signal

    def catching_interrupts(self) -> AbstractContextManager[None]:
        """Turn the first Ctrl-C (SIGINT) or SIGTERM into a request to stop at the next
        checkpoint boundary (:attr:`stop_signal` says which); a second one stops at once."""
        return self.stop.catching()
