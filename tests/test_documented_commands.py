"""Every command that README.md and docs/ name runs, with tiny settings, as the documented
``python ...`` command in a fresh process, and writes what it says; every flag the
documents give a command is one that command takes.

A command named in a document without a case in :data:`SMOKE` fails
:func:`test_every_documented_command_has_a_smoke_case`, so a new documented command
cannot go untested, and an old one cannot break silently.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from marl_dmpc.results import load_result
from tests.helpers import ROOT

DOCUMENTS = [ROOT / "README.md", ROOT / "data" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Commands the documents name that are not this repository's (set-up and test runner).
NOT_OURS = {"-m venv", "-m pytest"}

#: Sub-commands that make a command of their own.
SUBCOMMANDS = {
    "-m marl_dmpc.sweep": {"example_1", "power_system", "second_order", "report", "summarize"},
}

_COMMAND = re.compile(r"python3? (-m [\w.]+|[\w./-]+\.py)((?: (?:[^`\n|&;]|&(?!&))*)?)")


def _code_lines(text: str) -> list[str]:
    """Lines of fenced code blocks with their continuations joined (a line ending in a
    backslash, or an indented line of further ``[--flag ...]`` options), plus every
    inline code span."""
    lines, in_block = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            continue
        stripped = line.strip()
        if lines and (lines[-1].endswith("\\") or re.match(r"^\s+[\[(]?--", line)):
            lines[-1] = lines[-1].rstrip("\\") + " " + stripped
        else:
            lines.append(stripped.removeprefix("$ "))
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return lines + spans


def command_key(module_or_script: str, rest: str) -> str:
    """The command a documented line runs: a script, a module, or a module's
    sub-command (``-m marl_dmpc.sweep report``)."""
    key = module_or_script
    words = rest.split()
    if key in SUBCOMMANDS and words and words[0] in SUBCOMMANDS[key]:
        key = f"{key} {words[0]}"
    return key


def documented_commands() -> list[tuple[str, str, str]]:
    """(document, command key, the rest of the line) of every ``python`` command."""
    found = []
    for path in DOCUMENTS:
        for line in _code_lines(path.read_text()):
            for match in _COMMAND.finditer(line):
                key = command_key(match.group(1), match.group(2))
                if key in NOT_OURS:
                    continue
                found.append((str(path.relative_to(ROOT)), key, match.group(2)))
    return found


# ------------------------------------------------------------------ the smoke cases
@dataclass
class Smoke:
    """One documented command with tiny settings: ``{tmp}`` in ``argv`` is the test's
    folder, ``{name}`` the output of the smoke case ``name`` (run first). ``check``
    gets the folder and the command's standard output."""

    argv: list[str]
    check: Callable[[Path, str], None]
    needs: list[str] = field(default_factory=list)


def _result(path: Path, **expected) -> dict:
    result = load_result(path)
    for key, value in expected.items():
        assert result[key] == value, (key, result[key], value)
    return result


def _training(example: str, steps: int, name: str = "") -> Callable[[Path, str], None]:
    def check(tmp: Path, out: str) -> None:
        path = tmp / f"{name or example}.pkl"
        result = _result(path, kind="training", status="completed")
        assert result["example"] == example and result["steps_completed"] == steps
        assert "completed:" in out

    return check


def _evaluation(name: str, kind: str, controllers: int, episodes: int, steps: int):
    def check(tmp: Path, out: str) -> None:
        result = _result(tmp / f"{name}.pkl", kind=kind)
        assert result["episode_costs"].shape == (controllers, episodes)
        assert result["costs"].shape == (controllers, episodes, steps)
        assert f"result written to {tmp / name}.pkl" in out

    return check


def _dual_error(name: str, kind: str, iterations: int):
    def check(tmp: Path, out: str) -> None:
        result = _result(tmp / f"{name}.pkl", kind=kind)
        assert result["dual_errors"].shape[3] == iterations
        assert (result["dual_errors"] >= 0).all()

    return check


def _files(pattern: str, at_least: int, printed: str = ""):
    def check(tmp: Path, out: str) -> None:
        written = [p for p in tmp.glob(pattern) if p.stat().st_size > 0]
        assert len(written) >= at_least, (pattern, written)
        assert printed in out

    return check


def _printed(*texts: str):
    def check(tmp: Path, out: str) -> None:
        for text in texts:
            assert text in out, (text, out[-2000:])

    return check


def _written_in(*documents: str):
    """The command prints what the documents hold: every paragraph of its output is in
    one of them (the tables of README.md come from data/ as they stand)."""

    def check(tmp: Path, out: str) -> None:
        text = "\n".join((ROOT / d).read_text() for d in documents)
        blocks = [b.strip() for b in out.split("\n\n") if b.strip()]
        assert blocks and all(b in text for b in blocks), [b[:80] for b in blocks if b not in text]

    return check


