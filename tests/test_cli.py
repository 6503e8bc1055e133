"""The training scripts: bad input ends in one line and exit code 2; a short run writes a
complete result file."""

import subprocess
import sys

import numpy as np
import pytest

from marl_dmpc.results import load_result

from .helpers import ROOT

SCRIPT = str(ROOT / "example_1" / "example_1.py")


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--steps", "-5"], "--steps"),
        (["--admm-iters", "0"], "--admm-iters"),
        (["--solver", "nosuch"], "invalid choice"),
        (["--out", "/proc/no/such/result.pkl"], "cannot"),
        (["--admm-tol", "nan"], "--admm-tol"),
        (["--admm-dual-tol", "-1"], "--admm-dual-tol"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(args, fragment):
    proc = run(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_unwritable_out_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    proc = run("--out", str(folder / "r.pkl"))
    folder.chmod(0o700)
    if proc.returncode != 2:  # root may write anyway
        pytest.skip("running as a user who can write read-only folders")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_works():
    proc = run("--help")
    assert proc.returncode == 0 and "--check-centralized" in proc.stdout


def test_short_distributed_run_writes_a_result(tmp_path):
    out = tmp_path / "r.pkl"
    proc = run(
        "--steps",
        "6",
        "--out",
        str(out),
        "--no-progress",
        "--check-centralized",
        "--admm-tol",
        "1e-8",
        "--admm-iters",
        "500",
    )
    assert proc.returncode == 0, proc.stderr
    assert "qpOASES" not in proc.stdout  # solver banners are kept out of the terminal
    r = load_result(out)
    assert r["status"] == "completed" and r["mode"] == "distributed"
    assert r["states"].shape == (7, 6) and r["actions"].shape == (6, 3)
    assert r["costs"].shape == (6,) and r["td_errors"].shape == (6,)
    assert r["params"]["A_c_1_0"].shape == (4, 2, 2)  # 3 updates + the initial value
    # V at s_0 and after every step, Q only at the 2 steps that follow an update (3 and 5)
    assert r["admm_iterations"].shape == (9,)
    assert r["config"]["steps"] == 6 and r["config"]["check_centralized"] is True
    check = r["centralized_check"]
    assert len(check["q_error"]) == 2 and max(check["q_error"]) < 1e-6
    assert len(check["gradient_error"]) == 9 and max(check["gradient_error"]) < 1e-4
    assert set(r["versions"]) >= {"casadi", "csnlp", "mpcrl", "numpy"}
    assert r["wall_time_s"] > 0 and np.isfinite(r["ms_per_step"])


POWER_SCRIPT = str(ROOT / "power_system" / "q_learning_power.py")


def test_power_script_bad_input_and_a_one_episode_run(tmp_path):
    bad = subprocess.run(
        [sys.executable, POWER_SCRIPT, "--episodes", "0"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    out = tmp_path / "p.pkl"
    proc = subprocess.run(
        [sys.executable, POWER_SCRIPT, "--episodes", "1", "--no-progress", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    r = load_result(out)
    assert r["status"] == "completed" and r["steps_completed"] == 100
    assert r["states"].shape == (101, 16) and r["actions"].shape == (100, 4)
    assert r["episode_costs"].shape == (1,) and r["episode_td_errors"].shape == (1,)
    assert r["episode_costs"][0] == pytest.approx(r["costs"].sum())
    assert r["params"]["P_tie_2_3"].shape == (2, 1) and r["params"]["Q_x_2"].shape == (2, 4, 4)
    assert r["config"]["episodes"] == 1 and r["config"]["update_hook"] == "on_episode_end"
