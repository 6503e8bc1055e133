"""Divergence detection, the learning's safeguards (--stabilized) and the fallback solver."""

from __future__ import annotations

import casadi as cs
import numpy as np
import pytest
from csnlp import Nlp
from mpcrl import LearnableParameter, LearnableParametersDict

from marl_dmpc import mpcrl_compat as compat
from marl_dmpc.cli import make_config
from marl_dmpc.config import STABILIZED_PRESET, AdmmSettings, DivergenceSettings
from marl_dmpc.conic import FreshConic
from marl_dmpc.learning import DivergenceMonitor, LearningDiverged
from marl_dmpc.learning.qp_solver import ActiveSetNlpSolver
from marl_dmpc.learning.settings import SafeguardedGradientDescent, clip_td_error
from marl_dmpc.mpcrl_compat import ExponentialScheduler
from marl_dmpc.results import load_result
from marl_dmpc.solvers import fallback_setup, solver_setup
from marl_dmpc.sweep.__main__ import main as sweep
from reproduction.example_1 import example_1
from reproduction.example_1.config import Example1Config
from tests.helpers import fails_with
from tests.test_learning import gaps, run

INITIAL = {"A_0": np.array([[1.0, 0.25], [0.0, 1.0]]), "b_1": np.zeros(2), "V0_2": np.zeros(1)}
AGENTS = {"A_0": 0, "b_1": 1, "V0_2": 2}
BOUNDS = (np.array([0.0, -1.0]), np.array([1.0, 1.0]))


def monitor(**settings) -> DivergenceMonitor:
    return DivergenceMonitor(DivergenceSettings(**settings), INITIAL, AGENTS, BOUNDS, admm_cap=100)


def history(*updates: dict) -> dict[str, list[np.ndarray]]:
    values = {name: [v.copy()] for name, v in INITIAL.items()}
    for update in updates:
        for name in values:
            values[name].append(update.get(name, values[name][-1]))
    return values


def test_a_parameter_beyond_its_scale_names_update_agent_and_entry():
    m = monitor()
    m.check(2, [0.5, 0.0], 0.1, history({"b_1": np.array([0.0, 9.9])}))  # within 10 x 1
    grown = history({"b_1": np.array([0.0, 9.9])}, {"b_1": np.array([0.0, -12.0])})
    with pytest.raises(LearningDiverged) as info:
        m.check(4, [0.5, 0.0], 0.1, grown)
    assert str(info.value) == (
        "learning diverged at update 2 (step 4): agent 1's parameter b_1[1] is -12, "
        "beyond 10 x its initial scale 1"
    )
    with pytest.raises(LearningDiverged, match="A_0\\[0, 1\\] is not finite"):
        monitor().check(2, None, 0.0, history({"A_0": np.array([[1.0, np.nan], [0, 1]])}))
    monitor(diverge_parameter_factor=0).check(4, None, 0.0, grown)  # the check is off


def test_td_errors_beyond_the_threshold_or_not_finite():
    moved = history({"A_0": np.array([[1.0, 0.75], [0.0, 1.0]])})
    with pytest.raises(LearningDiverged) as info:
        monitor().check(7, [0.5, 0.0], -2e3, moved)
    assert "|TD error| 2e+03 > 1000" in str(info.value)
    assert "moved most: agent 0's A_0[0, 1] (+0.5)" in str(info.value)
    with pytest.raises(LearningDiverged, match="the TD error is nan"):
        monitor(diverge_td_error=0).check(7, None, float("nan"), moved)
    monitor(diverge_td_error=0).check(7, None, -2e3, moved)


def test_states_far_outside_their_bounds_for_several_steps():
    m = monitor(diverge_state_steps=3)
    far, near = [0.5, 25.0], [0.5, 20.0]  # x2 in [-1, 1]: far beyond 1 + 10 x 2
    m.check(1, far, 0.0, history())
    m.check(2, far, 0.0, history())
    m.check(3, near, 0.0, history())  # the count starts again
    m.check(4, far, 0.0, history())
    m.check(5, far, 0.0, history())
    with pytest.raises(LearningDiverged, match="state 1 far outside its bounds for 3 steps"):
        m.check(6, far, 0.0, history())