def _sweep(tmp: Path, out: str) -> None:
    assert (tmp / "sweep" / "sweep.json").is_file()
    for seed in (1, 2):
        _result(tmp / "sweep" / "default" / f"seed{seed}.pkl", kind="training", status="completed")
    assert "2 completed, 0 diverged, 0 failed, 0 left" in out


def _summary(tmp: Path, out: str) -> None:
    summary = _result(tmp / "summary.pkl", kind="sweep_summary")
    assert len(summary["runs"]) == 2 and summary["versions"]["blas_kernel"]


E1 = ["--no-progress", "--seed", "1"]
EVAL = ["--episodes", "1", "--steps", "3", "--workers", "1"]

SMOKE: dict[str, Smoke] = {
    "example_1/example_1.py": Smoke(
        ["example_1/example_1.py", "--steps", "4", *E1, "--out", "{tmp}/example_1.pkl"],
        _training("example_1", 4),
    ),
    "second_order/second_order.py": Smoke(
        ["second_order/second_order.py", "--steps", "4", *E1, "--out", "{tmp}/second_order.pkl"],
        _training("second_order", 4),
    ),
    "-m reproduction.example_1.example_1": Smoke(
        ["-m", "reproduction.example_1.example_1", "--steps", "2", "--centralized", *E1]
        + ["--out", "{tmp}/module.pkl"],
        _training("example_1", 2, "module"),
    ),
    "power_system/q_learning_power.py": Smoke(
        ["power_system/q_learning_power.py", "--episodes", "1", "--episode-steps", "3", *E1]
        + ["--out", "{tmp}/power_system.pkl"],
        _training("power_system", 3),
    ),
    "example_1/evaluate.py": Smoke(
        ["example_1/evaluate.py", "{tmp}/example_1.pkl", "--updates", "0,1", *EVAL]
        + ["--out", "{tmp}/e1_eval.pkl"],
        _evaluation("e1_eval", "example_1_evaluation", 2, 1, 3),
        needs=["example_1/example_1.py"],
    ),
    "example_1/baselines.py": Smoke(
        ["example_1/baselines.py", "--scenarios", "2", *EVAL, "--out", "{tmp}/e1_base.pkl"],
        _evaluation("e1_base", "example_1_baselines", 4, 1, 3),
    ),
    "power_system/evaluate.py": Smoke(
        ["power_system/evaluate.py", "{tmp}/power_system.pkl", *EVAL, "--out", "{tmp}/ps_eval.pkl"],
        _evaluation("ps_eval", "power_system_evaluation", 1, 1, 3),
        needs=["power_system/q_learning_power.py"],
    ),
    "power_system/baselines.py": Smoke(
        ["power_system/baselines.py", "--scenarios", "2", "--release", *EVAL]
        + ["--out", "{tmp}/ps_base.pkl"],
        _evaluation("ps_base", "power_system_baselines", 2, 1, 3),
    ),
    "example_1/admm_dual_error.py": Smoke(
        ["example_1/admm_dual_error.py", "--iterations", "1,2", "--steps", "2"]
        + ["--out", "{tmp}/e1_dual.pkl"],
        _dual_error("e1_dual", "example_1_admm_dual_error", 2),
    ),
    "power_system/admm_dual_error.py": Smoke(
        ["power_system/admm_dual_error.py", "--iterations", "1,3", "--steps", "2"]
        + ["--out", "{tmp}/ps_dual.pkl"],
        _dual_error("ps_dual", "power_system_admm_dual_error", 2),
    ),
    "plotting/make_figures.py": Smoke(
        ["plotting/make_figures.py", "--out", "{tmp}/figures"],
        _files("figures/*.png", 9),
    ),
    "plotting/results_table.py": Smoke(["plotting/results_table.py"], _written_in("README.md")),
    "plotting/data_manifest.py": Smoke(
        ["plotting/data_manifest.py"], _written_in("data/README.md")
    ),
    "plotting/second_order.py": Smoke(
        ["plotting/second_order.py"],
        _printed(
            "| distributed | second order, lr 0.0001 | 10 | 0 |",
            "| distributed | second order | 20 | 0 |",
            "| second order | 1 | 0.01 | 0 |",
        ),
    ),
    "plotting/robustness.py": Smoke(
        ["plotting/robustness.py"], _written_in("README.md", "docs/robustness.md")
    ),
    "plotting/reproducibility.py": Smoke(
        ["plotting/reproducibility.py"], _written_in("docs/reproducibility.md")
    ),
    "benchmarks/bench_kernels.py": Smoke(
        ["benchmarks/bench_kernels.py", "--kernels", "Prescott", "--steps", "3", "--rounds", "1"],
        _printed("kernel | ran as |", "Prescott | "),
    ),
    "benchmarks/bench_example_1.py": Smoke(
        ["benchmarks/bench_example_1.py", "--steps", "3"],
        _printed("release |", "default |", "ratio release/default"),
    ),
    "benchmarks/bench_scale.py": Smoke(
        ["benchmarks/bench_scale.py", "--agents", "3", "--steps", "2"]
        + ["--figure", "{tmp}/scale.png"],
        _files("scale.png", 1, printed="3 |"),
    ),
    "benchmarks/bench_local_qp.py": Smoke(
        ["benchmarks/bench_local_qp.py", "--steps", "2"],
        _printed("active set (own) |", "qpOASES hot start |"),
    ),
    "benchmarks/bench_power.py": Smoke(
        ["benchmarks/bench_power.py", "--episodes", "1"], _printed("distributed")
    ),
    "-m marl_dmpc.sweep example_1": Smoke(
        ["-m", "marl_dmpc.sweep", "example_1", "--seeds", "1-2", "--steps", "3"]
        + ["--eval-episodes", "1", "--workers", "2", "--no-progress", "--dir", "{tmp}/sweep"],
        _sweep,
    ),
    "-m marl_dmpc.sweep report": Smoke(
        ["-m", "marl_dmpc.sweep", "report", "{tmp}/sweep", "--out", "{tmp}/report"],
        _files("report/report.md", 1, printed="| steps=3 |"),
        needs=["-m marl_dmpc.sweep example_1"],
    ),
    "-m marl_dmpc.sweep summarize": Smoke(
        ["-m", "marl_dmpc.sweep", "summarize", "{tmp}/sweep", "--out", "{tmp}/summary.pkl"],
        _summary,
        needs=["-m marl_dmpc.sweep example_1"],
    ),
    "-m marl_dmpc.sweep power_system": Smoke(
        ["-m", "marl_dmpc.sweep", "power_system", "--seeds", "1", "--episodes", "1"]
        + ["--episode-steps", "3", "--eval-episodes", "1", "--no-progress"]
        + ["--dir", "{tmp}/power_sweep"],
        _printed("1 completed, 0 diverged, 0 failed, 0 left"),
    ),
    "-m marl_dmpc.sweep second_order": Smoke(
        ["-m", "marl_dmpc.sweep", "second_order", "--seeds", "1", "--steps", "3"]
        + ["--eval-episodes", "0", "--set", "centralized=false,true", "--no-progress"]
        + ["--dir", "{tmp}/so_sweep"],
        _printed("2 completed, 0 diverged, 0 failed, 0 left"),
    ),
    "-m marl_dmpc.sweep": Smoke(["-m", "marl_dmpc.sweep", "--help"], _printed("summarize")),
    "-m tests.regression": Smoke(
        ["-m", "tests.regression", "--drift", "--kernels", "Prescott"],
        _printed("| run: field |", "example_1_distributed: states"),
    ),
}


