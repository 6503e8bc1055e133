"""The training scripts' command lines: flags generated from the config, bad input in one
line with exit code 2, settings from TOML and result files, and short runs (in-process,
so coverage sees the driver; the scripts themselves run in subprocesses once)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from marl_dmpc.cli import field_docs, flag_name
from marl_dmpc.results import load_result, save_result
from reproduction.example_1 import example_1
from reproduction.example_1.config import Example1Config
from reproduction.power_system import q_learning_power

from .helpers import ROOT, fails_with


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--steps", "-5"], "--steps"),
        (["--steps", "2.5"], "--steps"),
        (["--admm-iters", "0"], "--admm-iters"),
        (["--solver", "nosuch"], "invalid choice"),
        (["--out", "/proc/no/such/result.pkl"], "cannot"),
        (["--admm-tol", "nan"], "--admm-tol"),
        (["--admm-dual-tol", "-1"], "--admm-dual-tol"),
        (["--learning-rate", "abc"], "--learning-rate"),
        (["--rho", "0"], "--rho"),
        (["--epsilon", "1.5"], "--epsilon"),
        (["--replay-include-latest", "20"], "--replay-include-latest"),
        (["--centralized", "--check-centralized"], "distributed runs only"),
        (["--update-hook", "sometimes"], "invalid choice"),
    ],
)
def test_bad_input_gives_one_line_naming_the_flag(args, fragment, capsys):
    assert fragment in fails_with(example_1.main, args, capsys)


def test_unwritable_out(tmp_path, capsys):
    """A folder that is a file cannot hold a result, whoever runs the test."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "cannot" in fails_with(example_1.main, ["--out", str(blocker / "r.pkl")], capsys)


def test_every_config_field_is_a_flag_with_its_help_and_default(capsys):
    with pytest.raises(SystemExit):
        example_1.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    docs = field_docs(Example1Config)
    defaults = Example1Config()
    for name in (f.name for f in dataclasses.fields(Example1Config)):
        assert flag_name(name) in text, name
        assert docs.get(name), f"{name} has no entry in a docstring's Attributes section"
        assert f"(default: {getattr(defaults, name)})" in text, name
    for flag in ("--config", "--config-from", "--resume", "--out", "--no-centralized"):
        assert flag in text