def test_a_run_of_solves_at_the_admm_cap():
    m = monitor()
    m.check(1, None, 0.0, history(), [100, 5, 100, 100])
    with pytest.raises(LearningDiverged, match="3 ADMM solves in a row reached the cap"):
        m.check(2, None, 0.0, history(), [100, 5, 100, 100, 100])
    monitor(diverge_admm_cap_solves=0).check(2, None, 0.0, history(), [100] * 9)


def test_a_fixed_number_of_admm_iterations_is_no_cap(tmp_path, capsys):
    """With --admm-tol 0 every solve runs exactly --admm-iters iterations by design (the
    release's plain ADMM): that is neither divergence nor a solve 'at the cap'."""
    assert AdmmSettings(rho=1.0, admm_iters=50, admm_tol=0.0).convergence_cap is None
    assert AdmmSettings(rho=1.0, admm_iters=50, admm_tol=1e-8).convergence_cap == 50
    out = tmp_path / "fixed.pkl"
    argv = ["--steps", "8", "--admm-iters", "12", "--admm-tol", "0", "--no-progress"]
    assert example_1.main([*argv, "--out", str(out)]) == 0
    result = load_result(out)
    assert result["status"] == "completed" and result["steps_completed"] == 8
    assert set(result["admm_iterations"].tolist()) == {12} and result["admm_at_cap"] == 0
    assert "iteration cap" not in capsys.readouterr().err


def test_a_diverging_run_stops_within_seconds_with_its_partial_result(tmp_path, capsys):
    """The issue's case: seed 5 with the paper's settings diverges (a spike at update
    ~34); it stops there, exit code 1, one line, its result and checkpoint written."""
    out = tmp_path / "s5.pkl"
    argv = ["--seed", "5", "--steps", "2000", "--no-progress", "--out", str(out)]
    line = fails_with(example_1.main, argv, capsys, code=1)
    assert line.startswith("error: learning diverged at update 34 (step 68): agent ")
    result = load_result(out)
    assert result["status"] == "diverged" and result["message"] == line.removeprefix("error: ")
    assert result["steps_completed"] == 68 and result["updates"] == 34
    checkpoint = load_result(tmp_path / "s5.checkpoint.pkl")
    assert checkpoint["steps_completed"] == 68


def test_the_stabilized_preset_fills_only_what_is_not_given():
    config = make_config(Example1Config, {"stabilized": True, "td_clip": 5.0}, {})
    assert config.td_clip == 5.0
    assert config.max_update == STABILIZED_PRESET["max_update"]
    assert config.parameter_box == STABILIZED_PRESET["parameter_box"]
    assert make_config(Example1Config, {}, {}).stabilization().td_clip == 0.0  # the paper's
    # a result file's config repeats the run
    assert make_config(Example1Config, dict(config.__dict__), {}) == config


def test_safeguarded_step_is_the_projection_of_the_plain_step():
    theta0 = np.array([0.0, 1.0, -1.0, 2.0])
    pars = LearnableParametersDict([LearnableParameter("theta", 4, theta0)])
    optimizer = SafeguardedGradientDescent(ExponentialScheduler(1.0, 1.0), 0.5, 0.8)
    optimizer.set_learnable_parameters(pars)
    optimizer.update(np.array([-0.1, 2.0, -0.3, 0.0]))  # plain step +0.1, -2, +0.3, 0
    np.testing.assert_allclose(pars.value, [0.1, 0.5, -0.7, 2.0])
    optimizer.update(np.array([-0.4, 0.4, -0.4, 0.0]))  # the box holds theta0 +- 0.8
    np.testing.assert_allclose(pars.value, [0.5, 0.2, -0.3, 2.0])
    assert clip_td_error(np.array([-3.0, 1.0]), 2.0).tolist() == [-2.0, 1.0]
    assert clip_td_error(-3.0, 0.0) == -3.0


def test_both_learners_apply_the_safeguards_alike():
    """A learning rate at which every safeguard acts: the learners still agree."""
    settings = {"learning_rate": 1e-3, "stabilized": True, "td_clip": 2.0}
    settings = dict(make_config(Example1Config, settings, {}).__dict__)
    del settings["steps"], settings["seed"], settings["centralized"]
    cen, _ = run(20, True, seed=42, **settings)
    dist, _ = run(20, False, seed=42, **{**settings, "admm_iters": 5000, "admm_tol": 1e-10})
    param_gap, td_gap = gaps(cen, dist)
    assert param_gap < 1e-6 and td_gap < 1e-5
    history = cen.log.parameter_history()
    moves = np.abs(
        np.diff(np.concatenate([h.reshape(len(h), -1) for h in history.values()], 1), axis=0)
    )
    assert moves.max() == pytest.approx(STABILIZED_PRESET["max_update"])  # the cap acted


