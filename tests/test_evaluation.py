"""Evaluation and baselines: the scenario MPC's condensed QP against an independent
formulation, and the example-1 scripts on shortened runs (results, orderings, errors)."""

import subprocess
import sys

import casadi as cs
import numpy as np
import pytest

from marl_dmpc.baselines import ScenarioMpc, SoftStateBounds
from marl_dmpc.evaluation import MpcController, run_episode
from marl_dmpc.results import load_result
from reproduction.example_1 import model
from reproduction.power_system import baselines as power_baselines
from reproduction.power_system.env import PowerSystemEnv
from reproduction.power_system.model import angle_violations

from .helpers import ROOT


def random_problem(rng, K, nx=4, nu=2, N=6):
    A = np.eye(nx) + 0.15 * rng.standard_normal((K, nx, nx))
    B = rng.standard_normal((K, nx, nu))
    bounds = SoftStateBounds(
        C=np.eye(nx)[:2], lb=-0.2 * np.ones(2), ub=0.2 * np.ones(2), weight=np.array([30.0, 5])
    )
    Q = np.diag(rng.uniform(0.5, 2, nx))
    return A, B, bounds, Q, 0.3 * np.eye(nu), 2 * Q


def direct_solution(A, B, bounds, Q, R, Q_N, gamma, x0, w, r, v, u_max, release=False):
    """The same scenario MPC with the states as variables, solved by IPOPT; with
    ``release``, the bounds on x_1..x_{N-1} only and the slack of x_t's bound discounted
    by gamma^t."""
    K, nx, nu, N = A.shape[0], A.shape[1], B.shape[2], w.shape[2]
    opti = cs.Opti()
    u = opti.variable(nu, N)
    opti.subject_to(opti.bounded(-u_max, cs.vec(u), u_max))
    cost = 0
    for t in range(N):
        cost += K * gamma**t * cs.bilin(R, u[:, t] - v, u[:, t] - v)
    for k in range(K):
        x = opti.variable(nx, N + 1)
        s = opti.variable(2, N)
        opti.subject_to(x[:, 0] == x0)
        opti.subject_to(cs.vec(s) >= 0)
        for t in range(N):
            opti.subject_to(x[:, t + 1] == A[k] @ x[:, t] + B[k] @ u[:, t] + w[k, :, t])
            if not (release and t + 1 == N):
                Cx = bounds.C @ x[:, t + 1]
                opti.subject_to(Cx + s[:, t] >= bounds.lb)
                opti.subject_to(Cx - s[:, t] <= bounds.ub)
                slack_gamma = gamma ** (t + 1 if release else t)
                cost += slack_gamma * cs.dot(bounds.weight, s[:, t])
            if t >= 1:
                cost += gamma**t * cs.bilin(Q, x[:, t] - r, x[:, t] - r)
        cost += gamma**N * cs.bilin(Q_N, x[:, N] - r, x[:, N] - r)
    opti.minimize(cost)
    opti.solver("ipopt", {"print_time": False}, {"print_level": 0, "sb": "yes", "tol": 1e-10})
    return np.asarray(opti.solve().value(u[:, 0])).reshape(-1)


@pytest.mark.parametrize("solver, release", [("highs", False), ("ipopt", False), ("highs", True)])
def test_condensed_scenario_mpc_equals_the_direct_formulation(quiet, solver, release):
    """Random models, disturbances, set points and a state that makes the soft bounds
    bind: the first inputs agree to 1e-5, with the bounds on every predicted state or,
    as the release, on all but the last (their slacks discounted one step more)."""
    rng = np.random.default_rng(0)
    K, N = 3, 6
    A, B, bounds, Q, R, Q_N = random_problem(rng, K, N=N)
    release_args = {"bounded_steps": range(1, N), "slack_discount_shift": 0} if release else {}
    mpc = ScenarioMpc(
        A, B, N, 0.9, Q, R, bounds, -np.ones(2), np.ones(2), Q_N, solver=solver, **release_args
    )
    x0 = np.array([0.5, -0.4, 0.1, 0.2])
    w = 0.05 * rng.standard_normal((K, 4, N))
    r, v = 0.1 * rng.standard_normal(4), 0.1 * rng.standard_normal(2)
    answer = mpc.solve(x0, w, r, v)
    assert answer.success, answer.status
    expected = direct_solution(A, B, bounds, Q, R, Q_N, 0.9, x0, w, r, v, 1.0, release)
    np.testing.assert_allclose(answer.u0, expected, atol=1e-5)
    other = direct_solution(A, B, bounds, Q, R, Q_N, 0.9, x0, w, r, v, 1.0, not release)
    assert np.abs(answer.u0 - other).max() > 5e-5  # the two formulations differ here


