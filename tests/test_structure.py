"""The shape of the code: layers that point one way, small modules, no path edits, and
mpcrl's internals reachable (docs/architecture.md)."""

from __future__ import annotations

import ast
import re

import pytest

from marl_dmpc import mpcrl_compat

from .helpers import ROOT

PACKAGE = ROOT / "marl_dmpc"

#: The package's modules from the bottom layer up: a module imports only from lower
#: layers (docs/architecture.md draws them).
LAYERS = [
    # the data-safety rule of every file written
    {"files"},
    # the compiled kernels' decorator and dense factorizations
    {"compiled"},
    # data, numerics, solver plumbing
    {"solvers", "network", "blocks", "casadi_call", "threads", "results"}
    | {"checkpoints", "discretization", "progress", "kkt", "conic", "mpcrl_compat"},
    # the settings of a run
    {"config"},
    # MPC definitions, QP re-solves, consensus, exploration, envs, release files
    {"qp", "mpc", "consensus", "exploration", "envs", "legacy", "admm_loop"},
    {"local_mpc"},
    {"admm", "baselines"},
    {"learning"},
    {"evaluation", "runs"},
    {"cli"},
    {"driver"},
    # many runs: plans, engines, reports; studies of the ADMM
    {"sweep", "dual_error"},
]


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).with_suffix("").parts
        if name[-1] == "__init__":
            name = name[:-1]
        yield (name[0] if name else ""), path


def _imported(path) -> set[str]:
    """The top-level package modules that ``path`` imports."""
    tree = ast.parse(path.read_text())
    inside_learning = path.parent.name == "learning"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.startswith("marl_dmpc"):
                parts = node.module.split(".")[1:]
            elif node.level == 1 and not inside_learning:
                parts = (node.module or "").split(".")
            elif node.level == 2 or (node.level == 1 and inside_learning and not node.module):
                parts = (node.module or "").split(".")
            else:  # a sibling inside learning/
                continue
            if parts and parts[0]:
                found.add(parts[0])
            elif not node.module:
                found.update(alias.name for alias in node.names)
    return found


def test_layers_point_one_way():
    layer = {name: k for k, names in enumerate(LAYERS) for name in names}
    modules = {name for name, _ in _modules() if name}
    assert modules == set(layer), f"modules missing from LAYERS: {modules ^ set(layer)}"
    wrong = []
    for name, path in _modules():
        if not name:
            continue
        for target in _imported(path) - {name}:
            if target in layer and layer[target] >= layer[name]:
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not wrong, "imports from the same or a higher layer: " + "; ".join(wrong)


def test_no_module_is_over_450_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for _, path in _modules()
        if (n := len(path.read_text().splitlines())) > 450
    }
    assert not long, long


def test_no_script_edits_sys_path():
    offenders = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if ".venv" not in path.parts
        and path.name != "test_structure.py"
        and re.search(r"sys\.path\.(insert|append)", path.read_text())
    ]
    assert not offenders, offenders


def test_readme_is_short_and_nothing_points_outside_the_repository():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
    tracked = [
        p
        for p in ROOT.rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".md", ".toml", ".txt"}
        and not {".venv", ".git", "build"} & set(p.parts)
        and not p.name.endswith(".egg-info")
        and "egg-info" not in str(p)
        and p.name != "test_structure.py"
    ]
    mentions = [str(p.relative_to(ROOT)) for p in tracked if "SPEC.md" in p.read_text()]
    assert not mentions, mentions


def test_mpcrl_internals_this_package_uses_are_there():
    missing = mpcrl_compat.check_mpcrl()
    assert not missing, (
        f"mpcrl {mpcrl_compat.mpcrl_version()} lacks internals marl_dmpc relies on "
        f"(written for {mpcrl_compat.TESTED_VERSION}): {', '.join(missing)}; "
        "update marl_dmpc/mpcrl_compat.py"
    )


def test_mpcrl_check_reports_what_is_missing(monkeypatch):
    monkeypatch.setitem(
        mpcrl_compat.REQUIRED, "GradientDescent", ("_momentum_buffer", "_gone_in_a_new_version")
    )
    assert mpcrl_compat.check_mpcrl() == ["GradientDescent._gone_in_a_new_version"]
    monkeypatch.setattr(mpcrl_compat, "SET_BY_TRAIN", ("_raises", "_no_such_flag"))
    assert "LstdQLearningAgent.train setting _no_such_flag" in mpcrl_compat.check_mpcrl()


@pytest.mark.parametrize("name", ["example_1", "power_system"])
def test_example_scripts_hold_only_their_example(name):
    """The training scripts are short: what is general is the driver's."""
    script = {"example_1": "example_1.py", "power_system": "q_learning_power.py"}[name]
    assert len((ROOT / name / script).read_text().splitlines()) <= 80