def _failing_qpoases() -> tuple[str, dict]:
    plugin, _, options = solver_setup("qpoases")
    return plugin, {**options, "nWSR": 1}  # one working-set recalculation: it fails


def test_a_failed_local_qp_is_solved_again_by_the_fallback_solver():
    plugin, options = _failing_qpoases()
    bounds = {"lbg": [1.0], "ubg": [2.0], "lbx": -5 * np.ones(3), "ubx": 5 * np.ones(3)}
    args = (np.eye(3), np.ones((1, 3)), np.array([1.0, 2.0, 3.0]), np.ones(1), 2 * np.ones(1))
    assert not FreshConic(plugin, options, **bounds).solve(*args).success
    qp = FreshConic(plugin, options, **bounds, fallback=fallback_setup("qpoases"))
    solution = qp.solve(*args)
    assert solution.success and qp.fallbacks == 1
    np.testing.assert_allclose(solution.x, [4 / 3, 1 / 3, -2 / 3], atol=1e-6)


def test_a_centralized_solve_the_configured_solver_fails_is_answered_by_the_active_set():
    nlp = Nlp()
    x, _, _ = nlp.variable("x", (3, 1), lb=-5, ub=5)
    nlp.constraint("sum", cs.sum1(x), ">=", 1)
    nlp.minimize(0.5 * cs.sumsqr(x) + cs.dot(cs.DM([1.0, 2.0, 3.0]), x))
    plugin, options = _failing_qpoases()
    nlp.init_solver(options, plugin, "conic")
    assert not nlp.solve().success
    solver = ActiveSetNlpSolver(nlp, plugin, options, fallback_setup("qpoases"))
    compat.set_nlp_solver(nlp, solver)
    for _ in range(2):  # from DAQP's active set, then from the last optimal one
        solution = nlp.solve()
        assert solution.success and solver.fallbacks == 0
        np.testing.assert_allclose(
            np.asarray(solution.vals["x"]).ravel(), [4 / 3, 1 / 3, -2 / 3], atol=1e-9
        )
        assert abs(float(solution.f) - 7 / 6) < 1e-9  # 0.5 |x|^2 + [1, 2, 3] x
    assert solver.qp.stats["dual"] == 1 and solver.qp.stats["reused"] == 1


def test_a_sweep_records_diverged_runs_and_keeps_them(tmp_path, capsys):
    folder = tmp_path / "sweep"
    argv = ["example_1", "--seeds", "5", "--steps", "80", "--dir", str(folder), "--no-progress"]
    argv += ["--eval-episodes", "0"]
    assert sweep(argv) == 0  # a diverged run is a finding of the sweep, not an error
    assert "0 completed, 1 diverged, 0 failed, 0 left" in capsys.readouterr().out
    assert load_result(folder / "default" / "seed5.pkl")["status"] == "diverged"
    assert sweep(argv) == 0
    assert "0 completed, 1 diverged, 0 failed, 0 left" in capsys.readouterr().out
    summary = tmp_path / "summary.pkl"
    assert sweep(["summarize", str(folder), "--out", str(summary)]) == 0
    assert sweep(["report", str(summary), "--out", str(tmp_path / "report")]) == 0
    table = (tmp_path / "report" / "report.md").read_text()
    assert "| summary: steps=80 | 1 | 0 | 1 | 0 |" in table


def test_a_grid_of_stabilized_switches_the_preset_on():
    from marl_dmpc.sweep.plan import plan

    runs = plan("example_1", {"steps": 4}, {"stabilized": [False, True]}, [1])
    off, on = (run.config for run in runs)
    assert (off["td_clip"], off["max_update"], off["parameter_box"]) == (0.0, 0.0, 0.0)
    assert {name: on[name] for name in STABILIZED_PRESET} == STABILIZED_PRESET


def test_the_power_system_clips_its_td_errors_in_its_own_units(capsys):
    from reproduction.power_system.config import PowerSystemConfig
    from reproduction.power_system.q_learning_power import main

    config = make_config(PowerSystemConfig, {"stabilized": True}, {})
    assert config.td_clip == 30.0 and config.max_update == STABILIZED_PRESET["max_update"]
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "preset: td_clip 30," in " ".join(capsys.readouterr().out.split())