def test_bounded_steps_are_checked():
    rng = np.random.default_rng(3)
    A, B, bounds, Q, R, Q_N = random_problem(rng, 1)
    for steps in ([0, 1], [7], [2, 2], []):
        with pytest.raises(ValueError, match="bounded_steps"):
            ScenarioMpc(A, B, 6, 1.0, Q, R, bounds, -np.ones(2), np.ones(2), bounded_steps=steps)


def test_identical_scenarios_are_the_nominal_mpc(quiet):
    """K copies of one model and disturbance: the input cost counts K times, so the
    first input is the nominal MPC's."""
    rng = np.random.default_rng(1)
    A, B, bounds, Q, R, Q_N = random_problem(rng, 1)
    w = 0.05 * rng.standard_normal((1, 4))
    x0 = rng.uniform(-0.3, 0.3, 4)
    nominal = ScenarioMpc(A, B, 6, 1.0, Q, R, bounds, -np.ones(2), np.ones(2), Q_N)
    four = ScenarioMpc(
        np.repeat(A, 4, 0), np.repeat(B, 4, 0), 6, 1.0, Q, R, bounds, -np.ones(2), np.ones(2), Q_N
    )
    np.testing.assert_allclose(
        four.solve(x0, np.repeat(w, 4, 0)).u0, nominal.solve(x0, w).u0, atol=1e-6
    )


def test_bad_disturbance_shape_is_refused():
    rng = np.random.default_rng(2)
    A, B, bounds, Q, R, Q_N = random_problem(rng, 2)
    mpc = ScenarioMpc(A, B, 6, 1.0, Q, R, bounds, -np.ones(2), np.ones(2), Q_N)
    with pytest.raises(ValueError, match="disturbances"):
        mpc.solve(np.zeros(4), np.zeros((3, 4)))


