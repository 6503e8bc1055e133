"""Resumable training: a run killed (or stopped with Ctrl-C) after a checkpoint and
resumed completes with the uninterrupted run's result, bit for bit: parameter histories,
TD errors, states, actions and costs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from marl_dmpc.results import load_result

from .helpers import ctrl_c_at_step

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "example_1": ROOT / "example_1" / "example_1.py",
    "power_system": ROOT / "power_system" / "q_learning_power.py",
}


def _command(example: str, length: list[str], *flags: str) -> list[str]:
    return [sys.executable, str(SCRIPTS[example]), *length, "--no-progress", *flags]


def _interrupt_after_checkpoint(
    command: list[str], checkpoint: Path, sig: int, delay: float | None = None
) -> int:
    """Start ``command``, send ``sig`` as soon as ``checkpoint`` exists (or ``delay``
    seconds after training started), return the exit code."""
    stdout = subprocess.DEVNULL if delay is None else subprocess.PIPE
    proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True)
    try:
        if delay is not None:
            assert "->" in proc.stdout.readline()  # the MPCs are built; training under way
        deadline = time.monotonic() + (300 if delay is None else delay)
        while delay is not None or not checkpoint.exists():
            past = time.monotonic() > deadline  # read once: the two checks must agree
            if delay is not None and past:
                break
            if proc.poll() is not None:
                pytest.fail(f"the run ended before its first checkpoint: {proc.stderr.read()}")
            if past:
                pytest.fail("no checkpoint within 300 s")
            time.sleep(0.002)
        proc.send_signal(sig)
        return proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()


def _assert_same_run(resumed: dict, full: dict, saved: dict) -> None:
    """``resumed`` (from the checkpoint ``saved``) is ``full``, bit for bit."""
    assert resumed["status"] == full["status"] == "completed"
    assert resumed["steps_completed"] == full["steps_completed"] > saved["steps_completed"]
    assert resumed["updates"] == full["updates"]
    assert resumed["params"].keys() == full["params"].keys()
    for name, history in full["params"].items():
        np.testing.assert_array_equal(resumed["params"][name], history, err_msg=name)
    for field in ("td_errors", "states", "actions", "costs"):
        np.testing.assert_array_equal(resumed[field], full[field], err_msg=field)
    assert resumed["wall_time_s"] >= saved["wall_time_s"]
    assert len(resumed["step_times_s"]) == resumed["steps_completed"]


#: case: example, length, mode flags, --checkpoint-every of the interrupted run and of
#: the uninterrupted one, signal. Both learners' QP solvers answer from their data and
#: their last active set alone (which a checkpoint saves), so a result does not depend
#: on where checkpoints fall.
CASES = {
    "example_1 distributed, killed": (
        "example_1",
        ["--steps", "2000"],
        [],
        ("10", "0"),
        signal.SIGKILL,
    ),
    "example_1 distributed, Ctrl-C": (
        "example_1",
        ["--steps", "5000"],
        [],
        ("0", "0"),
        signal.SIGINT,
    ),
    "example_1 centralized, killed": (
        "example_1",
        ["--steps", "300"],
        ["--centralized"],
        ("10", "0"),
        signal.SIGKILL,
    ),
    "example_1 distributed, newton, killed": (
        "example_1",
        ["--steps", "300"],
        ["--optimizer", "newton", "--learning-rate", "1e-3"],
        ("10", "0"),
        signal.SIGKILL,
    ),
    "example_1 centralized, newton, killed": (
        "example_1",
        ["--steps", "300"],
        ["--centralized", "--optimizer", "newton", "--learning-rate", "1e-3"],
        ("10", "0"),
        signal.SIGKILL,
    ),
    "power_system distributed, killed": (
        "power_system",
        ["--episodes", "3"],
        [],
        ("1", "0"),
        signal.SIGKILL,
    ),
    "power_system centralized, killed": (
        "power_system",
        ["--episodes", "3"],
        ["--centralized"],
        ("1", "0"),
        signal.SIGKILL,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_interrupted_run_resumes(tmp_path, case):
    example, length, mode, (every, full_every), sig = CASES[case]
    full_out = tmp_path / "full.pkl"
    subprocess.run(
        _command(example, length, *mode, "--out", str(full_out), "--checkpoint-every", full_every),
        check=True,
        capture_output=True,
    )
    out, checkpoint = tmp_path / "run.pkl", tmp_path / "run.checkpoint.pkl"
    command = _command(example, length, *mode, "--out", str(out), "--checkpoint-every", every)
    if sig == signal.SIGKILL:
        code = _interrupt_after_checkpoint(command, checkpoint, sig)
        assert code == -signal.SIGKILL
        assert not out.exists()
    else:  # Ctrl-C once the run is under way: a checkpoint and the partial result
        code = _interrupt_after_checkpoint(command, tmp_path / "never", sig, delay=2.0)
        assert code == 130
        partial = load_result(out)
        assert partial["status"] == "interrupted" and 0 < partial["steps_completed"] < 5000
    saved = load_result(checkpoint)
    assert saved["kind"] == "checkpoint" and 0 < saved["steps_completed"]
    proc = subprocess.run(
        _command(example, [], "--resume", str(checkpoint)), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert f"resumed at step {saved['steps_completed']}" in proc.stdout
    _assert_same_run(load_result(out), load_result(full_out), saved)
    assert not checkpoint.exists()  # removed once the run completed


def test_resume_refuses_other_settings_and_files(tmp_path):
    result = tmp_path / "r.pkl"
    checkpoint = tmp_path / "c.pkl"
    subprocess.run(
        _command("example_1", ["--steps", "4"], "--out", str(result)),
        check=True,
        capture_output=True,
    )
    proc = subprocess.run(
        _command("example_1", [], "--resume", str(result)), capture_output=True, text=True
    )
    assert proc.returncode == 2 and "not a checkpoint" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    code = _interrupt_after_checkpoint(
        _command(
            "example_1",
            ["--steps", "300"],
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "r2.pkl"),
            "--checkpoint-every",
            "5",
        ),
        checkpoint,
        signal.SIGKILL,
    )
    assert code == -signal.SIGKILL
    proc = subprocess.run(
        _command("example_1", [], "--resume", str(checkpoint), "--seed", "5"),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--seed 5 differs from the checkpoint's 1" in proc.stderr
    proc = subprocess.run(
        _command("example_1", [], "--resume", str(checkpoint), "--checkpoint-every", "7"),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--checkpoint-every 7 differs from the checkpoint's 5" in (
        proc.stderr
    )
    proc = subprocess.run(
        _command("power_system", [], "--resume", str(checkpoint)), capture_output=True, text=True
    )
    assert proc.returncode == 2 and "checkpoint of 'example_1'" in proc.stderr


def test_ctrl_c_and_resume_in_process(tmp_path, capsys):
    """The same, in this process (so coverage sees the checkpoint and resume code): a
    SIGINT raised during step 13 stops the run at its next checkpoint boundary, with a
    checkpoint and a partial result; ``--resume`` completes it to the uninterrupted run."""
    from reproduction.example_1 import example_1

    flags = ["--steps", "30", "--no-progress", "--checkpoint-every", "0"]
    full_out, out, checkpoint = tmp_path / "full.pkl", tmp_path / "r.pkl", tmp_path / "r.ck.pkl"
    assert example_1.main([*flags, "--out", str(full_out)]) == 0
    with ctrl_c_at_step(13):
        code = example_1.main([*flags, "--out", str(out), "--checkpoint", str(checkpoint)])
    assert code == 130 and checkpoint.exists()
    assert f"resume with --resume {checkpoint}" in capsys.readouterr().out
    partial, saved = load_result(out), load_result(checkpoint)
    assert partial["status"] == "interrupted" and saved["steps_completed"] == 14  # after an update
    assert partial["steps_completed"] == 14
    err = "differs from the checkpoint's"
    with pytest.raises(SystemExit):
        example_1.main(["--resume", str(checkpoint), "--rho", "1.0"])
    assert err in capsys.readouterr().err
    assert example_1.main(["--resume", str(checkpoint), "--no-progress"]) == 0
    assert not checkpoint.exists()
    _assert_same_run(load_result(out), load_result(full_out), saved)


def test_killed_at_random_moments_and_resumed_each_time(tmp_path):
    """Fault injection: SIGKILL at three random moments of training (drawn from a fixed
    seed), each time resumed from whatever checkpoint is on disk (or started again if
    none is yet); the run that finally completes is the uninterrupted run, bit for bit."""
    length, every = ["--steps", "2000"], ["--checkpoint-every", "4"]
    full_out = tmp_path / "full.pkl"
    subprocess.run(
        _command("example_1", length, "--out", str(full_out), "--checkpoint-every", "0"),
        check=True,
        capture_output=True,
    )
    out, checkpoint = tmp_path / "run.pkl", tmp_path / "run.checkpoint.pkl"
    start = _command("example_1", length, *every, "--out", str(out))
    resume = _command("example_1", [], "--resume", str(checkpoint))
    killed_at = []
    for delay in np.random.default_rng(18).uniform(0.2, 1.2, size=3):
        proc = subprocess.Popen(
            resume if checkpoint.exists() else start, stdout=subprocess.PIPE, text=True
        )
        try:
            assert "->" in proc.stdout.readline()  # built; training under way
            time.sleep(delay)
            proc.kill()
            assert proc.wait(timeout=60) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
        assert not out.exists()  # SIGKILL leaves no result, only the last checkpoint
        killed_at.append(load_result(checkpoint)["steps_completed"] if checkpoint.exists() else 0)
    assert killed_at == sorted(killed_at) and killed_at[-1] > 0, killed_at
    saved = load_result(checkpoint)
    proc = subprocess.run(resume, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    _assert_same_run(load_result(out), load_result(full_out), saved)
    assert not checkpoint.exists()