@pytest.mark.parametrize(
    "command",
    [
        [str(ROOT / "example_1" / "example_1.py")],
        ["-m", "reproduction.example_1.example_1"],
        [str(ROOT / "power_system" / "q_learning_power.py")],
        ["-m", "reproduction.power_system.q_learning_power"],
    ],
)
def test_scripts_run_as_files_and_as_modules(command, tmp_path):
    """No path edits: both forms find the package and their example's modules, from any
    working directory."""
    proc = subprocess.run(
        [sys.executable, *command, "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "--rho" in proc.stdout and "--learning-rate" in proc.stdout


def _run(main, tmp_path, name, *args):
    out = tmp_path / f"{name}.pkl"
    assert main([*args, "--no-progress", "--out", str(out)]) == 0
    return load_result(out)


def test_short_distributed_run_writes_a_result(tmp_path, capsys):
    r = _run(
        example_1.main,
        tmp_path,
        "r",
        *("--steps", "6", "--check-centralized", "--admm-tol", "1e-8", "--admm-iters", "500"),
    )
    assert "qpOASES" not in capsys.readouterr().out  # solver banners stay out of the terminal
    assert r["status"] == "completed" and r["mode"] == "distributed"
    assert r["states"].shape == (7, 6) and r["actions"].shape == (6, 3)
    assert r["costs"].shape == (6,) and r["td_errors"].shape == (6,)
    assert r["params"]["A_c_1_0"].shape == (4, 2, 2)  # 3 updates + the initial value
    # V at s_0 and after every step, Q only at the 2 steps that follow an update (3 and 5)
    assert r["admm_iterations"].shape == (9,)
    assert r["config"]["steps"] == 6 and r["config"]["check_centralized"] is True
    assert r["config"]["admm_iters"] == 500 and r["config"]["admm_tol"] == 1e-8
    check = r["centralized_check"]
    assert len(check["q_error"]) == 2 and max(check["q_error"]) < 1e-6
    assert len(check["gradient_error"]) == 9 and max(check["gradient_error"]) < 1e-4
    assert set(r["versions"]) >= {"casadi", "csnlp", "mpcrl", "numpy"}
    assert r["wall_time_s"] > 0 and np.isfinite(r["ms_per_step"])


def test_rho_and_learning_rate_flags_change_the_run(tmp_path):
    base = _run(example_1.main, tmp_path, "base", "--steps", "8")
    rho = _run(example_1.main, tmp_path, "rho", "--steps", "8", "--rho", "2.0")
    lr = _run(example_1.main, tmp_path, "lr", "--steps", "2", "--learning-rate", "2e-4")
    assert rho["config"]["rho"] == 2.0 and lr["config"]["learning_rate"] == 2e-4
    # rho changes ADMM's path (its iterations), not the MPC's solution
    assert not np.array_equal(base["admm_iterations"], rho["admm_iterations"])
    np.testing.assert_allclose(base["params"]["b_0"], rho["params"]["b_0"], atol=1e-6)
    # the learning rate changes every update
    step_base = base["params"]["b_0"][1] - base["params"]["b_0"][0]
    step_lr = lr["params"]["b_0"][1] - lr["params"]["b_0"][0]
    np.testing.assert_allclose(step_lr, step_base * 2e-4 / 6e-5, rtol=1e-6)


def test_settings_from_toml_and_from_a_result_file(tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text("steps = 4\nrho = 1.5\nlearning_rate = 1e-4\nseed = 3\n")
    first = _run(example_1.main, tmp_path, "a", "--config", str(toml), "--learning-rate", "2e-4")
    assert first["config"]["steps"] == 4 and first["config"]["rho"] == 1.5
    assert first["config"]["seed"] == 3
    assert first["config"]["learning_rate"] == 2e-4  # the flag wins over the file
    repeat = _run(example_1.main, tmp_path, "b", "--config-from", str(tmp_path / "a.pkl"))
    assert repeat["config"] == first["config"]
    for key in ("states", "actions", "td_errors", "admm_iterations"):
        np.testing.assert_array_equal(repeat[key], first[key])
    for name, history in first["params"].items():
        np.testing.assert_array_equal(repeat["params"][name], history)
    # a [config] table is read too
    toml.write_text("[config]\nsteps = 2\n")
    assert _run(example_1.main, tmp_path, "c", "--config", str(toml))["config"]["steps"] == 2


def test_bad_settings_files(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = [\n")
    assert "not valid TOML" in fails_with(example_1.main, ["--config", str(bad)], capsys)
    bad.write_text("stepz = 4\n")
    assert "unknown setting(s) stepz" in fails_with(example_1.main, ["--config", str(bad)], capsys)
    bad.write_text('steps = "many"\n')
    assert "steps must be a int" in fails_with(example_1.main, ["--config", str(bad)], capsys)
    missing = tmp_path / "none.toml"
    assert "cannot read" in fails_with(example_1.main, ["--config", str(missing)], capsys)
    not_result = tmp_path / "r.pkl"
    save_result(not_result, {"kind": "training"})
    assert "records no config" in fails_with(
        example_1.main, ["--config-from", str(not_result)], capsys
    )
    power = tmp_path / "p.pkl"
    save_result(power, {"config": {"episodes": 3}})
    assert "unknown setting(s) episodes" in fails_with(
        example_1.main, ["--config-from", str(power)], capsys
    )


def test_power_script_bad_input_and_a_one_episode_run(tmp_path, capsys):
    assert "--episodes" in fails_with(q_learning_power.main, ["--episodes", "0"], capsys)
    r = _run(q_learning_power.main, tmp_path, "p", "--episodes", "1")
    assert r["status"] == "completed" and r["steps_completed"] == 100
    assert r["states"].shape == (101, 16) and r["actions"].shape == (100, 4)
    assert r["episode_costs"].shape == (1,) and r["episode_td_errors"].shape == (1,)
    assert r["episode_costs"][0] == pytest.approx(r["costs"].sum())
    assert r["params"]["P_tie_2_3"].shape == (2, 1) and r["params"]["Q_x_2"].shape == (2, 4, 4)
    assert r["config"]["episodes"] == 1 and r["config"]["update_hook"] == "on_episode_end"