def script(name, *args, cwd=None):
    return subprocess.run(
        [sys.executable, str(ROOT / "example_1" / name), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
    )


def test_example_1_baselines_orderings(tmp_path):
    """The paper's ordering, over the full 100-step episode with K = 10: the scenario
    MPC with sampled models costs far less than the nominal MPC with the inaccurate
    model, and violates the state bounds on fewer steps."""
    out = tmp_path / "b.pkl"
    argv = ["--scenarios", "10", "--episodes", "1", "--workers", "2", "--out", str(out)]
    proc = script("baselines.py", *argv)
    assert proc.returncode == 0, proc.stderr
    result = load_result(out)
    assert result["kind"] == "example_1_baselines"
    labels = result["labels"]
    assert len(labels) == 4 and result["states"].shape == (4, 1, 101, 6)
    assert result["costs"].shape == result["solve_ms"].shape == (4, 1, 100)
    cost = dict(zip(labels, result["episode_costs"][:, 0], strict=True))
    violations = dict(zip(labels, result["violating_steps"][:, 0], strict=True))
    nominal, scenario = "nominal, inaccurate model", "scenario K=10, sampled models"
    assert cost[scenario] < 0.2 * cost[nominal]
    assert violations[scenario] < violations[nominal]
    # the episode's own costs are the env's: recomputed from the recorded trajectory
    states, actions = result["states"][0, 0], result["actions"][0, 0]
    recomputed = [model.stage_costs(x, u).sum() for x, u in zip(states[:-1], actions, strict=True)]
    np.testing.assert_allclose(recomputed, result["costs"][0, 0], rtol=1e-5)  # float32
    assert scenario in proc.stdout and "total cost" in proc.stdout


def test_example_1_evaluation_of_checkpoints(tmp_path):
    """A short training run, evaluated after 0 and its last update, in two processes:
    the update-0 episode is the untrained policy's, the same whichever run it comes
    from; asking for more updates than the file has is one line, exit code 2."""
    train = tmp_path / "t.pkl"
    proc = script("example_1.py", "--steps", "8", "--no-progress", "--out", str(train))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "e.pkl"
    short = ["--updates", "0,4", "--steps", "12"]
    proc = script("evaluate.py", str(train), *short, "--episodes", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = load_result(out)
    assert result["kind"] == "example_1_evaluation"
    assert list(result["updates"]) == [0, 4] and result["states"].shape == (2, 3, 13, 6)
    assert np.isfinite(result["episode_costs"]).all()
    assert not np.allclose(result["actions"][0], result["actions"][1])  # learning moved it
    assert len(set(result["episode_costs"][0])) == 3  # three noise realizations
    # the first episode is the one-episode evaluation's (the paper's), in any pool
    one = tmp_path / "one.pkl"
    proc = script("evaluate.py", str(train), *short, "--episodes", "1", "--out", str(one))
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(load_result(one)["costs"][:, 0], result["costs"][:, 0])

    proc = script("evaluate.py", str(train), "--updates", "5", "--out", str(tmp_path / "x.pkl"))
    assert proc.returncode == 2 and "has 4 updates" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

    proc = script("evaluate.py", str(out), "--out", str(tmp_path / "y.pkl"))
    assert proc.returncode == 2 and "not a training result" in proc.stderr

    shared = tmp_path / "shared.pkl"
    proc = script("evaluate.py", str(train), *short, "--shared-noise", "--out", str(shared))
    assert proc.returncode == 0, proc.stderr
    result = load_result(shared)
    assert result["noise"] == "shared by the agents"
    A, B = model.network_matrices(model.TRUE, model.network())
    x, u = result["states"][0, 0], result["actions"][0, 0]
    w = (x[1:] - x[:-1] @ A.T - u @ B.T)[:, 0::2]  # every agent's first state
    assert np.abs(w - w[:, :1]).max() < 1e-7 and np.ptp(w[:, 0]) > 0.01  # float32 states
    proc = script("evaluate.py", str(train), "--noise-from", str(train), "--out", str(shared))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_example_1_evaluation_of_a_studys_final_policies(tmp_path):
    """Given a sweep summary, evaluate.py evaluates the final policy of every completed
    run (labelled by seed) with that run's own configuration; --updates is refused."""
    import dataclasses

    from reproduction.example_1.config import Example1Config
    from reproduction.example_1.evaluate import run_checkpoint

    summary_path = ROOT / "data" / "robustness" / "example_1_distributed_default.pkl"
    summary = load_result(summary_path)
    out = tmp_path / "e.pkl"
    proc = script(
        "evaluate.py", str(summary_path), "--steps", "3", "--episodes", "1", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    result = load_result(out)
    completed = [run for run in summary["runs"] if run["status"] == "completed"]
    assert list(result["seeds"]) == [run["seed"] for run in completed]
    assert list(result["labels"]) == [f"seed {run['seed']}" for run in completed]
    run = completed[-1]
    config = dataclasses.asdict(Example1Config(**run["config"]))
    noise = {"shared": False, "sequence": None, "source": None}
    (episode,) = run_checkpoint((config, run["final_parameters"], [0], 0, 3, noise))
    np.testing.assert_array_equal(result["actions"][-1, 0], episode["actions"].astype(np.float32))
    proc = script(
        "evaluate.py", str(summary_path), "--updates", "0", "--out", str(tmp_path / "x.pkl")
    )
    assert proc.returncode == 2 and "final policies only" in proc.stderr


@pytest.mark.slow
def test_example_1_paper_orderings_full_run(tmp_path):
    """The paper's orderings with our own full runs (about 5 minutes): after 10,000
    updates of a 20,000-step run the learned policy costs less than the scenario MPC
    with 25 sampled models, which costs far less than the nominal MPC with the
    inaccurate model and violates less."""
    train, evaluation, baselines = (tmp_path / n for n in ("t.pkl", "e.pkl", "b.pkl"))
    proc = script("example_1.py", "--steps", "20000", "--no-progress", "--out", str(train))
    assert proc.returncode == 0, proc.stderr
    one = ("--episodes", "1")
    proc = script("evaluate.py", str(train), "--updates", "10000", *one, "--out", str(evaluation))
    assert proc.returncode == 0, proc.stderr
    proc = script("baselines.py", "--scenarios", "25", *one, "--out", str(baselines))
    assert proc.returncode == 0, proc.stderr
    learned = load_result(evaluation)["episode_costs"][0, 0]
    base = load_result(baselines)
    cost = dict(zip(base["labels"], base["episode_costs"][:, 0], strict=True))
    violations = dict(zip(base["labels"], base["violating_steps"][:, 0], strict=True))
    nominal, scenario = "nominal, inaccurate model", "scenario K=25, sampled models"
    assert learned < cost[scenario] < 0.2 * cost[nominal]
    assert violations[scenario] < violations[nominal]


def power_script(name, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "power_system" / name), *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_power_system_evaluation_and_baselines(tmp_path):
    """One training episode, its policy and the baselines over the same two shortened
    evaluation episodes, in two processes: the documented fields and shapes, the
    angle-violation counts from the recorded states, the nominal MPC's first action
    the same in both episodes (it sees no noise at the start)."""
    train = tmp_path / "t.pkl"
    proc = power_script(
        "q_learning_power.py", "--episodes", "1", "--no-progress", "--out", str(train)
    )
    assert proc.returncode == 0, proc.stderr
    evaluation = tmp_path / "e.pkl"
    proc = power_script(
        "evaluate.py", str(train), "--episodes", "2", "--steps", "10", "--out", str(evaluation)
    )
    assert proc.returncode == 0, proc.stderr
    result = load_result(evaluation)
    assert result["kind"] == "power_system_evaluation" and list(result["updates"]) == [1]
    assert result["states"].shape == (1, 2, 11, 16) and result["costs"].shape == (1, 2, 10)

    baselines = tmp_path / "b.pkl"
    proc = power_script(
        "baselines.py",
        "--episodes",
        "2",
        "--steps",
        "10",
        "--scenarios",
        "3",
        "--out",
        str(baselines),
    )
    assert proc.returncode == 0, proc.stderr
    base = load_result(baselines)
    assert base["labels"] == ["nominal", "scenario K=3"]
    assert base["states"].shape == (2, 2, 11, 16) and base["actions"].shape == (2, 2, 10, 4)
    np.testing.assert_allclose(base["actions"][0, 0, 0], base["actions"][0, 1, 0])
    counts = [[angle_violations(ep[1:]).sum() for ep in eps] for eps in base["states"]]
    np.testing.assert_array_equal(counts, base["violating_steps"])
    assert "mean episode cost" in proc.stdout

    proc = power_script(
        "evaluate.py", str(train), "--update", "3", "--out", str(tmp_path / "x.pkl")
    )
    assert proc.returncode == 2 and "has 1 updates" in proc.stderr


def test_scenario_mpc_fallback_gives_the_ipopt_inputs(quiet):
    """Over 60 steps of a power-system episode with 50 scenarios, some of whose QPs
    CasADi marks failed under HiGHS (they come back as zeros), the closed loop with
    HiGHS and its IPOPT fallback applies IPOPT's inputs (1e-6)."""

    runs = {}
    for solver in ("highs", "ipopt"):
        mpc, Ld = power_baselines.build_mpc(50, solver)
        controller = MpcController(mpc, power_baselines.mpc_inputs(Ld, 50, noise=True))
        runs[solver] = (run_episode(PowerSystemEnv(max_steps=60), controller, 0, 5), mpc)
    (highs, highs_mpc), (ipopt, _) = runs["highs"], runs["ipopt"]
    assert highs_mpc.fallbacks > 0  # the case this guards against did occur
    np.testing.assert_allclose(highs["actions"], ipopt["actions"], atol=1e-6)


@pytest.mark.slow
def test_power_system_paper_orderings_full_training(tmp_path):
    """The paper's orderings with our own 100-episode training run, over 10 paired
    evaluation episodes (about 5 minutes): the learned policy costs less than the
    scenario MPC with 50 scenarios, which costs less than the nominal MPC; the learned
    policy keeps every angle within its bound."""
    train, evaluation, baselines = (tmp_path / n for n in ("t.pkl", "e.pkl", "b.pkl"))
    proc = power_script(
        "q_learning_power.py", "--episodes", "100", "--no-progress", "--out", str(train)
    )
    assert proc.returncode == 0, proc.stderr
    proc = power_script("evaluate.py", str(train), "--episodes", "10", "--out", str(evaluation))
    assert proc.returncode == 0, proc.stderr
    proc = power_script(
        "baselines.py", "--episodes", "10", "--scenarios", "50", "--out", str(baselines)
    )
    assert proc.returncode == 0, proc.stderr
    learned = load_result(evaluation)
    base = load_result(baselines)
    nominal, scenario = base["episode_costs"].mean(axis=1)
    assert learned["episode_costs"].mean() < scenario < nominal
    assert learned["violating_steps"].sum() == 0
    assert base["violating_steps"][1].sum() < base["violating_steps"][0].sum()


def test_the_process_pool_changes_no_number():
    """The same baseline episodes in this process and in a pool of two, bit for bit
    (all but the measured solve times)."""
    from marl_dmpc.evaluation import run_jobs
    from reproduction.example_1 import baselines as example_1_baselines

    noise = {"shared": False, "sequence": None, "source": None}
    jobs = [(kind, 1, [0, 1], 1, 0, 8, "ipopt", noise, False) for kind in ("inaccurate", "true")]
    alone = run_jobs(example_1_baselines.run_baseline, jobs, 1)
    pooled = run_jobs(example_1_baselines.run_baseline, jobs, 2)
    for a, b in zip(sum(alone, []), sum(pooled, []), strict=True):
        assert a.keys() == b.keys()
        for key in a.keys() - {"solve_ms"}:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_result_written_before_a_setting_existed_still_loads():
    """A training result whose config lacks settings added since (their defaults are
    the method as it was) is read with those defaults; an unknown setting is refused."""
    import dataclasses

    from marl_dmpc.evaluation import training_config
    from marl_dmpc.results import ResultFileError
    from reproduction.example_1.config import Example1Config

    config = dataclasses.asdict(Example1Config(seed=4))
    older = {k: v for k, v in config.items() if k not in {"td_clip", "stabilized"}}
    read = training_config({"kind": "training", "config": older}, Example1Config, "example 1")
    assert read == Example1Config(seed=4)
    with pytest.raises(ResultFileError, match="config differs"):
        training_config({"kind": "training", "config": {**config, "x": 1}}, Example1Config, "e")
