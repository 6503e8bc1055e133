"""Test helpers."""

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def fails_with(main, argv, capsys, code: int = 2) -> str:
    """Run ``main(argv)``, expect exit code ``code`` and one line on stderr without a
    traceback; return that line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def as_from_a_terminal() -> None:
    """``preexec_fn`` of a command that a test interrupts with SIGINT as a terminal's
    Ctrl-C would: the default disposition, which Python turns into KeyboardInterrupt. A
    process started in the background (``nohup``, ``&`` without job control) inherits
    SIGINT ignored, and so would the command."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def ctrl_c_at_step(step: int) -> Iterator[None]:
    """Within the block, example 1's plant raises SIGINT (as Ctrl-C does) in its
    ``step``-th step (counted from 1)."""
    from reproduction.example_1.env import CoupledLinearSystemsEnv

    original, calls = CoupledLinearSystemsEnv.step, []

    def interrupted_step(self, action):
        calls.append(1)
        if len(calls) == step:
            signal.raise_signal(signal.SIGINT)
        return original(self, action)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CoupledLinearSystemsEnv, "step", interrupted_step)
        yield