def _run(argv: list[str], tmp: Path) -> str:
    command = [sys.executable, *(a.format(tmp=tmp) for a in argv)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, (command, proc.stderr[-3000:])
    return proc.stdout


# ------------------------------------------------------------------ the tests
def test_every_documented_command_has_a_smoke_case():
    documented = {key for _, key, _ in documented_commands()}
    assert documented, "no command found in the documents"
    missing = documented - set(SMOKE)
    assert not missing, f"documented commands without a smoke case: {sorted(missing)}"
    unused = set(SMOKE) - documented
    assert not unused, f"smoke cases of commands no document names: {sorted(unused)}"


def _help(key: str) -> str:
    """The ``--help`` text of a documented command, in this process."""
    words = key.split(" ")
    if words[0] == "-m":
        module = words[1] + (".__main__" if words[1] == "marl_dmpc.sweep" else "")
        argv = [*words[2:], "--help"]
    else:
        module = "reproduction." + words[0].removesuffix(".py").replace("/", ".")
        argv = ["--help"]
    text = io.StringIO()
    with contextlib.redirect_stdout(text), pytest.raises(SystemExit):
        importlib.import_module(module).main(argv)
    return text.getvalue()


def test_every_documented_flag_is_one_its_command_takes():
    helps: dict[str, str] = {}
    unknown = []
    for document, key, rest in documented_commands():
        if key not in helps:
            helps[key] = _help(key)
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest):
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helps[key]):
                unknown.append(f"{document}: {key} {flag}")
    assert not unknown, unknown


@pytest.fixture(scope="module")
def smoke_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke"), set()


@pytest.mark.parametrize("key", list(SMOKE))
def test_a_documented_command_runs_and_writes_what_it_says(key, smoke_folder):
    tmp, done = smoke_folder
    for name in [*SMOKE[key].needs, key]:
        if name not in done:
            out = _run(SMOKE[name].argv, tmp)
            SMOKE[name].check(tmp, out)
            done.add(name)