def test_the_robustness_tables_and_figures_come_from_the_summaries(tmp_path, capsys, monkeypatch):
    from reproduction.plotting import robustness

    folder = tmp_path / "sweep"
    argv = ["example_1", "--seeds", "1,5", "--steps", "80", "--dir", str(folder)]
    assert sweep([*argv, "--no-progress", "--eval-episodes", "1"]) == 0
    data = tmp_path / "data"
    out = data / "example_1_distributed_default.pkl"
    assert sweep(["summarize", str(folder), "--out", str(out)]) == 0
    capsys.readouterr()
    assert robustness.main(["--data", str(data)]) == 0
    printed = capsys.readouterr().out
    row = "| Example 1 | distributed, paper's settings | 80 steps | 2/2 | 1 | 0 | "
    assert row in printed and "| none (the paper's learning) | 80 steps | 2/2 | 1 | 0 |" in printed
    assert "Not made yet" in printed
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    for path, markers in (
        (root / "README.md", robustness.README_MARKERS),
        (root / "docs" / "robustness.md", robustness.DOCS_MARKERS),
    ):
        path.write_text(f"# T\n\n{markers[0]}\nold\n{markers[1]}\n\nrest\n")
    monkeypatch.setattr(robustness, "ROOT", root)
    figures = tmp_path / "figures"
    assert robustness.main(["--data", str(data), "--figures", str(figures), "--write"]) == 0
    readme = (root / "README.md").read_text()
    assert row in readme and "old" not in readme and readme.endswith("\n\nrest\n")
    assert (figures / "robustness_example_1.png").read_bytes()[:4] == b"\x89PNG"
    assert not (figures / "robustness_power_system.png").exists()  # no study of it
    line = fails_with(robustness.main, ["--data", str(tmp_path / "nothing")], capsys)
    assert "holds no study summary" in line


@pytest.mark.slow
def test_stabilized_keeps_seeds_1_to_12_learning_for_2000_steps(tmp_path, capsys):
    """The issue's check (about 3 minutes on 2 cores): with --stabilized no run of seeds
    1 to 12 diverges or fails within 2,000 steps."""
    argv = ["example_1", "--seeds", "1-12", "--steps", "2000", "--stabilized"]
    argv += ["--eval-episodes", "0", "--dir", str(tmp_path / "s"), "--no-progress"]
    assert sweep(argv) == 0
    assert "12 completed, 0 diverged, 0 failed, 0 left" in capsys.readouterr().out


def test_chunks_of_one_sweep_make_one_summary(tmp_path, capsys):
    base = ["example_1", "--steps", "4", "--eval-episodes", "0", "--no-progress"]
    for seed in ("1", "2"):
        assert sweep([*base, "--seeds", seed, "--dir", str(tmp_path / seed)]) == 0
    assert sweep([*base[:2], "6", *base[3:], "--dir", str(tmp_path / "other")]) == 0
    out = tmp_path / "summary.pkl"
    assert sweep(["summarize", str(tmp_path / "1"), str(tmp_path / "2"), "--out", str(out)]) == 0
    summary = load_result(out)
    assert summary["planned"] == {"default": 2} and summary["seeds"] == [1, 2]
    assert [run["seed"] for run in summary["runs"]] == [1, 2]
    argv = ["summarize", str(tmp_path / "1"), str(tmp_path / "other"), "--out", str(out)]
    assert "is not a chunk of the sweep" in fails_with(sweep, argv, capsys)


def test_the_centralized_learner_keeps_counting_fallbacks_across_solver_restarts():
    config = Example1Config(steps=2, centralized=True)
    learner = example_1.build_learner(config)
    learner._solvers[0].fallbacks = 2  # as if V's solver had fallen back twice
    learner._count_fallbacks()
    learner._count_fallbacks()  # counted once
    assert learner.log.fallbacks == 2
    learner._restart_solvers()  # nothing to restart: the active-set solvers stay
    assert all(
        mpc.unwrapped._solver is solver
        for mpc, solver in zip(compat.value_mpcs(learner), learner._solvers, strict=True)
    )
    learner._solvers[1].fallbacks = 1
    learner._count_fallbacks()
    assert learner.log.fallbacks == 3
