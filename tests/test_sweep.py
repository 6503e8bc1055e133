"""Sweeps (docs/sweeps.md): a tiny sweep on the local pool and on Ray is bit for bit the
runs started one by one; a sweep continues where it stopped without recomputing; a
failing run is recorded and the others complete; the report writes its table and
figure; bad input is one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from marl_dmpc.results import load_result
from marl_dmpc.sweep.__main__ import main as sweep
from reproduction.example_1 import example_1

from .helpers import as_from_a_terminal, fails_with

GRID = ["--seeds", "1-2", "--set", "learning_rate=6e-5,3e-5", "--steps", "20"]
LABELS = ["learning_rate=6e-05", "learning_rate=3e-05"]


def _same(a: dict, b: dict) -> None:
    for key in ("td_errors", "states", "actions", "costs"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for name in a["params"]:
        np.testing.assert_array_equal(a["params"][name], b["params"][name], err_msg=name)


@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory):
    """The four runs of GRID, each started by hand."""
    folder = tmp_path_factory.mktemp("one_by_one")
    runs = {}
    for label, rate in zip(LABELS, ["6e-5", "3e-5"], strict=True):
        for seed in (1, 2):
            out = folder / f"{label}_{seed}.pkl"
            argv = ["--steps", "20", "--learning-rate", rate, "--seed", str(seed)]
            assert example_1.main([*argv, "--no-progress", "--out", str(out)]) == 0
            runs[label, seed] = load_result(out)
    return runs


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, one_by_one):
    folder = tmp_path_factory.mktemp("sweep") / "lr"
    assert sweep(["example_1", *GRID, "--dir", str(folder), "--workers", "2", "--no-progress"]) == 0
    return folder


def test_local_sweep_is_the_runs_one_by_one(local_sweep, one_by_one):
    for (label, seed), alone in one_by_one.items():
        result = load_result(local_sweep / label / f"seed{seed}.pkl")
        assert result["status"] == "completed"
        _same(result, alone)
        assert result["final_evaluation"]["episode_costs"].shape == (1,)
    assert not list(local_sweep.rglob("*.checkpoint.pkl"))


def test_ray_sweep_is_the_runs_one_by_one(tmp_path, one_by_one):
    pytest.importorskip("ray")
    folder = tmp_path / "lr"
    argv = ["example_1", *GRID, "--dir", str(folder), "--backend", "ray", "--no-progress"]
    assert sweep(argv) == 0
    for (label, seed), alone in one_by_one.items():
        _same(load_result(folder / label / f"seed{seed}.pkl"), alone)


def test_rerunning_continues_without_recomputing(local_sweep, capsys):
    stamps = {p: p.stat().st_mtime_ns for p in local_sweep.rglob("seed*.pkl")}
    assert sweep(["example_1", *GRID, "--dir", str(local_sweep), "--no-progress"]) == 0
    assert "4 completed, 0 diverged, 0 failed, 0 left" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in local_sweep.rglob("seed*.pkl")} == stamps


def test_an_interrupted_sweep_resumes_and_keeps_what_it_finished(tmp_path, one_by_one):
    folder = tmp_path / "lr"
    command = [sys.executable, "-m", "marl_dmpc.sweep", "example_1", *GRID[:4]]
    command += ["--steps", "400", "--dir", str(folder), "--workers", "1", "--no-progress"]
    command += ["--checkpoint-every", "10", "--eval-episodes", "0"]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=as_from_a_terminal,
    )
    try:
        first = folder / LABELS[0] / "seed1.pkl"
        deadline = time.monotonic() + 300
        while not first.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)  # well into the second run
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C from a terminal
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "rerun the same command" in stdout
    stamp = first.stat().st_mtime_ns
    second = load_result(folder / LABELS[0] / "seed2.pkl")
    assert second["status"] == "interrupted"
    assert (folder / LABELS[0] / "seed2.checkpoint.pkl").exists()
    argv = ["example_1", *GRID[:4], "--steps", "400", "--dir", str(folder), "--no-progress"]
    argv += ["--checkpoint-every", "10", "--eval-episodes", "0", "--workers", "2"]
    assert sweep(argv) == 0
    assert first.stat().st_mtime_ns == stamp
    resumed = load_result(folder / LABELS[0] / "seed2.pkl")
    argv = ["--steps", "400", "--seed", "2", "--checkpoint-every", "0", "--no-progress"]
    assert example_1.main([*argv, "--out", str(tmp_path / "alone.pkl")]) == 0
    _same(resumed, load_result(tmp_path / "alone.pkl"))


def test_a_failing_run_is_recorded_and_the_others_complete(tmp_path, capsys):
    """A file of the user's own where seed 2's checkpoint goes: that run cannot write it
    and fails (recorded, the file untouched); seed 1 is kept; exit code 1."""
    folder = tmp_path / "s"
    argv = ["example_1", "--seeds", "1-2", "--steps", "6", "--dir", str(folder)]
    argv += ["--no-progress", "--eval-episodes", "0", "--workers", "1"]
    assert sweep(argv) == 0
    (folder / "default" / "seed2.pkl").unlink()
    blocker = folder / "default" / "seed2.checkpoint.pkl"
    blocker.write_bytes(b"the user's own")
    capsys.readouterr()
    assert sweep(argv) == 1
    failed = load_result(folder / "default" / "seed2.pkl")
    assert failed["status"] == "failed" and "OutputError" in failed["message"]
    assert blocker.read_bytes() == b"the user's own"
    assert load_result(folder / "default" / "seed1.pkl")["status"] == "completed"
    assert "1 completed, 0 diverged, 1 failed, 0 left" in capsys.readouterr().out
    assert sweep(argv) == 1  # a failed run is kept as it is, not rerun
    line = fails_with(sweep, [argv[0], "--seeds", "1-3", *argv[3:]], capsys)
    assert "holds another sweep" in line


def test_a_folder_with_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    argv = ["example_1", "--steps", "6", "--dir", str(tmp_path), "--no-progress"]
    assert "holds other files" in fails_with(sweep, argv, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_report_writes_its_table_and_figure(local_sweep, capsys):
    out = local_sweep.parent / "report"
    assert sweep(["report", str(local_sweep), "--out", str(out)]) == 0
    table = (out / "report.md").read_text()
    # labelled by what differs from the example's defaults (6e-5 is its learning rate),
    # grid and base settings alike
    for label in ("steps=20", "learning_rate=3e-05,steps=20"):
        assert f"| {label} | 2 | 2 | 0 | 0 |" in table
    rows = (out / "report.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("configuration,runs,completed")
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "exists" in fails_with(sweep, ["report", str(local_sweep), "--out", str(out)], capsys)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--set", "nosuch=1,2"], "'nosuch' is not a setting"),
        (["--set", "learning_rate=fast"], "is not a float"),
        (["--set", "rho=0,1"], "rho must be a finite number > 0"),
        (["--seeds", "a-b"], "--seeds"),
        (["--set", "seed=1,2"], "give seeds with --seeds"),
    ],
)
def test_bad_sweep_input_is_one_line(argv, fragment, tmp_path, capsys):
    line = fails_with(sweep, ["example_1", "--dir", str(tmp_path / "s"), *argv], capsys)
    assert fragment in line
    assert not (tmp_path / "s").exists()


def test_the_default_folder_is_the_same_for_the_same_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["example_1", "--steps", "4", "--eval-episodes", "0", "--workers", "1", "--no-progress"]
    assert sweep(argv) == 0
    assert sweep(argv) == 0
    assert sweep([*argv, "--seeds", "2"]) == 0
    folders = sorted((tmp_path / "runs" / "sweeps").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("example_1_") for f in folders)
    out = capsys.readouterr().out
    assert (
        out.count(f"1 runs in {folders[0].relative_to(tmp_path)}")
        + out.count(f"1 runs in {folders[1].relative_to(tmp_path)}")
        == 3
    )


def test_a_report_labels_a_configuration_by_what_differs_from_the_defaults():
    """A study's configuration is labelled by every setting that differs from the
    example's defaults, including those of its base (``--stabilized``, ``--steps``), not
    by its grid point alone (which would call both studies below "default")."""
    from marl_dmpc.results import load_result
    from marl_dmpc.sweep.report import relabelled

    from .helpers import ROOT

    data = ROOT / "data" / "robustness"
    stabilized = relabelled(load_result(data / "example_1_distributed_stabilized.pkl"))
    (label,) = stabilized["planned"]
    assert label.startswith("stabilized=True,") and "steps=20000" in label
    assert {run["label"] for run in stabilized["runs"]} == {label}
    default = relabelled(load_result(data / "example_1_distributed_default.pkl"))
    assert list(default["planned"]) == ["steps=20000"]


def test_an_example_of_ones_own_package_is_found_by_its_entry_point(monkeypatch):
    """The sweep runs the examples the installed packages declare (entry points of
    ``marl_dmpc.examples``): this repository's three, and one of a researcher's own
    package without a change to this one; a name nobody declares, or a module without
    ``EXAMPLE``, is a one-line error."""
    from importlib import metadata

    from marl_dmpc.sweep import plan

    assert list(plan.examples()) == ["example_1", "power_system", "second_order"]
    ours = metadata.entry_points(group=plan.EXAMPLES_GROUP)
    theirs = [
        # a "package of one's own": this test module's EXAMPLE
        metadata.EntryPoint("my_network", __name__, plan.EXAMPLES_GROUP),
        metadata.EntryPoint("no_example", "json", plan.EXAMPLES_GROUP),
    ]
    monkeypatch.setattr(
        plan.metadata, "entry_points", lambda group: [*ours, *theirs] if group else []
    )
    assert plan.load_example("my_network") is EXAMPLE
    with pytest.raises(plan.SweepError, match="module json has no EXAMPLE"):
        plan.load_example("no_example")
    with pytest.raises(plan.SweepError, match="unknown example 'nobody'; one of example_1"):
        plan.load_example("nobody")


#: The example the entry-point test declares as a package of one's own would.
EXAMPLE = example_1.EXAMPLE
