"""The data-safety rule and bad input, case by case, through the real entry points
(docs/cli.md): an existing file is byte-identical afterwards, the exit code is the
documented one, and the message is one line without a traceback."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from marl_dmpc.checkpoints import config_fingerprint
from marl_dmpc.results import load_result, save_result
from reproduction.benchmarks import bench_example_1, bench_power, bench_scale
from reproduction.example_1 import baselines as baselines_1
from reproduction.example_1 import evaluate as evaluate_1
from reproduction.example_1 import example_1
from reproduction.plotting import data_manifest, make_figures, results_table
from reproduction.power_system import baselines as baselines_power

from .helpers import ROOT, as_from_a_terminal, ctrl_c_at_step, fails_with

SHORT = ["--steps", "4", "--no-progress"]
CONTENT = b"a file of the user's own\n"


@pytest.fixture
def precious(tmp_path):
    """A file the commands did not create."""
    path = tmp_path / "precious.txt"
    path.write_bytes(CONTENT)
    return path


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run of 10 steps stopped by SIGINT during step 3: (partial result, checkpoint)."""
    folder = tmp_path_factory.mktemp("interrupted")
    out, checkpoint = folder / "r.pkl", folder / "r.ck.pkl"
    argv = ["--steps", "10", "--no-progress", "--checkpoint-every", "0"]
    with ctrl_c_at_step(3):
        code = example_1.main([*argv, "--out", str(out), "--checkpoint", str(checkpoint)])
    assert code == 130 and checkpoint.exists()
    return out, checkpoint


# ------------------------------------------------------------------ outputs, checkpoints
def test_an_existing_checkpoint_path_is_refused_and_kept(tmp_path, precious, capsys):
    out = tmp_path / "r.pkl"
    argv = [*SHORT, "--out", str(out), "--checkpoint", str(precious)]
    line = fails_with(example_1.main, argv, capsys)
    assert "--checkpoint" in line and "exists" in line
    assert precious.read_bytes() == CONTENT and not out.exists()


def test_overwrite_lets_a_run_replace_but_it_deletes_only_its_own_checkpoint(
    tmp_path, precious, capsys
):
    """With --overwrite and no checkpoint written (none scheduled), the completed run
    leaves the file at --checkpoint as it was: a run deletes only what it wrote."""
    argv = [*SHORT, "--checkpoint-every", "0", "--overwrite"]
    assert (
        example_1.main([*argv, "--out", str(tmp_path / "r.pkl"), "--checkpoint", str(precious)])
        == 0
    )
    assert precious.read_bytes() == CONTENT
    assert example_1.main([*argv, "--out", str(precious)]) == 0  # asked for: replaced
    assert load_result(precious)["status"] == "completed"


def test_out_and_checkpoint_must_differ(tmp_path, capsys):
    out = tmp_path / "r.pkl"
    line = fails_with(example_1.main, [*SHORT, "--out", str(out), "--checkpoint", str(out)], capsys)
    assert "--checkpoint must differ from --out" in line and not out.exists()


@pytest.mark.parametrize("name", ["README.md", "data/example_1/distributed.pkl"])
def test_out_never_replaces_an_existing_file(name, tmp_path, capsys):
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / name, target)
    before = target.read_bytes()
    line = fails_with(example_1.main, [*SHORT, "--out", str(target)], capsys)
    assert "exists" in line and "--overwrite" in line
    assert target.read_bytes() == before


def test_empty_out_is_refused(capsys):
    assert "--out needs a file name" in fails_with(example_1.main, [*SHORT, "--out", ""], capsys)


def test_the_default_out_is_new_for_every_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert example_1.main(SHORT) == 0
    first = tmp_path / "runs" / "example_1_distributed_seed1.pkl"
    before = first.read_bytes()
    assert example_1.main(SHORT) == 0
    assert first.read_bytes() == before
    assert (tmp_path / "runs" / "example_1_distributed_seed1_2.pkl").exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_files_get_the_users_umask(umask, mode, tmp_path, capsys):
    old = os.umask(umask)
    try:
        assert example_1.main([*SHORT, "--out", str(tmp_path / "r.pkl")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "r.pkl").stat().st_mode & 0o777 == mode


# ------------------------------------------------------------------------ checkpoints
def test_an_interrupted_run_keeps_its_checkpoint_and_partial_result(interrupted):
    out, checkpoint = interrupted
    partial, saved = load_result(out), load_result(checkpoint)
    assert partial["status"] == "interrupted" and partial["example"] == "example_1"
    assert saved["format"] == 1 and saved["fingerprint"] == config_fingerprint(
        example_1.EXAMPLE.config_type(**saved["config"])
    )


def _corrupt(data: dict, change: str) -> dict:
    data = {**data, "config": dict(data["config"]), "training": dict(data["training"])}
    if change == "negative steps":
        data["steps_completed"] = -3
    elif change == "NaN tolerance":
        data["config"]["admm_tol"] = float("nan")
    elif change == "missing key":
        del data["training"]
    elif change == "other format":
        data["format"] = 99
    elif change == "edited settings":
        data["config"]["learning_rate"] = 1.0  # the fingerprint no longer matches
    elif change == "wrong type":
        data["wall_time_s"] = "soon"
    elif change == "not a checkpoint":
        data["kind"] = "training"
    return data


@pytest.mark.parametrize(
    "change, fragment",
    [
        ("negative steps", "steps_completed must be an integer >= 0"),
        ("NaN tolerance", "admm_tol must be a finite number >= 0"),
        ("missing key", "lacks 'training'"),
        ("other format", "checkpoint format 99"),
        ("edited settings", "do not match its fingerprint"),
        ("wrong type", "wall_time_s must be a finite number"),
        ("not a checkpoint", "not a checkpoint"),
    ],
)
def test_a_faulty_checkpoint_is_refused_in_one_line(
    change, fragment, interrupted, tmp_path, capsys
):
    _, checkpoint = interrupted
    bad = tmp_path / "bad.ck.pkl"
    save_result(bad, _corrupt(load_result(checkpoint), change))
    before = bad.read_bytes()
    line = fails_with(example_1.main, ["--resume", str(bad)], capsys)
    assert fragment in line and str(bad) in line
    assert bad.read_bytes() == before


def test_resume_replaces_only_its_own_partial_result(interrupted, tmp_path, capsys):
    """A copy of the interrupted run resumes into its partial result; pointed at
    another existing file with --out, it refuses."""
    out, checkpoint = interrupted
    folder = tmp_path / "copy"
    folder.mkdir()
    data = load_result(checkpoint)
    data["out"] = str(folder / "r.pkl")
    save_result(folder / "r.ck.pkl", data)
    shutil.copyfile(out, folder / "r.pkl")
    line = fails_with(
        example_1.main, ["--resume", str(folder / "r.ck.pkl"), "--out", str(checkpoint)], capsys
    )
    assert "--out" in line and "exists" in line
    assert example_1.main(["--resume", str(folder / "r.ck.pkl"), "--no-progress"]) == 0
    assert load_result(folder / "r.pkl")["status"] == "completed"
    assert not (folder / "r.ck.pkl").exists()


def test_sigterm_keeps_the_checkpoint_and_partial_result(tmp_path):
    out, checkpoint = tmp_path / "r.pkl", tmp_path / "r.checkpoint.pkl"  # the default
    command = [sys.executable, str(ROOT / "example_1" / "example_1.py"), "--steps", "5000"]
    command += ["--no-progress", "--checkpoint-every", "0", "--out", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "->" in proc.stdout.readline()  # training has started
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and f"resume with --resume {checkpoint}" in stdout
    partial, saved = load_result(out), load_result(checkpoint)
    assert partial["status"] == "interrupted"
    assert 0 < saved["steps_completed"] == partial["steps_completed"] < 5000


def test_ctrl_c_while_building_writes_nothing(tmp_path, capsys):
    def setup(config):
        raise KeyboardInterrupt

    example = dataclasses.replace(example_1.EXAMPLE, setup=setup)
    out = tmp_path / "r.pkl"
    assert example.main([*SHORT, "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["interrupted before training started; nothing was written"]
    assert not out.exists()


# ------------------------------------------------------------- warnings of valid input
def test_questionable_settings_are_reported(tmp_path, capsys):
    out = tmp_path / "r.pkl"
    argv = [*SHORT, "--consensus-iters", "0", "--admm-iters", "2", "--admm-tol", "1e-14"]
    argv += ["--diverge-admm-cap-solves", "0"]
    assert example_1.main([*argv, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: --consensus-iters 0 leaves the agents' estimates" in err
    result = load_result(out)
    assert result["consensus_error_bound"] == pytest.approx(1.0)
    solves = len(result["admm_iterations"])
    assert result["admm_at_cap"] == solves > 0
    assert f"ADMM stopped at its iteration cap (2) in {solves} of {solves} solves" in err


# ------------------------------------------------------------------------ evaluation
def test_evaluation_never_writes_over_its_input_and_warns_of_unfinished_runs(
    interrupted, tmp_path, capsys
):
    out, _ = interrupted
    before = out.read_bytes()
    line = fails_with(evaluate_1.main, [str(out), "--out", str(out)], capsys)
    assert "is the result being evaluated" in line and out.read_bytes() == before
    failed = tmp_path / "failed.pkl"
    save_result(failed, {**load_result(out), "status": "failed"})
    evaluation = tmp_path / "e.pkl"
    argv = [str(failed), "--updates", "0", "--steps", "2", "--workers", "1"]
    assert evaluate_1.main([*argv, "--out", str(evaluation)]) == 0
    assert "did not finish (status 'failed'" in capsys.readouterr().err
    before = evaluation.read_bytes()
    assert "exists" in fails_with(evaluate_1.main, [*argv, "--out", str(evaluation)], capsys)
    assert evaluation.read_bytes() == before


@pytest.mark.parametrize("main", [baselines_1.main, baselines_power.main])
def test_baselines_refuse_scenario_mpcs_too_large_for_memory(main, tmp_path, capsys):
    argv = ["--scenarios", "100000", "--out", str(tmp_path / "b.pkl")]
    line = fails_with(main, argv, capsys)
    assert "--scenarios" in line and "K=100000" in line and "TiB" in line
    assert not (tmp_path / "b.pkl").exists()


@pytest.mark.parametrize(
    "main, argv",
    [
        (bench_example_1.main, ["--steps", "0"]),
        (bench_example_1.main, ["--seed", "x"]),
        (bench_power.main, ["--episodes", "-1"]),
        (bench_scale.main, ["--agents", "1,3"]),
        (bench_scale.main, ["--agents", "3,a"]),
        (bench_scale.main, ["--centralized-solver", "nosuch"]),
    ],
)
def test_benchmarks_bad_arguments(main, argv, capsys):
    fails_with(main, argv, capsys)


# ------------------------------------------------------------------ plotting and data
def test_results_table_refuses_a_misspelt_data_folder(tmp_path, capsys):
    readme = (ROOT / "README.md").read_bytes()
    line = fails_with(results_table.main, ["--readme", "--data", str(tmp_path / "dta")], capsys)
    assert "is not a folder" in line
    line = fails_with(results_table.main, ["--readme", "--data", str(tmp_path)], capsys)
    assert "holds none of the data files" in line
    assert (ROOT / "README.md").read_bytes() == readme


def test_data_manifest_help_and_print_write_nothing(capsys):
    manifest = ROOT / "data" / "README.md"
    before = manifest.read_bytes(), manifest.stat().st_mtime_ns
    with pytest.raises(SystemExit) as exit_info:
        data_manifest.main(["--help"])
    assert exit_info.value.code == 0 and "--write" in capsys.readouterr().out
    assert data_manifest.main([]) == 0
    assert capsys.readouterr().out == before[0].decode()  # the committed list is current
    assert (manifest.read_bytes(), manifest.stat().st_mtime_ns) == before


def test_make_figures_checks_what_each_file_holds(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "figures"
    (data / "example_1").mkdir(parents=True)
    shutil.copyfile(ROOT / "data/power_system/distributed.pkl", data / "example_1/distributed.pkl")
    argv = ["--data", str(data), "--out", str(out), "--only", "example_1_training_states"]
    line = fails_with(make_figures.main, argv, capsys)
    assert "example_1/distributed.pkl holds power_system_training data" in line
    assert not any(out.glob("*.png"))


def test_make_figures_replaces_figures_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "figures"
    out.mkdir()
    (out / "admm_dual_error.png").write_bytes(CONTENT)
    argv = ["--out", str(out), "--only", "admm_dual_error", "--data", str(ROOT / "data")]
    assert "exists" in fails_with(make_figures.main, argv, capsys)
    assert (out / "admm_dual_error.png").read_bytes() == CONTENT
    assert make_figures.main([*argv, "--overwrite"]) == 0
    assert (out / "admm_dual_error.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_in_an_evaluation_ends_in_one_line_and_writes_nothing(workers, tmp_path):
    """Ctrl-C reaches the whole process group, as from a terminal: a pool's workers are
    stopped at once; one process stops after its current job (an interrupt inside an
    IPOPT solve would be swallowed by CasADi and end that solve early)."""
    out = tmp_path / "b.pkl"
    command = [sys.executable, str(ROOT / "example_1" / "baselines.py"), "--workers", workers]
    command += ["--scenarios", "10", "--steps", "60", "--out", str(out)]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=as_from_a_terminal,
    )
    try:
        time.sleep(6)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and stderr == "error: interrupted; nothing was written\n"
    assert not out.exists()
