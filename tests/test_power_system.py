"""Example 2: the discretization, the plant, ADMM against the centralized MPC, and the
two learners on the same seed."""

import contextlib
import io

import casadi as cs
import numpy as np
import pytest
import scipy.linalg

from marl_dmpc.admm import AdmmCoordinator
from marl_dmpc.discretization import SCALED_NORM, squarings_for, zero_order_hold
from marl_dmpc.envs import StepRecorder, mpc_parameters
from marl_dmpc.learning import CentralizedCheck
from marl_dmpc.local_mpc import LocalMpc
from marl_dmpc.mpc import INIT_ACTION, PERTURBATION
from reproduction.power_system import model
from reproduction.power_system import q_learning_power as script
from reproduction.power_system.config import PowerSystemConfig
from reproduction.power_system.env import PowerSystemEnv, network_matrices
from reproduction.power_system.mpc import PowerSystemMpc

CONFIG = PowerSystemConfig()


def expm_zoh(A, B, ts):
    """The reference: the blocks of scipy's exp([[A, B], [0, 0]] ts)."""
    n, m = B.shape
    M = np.zeros((n + m, n + m))
    M[:n, :n], M[:n, n:] = A, B
    E = scipy.linalg.expm(M * ts)
    return E[:n, :n], E[:n, n:]


def test_zero_order_hold_equals_expm():
    A, B, L = network_matrices()
    held = np.hstack((B, L))
    Ad, Bd = zero_order_hold(A, held, model.TS)
    Ad_ref, Bd_ref = expm_zoh(A, held, model.TS)
    assert np.abs(Ad - Ad_ref).max() < 1e-10 and np.abs(Bd - Bd_ref).max() < 1e-10
    with pytest.raises(ValueError, match="squarings"):
        zero_order_hold(cs.SX.sym("A", 2, 2), np.ones((2, 1)), 1.0)


@pytest.mark.parametrize("area", range(model.N_AREAS))
def test_symbolic_zero_order_hold_at_the_true_values_equals_expm(area):
    """The learnable MPC's discretization, a CasADi expression of the tie-line
    coefficients, evaluated at the true ones."""
    neighbours = model.network().neighbours(area)
    tie = [cs.SX.sym(f"P_{j}") for j in neighbours]
    Ad, Bd, Ld, couplings = PowerSystemMpc(5, 0.9).discrete_model(area, tie)
    evaluate = cs.Function("zoh", tie, [Ad, cs.horzcat(Bd, Ld, *couplings)])
    true = [model.P_TIE[area, j] for j in neighbours]
    Ad_num, held_num = (np.asarray(v) for v in evaluate(*true))
    A, B, L, A_c = model.area_matrices(area, true)
    Ad_ref, held_ref = expm_zoh(A, np.hstack((B, L, *A_c)), model.TS)
    assert np.abs(Ad_num - Ad_ref).max() < 1e-10
    assert np.abs(held_num - held_ref).max() < 1e-10


@pytest.mark.parametrize("area", range(model.N_AREAS))
def test_symbolic_zero_order_hold_keeps_its_accuracy_away_from_the_nominal_values(area):
    """The squarings are chosen at the nominal tie-line coefficients with a margin of 4:
    the minimal number that scales 4 ||A ts|| to at most SCALED_NORM, and with them the
    discretization still equals expm at coefficients twice and half the nominal ones."""
    neighbours = model.network().neighbours(area)
    true = [model.P_TIE[area, j] for j in neighbours]
    A = model.area_matrices(area, true)[0]
    s = squarings_for(A, model.TS)
    norm = 4 * np.abs(A).sum(axis=0).max() * model.TS
    assert norm / 2**s <= SCALED_NORM and (s == 0 or norm / 2 ** (s - 1) > SCALED_NORM)
    tie = [cs.SX.sym(f"P_{j}") for j in neighbours]
    Ad, Bd, Ld, couplings = PowerSystemMpc(5, 0.9).discrete_model(area, tie)
    evaluate = cs.Function("zoh", tie, [Ad, cs.horzcat(Bd, Ld, *couplings)])
    for factor in (0.5, 2.0):
        moved = [factor * p for p in true]
        Ad_num, held_num = (np.asarray(v) for v in evaluate(*moved))
        A_m, B, L, A_c = model.area_matrices(area, moved)
        Ad_ref, held_ref = expm_zoh(A_m, np.hstack((B, L, *A_c)), model.TS)
        assert np.abs(Ad_num - Ad_ref).max() < 1e-10, factor
        assert np.abs(held_num - held_ref).max() < 1e-10, factor


def test_plant_without_noise_matches_the_discrete_model():
    """CVODES over each step against the exact discretization, inputs held."""
    env = PowerSystemEnv(noise=False)
    x, _ = env.reset(seed=0)
    A, B, L = network_matrices()
    Ad, Bd = zero_order_hold(A, np.hstack((B, L)), model.TS)
    u = np.array([0.05, -0.02, 0.1, 0.0])
    for k in range(1, 61):
        x_next, *_ = env.step(u)
        expected = Ad @ x + Bd @ np.r_[u, model.scheduled_load(k)]
        assert np.abs(x_next - expected).max() < 1e-6, k
        x = x_next


def test_env_schedule_noise_and_mpc_parameters():
    env = StepRecorder(PowerSystemEnv())
    env.reset(seed=3)
    assert all(np.all(v == 0) for v in mpc_parameters(env).values())
    for _ in range(5):
        _, cost, _, _, info = env.step(np.zeros(4))
        assert cost == pytest.approx(info["agent_costs"].sum())
    pars = mpc_parameters(env)  # through the wrapper: the load of step 5
    np.testing.assert_array_equal(pars["load_0"], [0.15])
    np.testing.assert_array_equal(pars["x_o_0"], [0, 0, 0.15, 0.15])
    np.testing.assert_array_equal(pars["u_o_1"], [0.0])
    # the same seed, the same noise; another seed, other noise
    runs = []
    for seed in (3, 3, 4):
        e = PowerSystemEnv()
        e.reset(seed=seed)
        runs.append(np.array([e.step(np.zeros(4))[0] for _ in range(3)]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.abs(runs[0] - runs[2]).max() > 1e-4


@pytest.fixture(scope="module")
def problems():
    with contextlib.redirect_stdout(io.StringIO()):
        definition = PowerSystemMpc(CONFIG.horizon, CONFIG.discount)
        net = model.network()
        local = [LocalMpc(definition, net, i, "qpoases") for i in range(4)]
        check = CentralizedCheck(definition, net, local, "qpoases")
    return definition, net, local, check


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["V", "Q"])
def test_admm_equals_centralized(problems, quiet, seed, kind):
    """At a random state, load and parameters near their initial values, with the
    default ADMM settings from a cold start: V or Q to 1e-6 and the dynamics multipliers
    to 1e-4 (they are of order 100 here)."""
    definition, net, local, check = problems
    rng = np.random.default_rng(seed)
    state = rng.uniform(-0.05, 0.05, 16)
    load = rng.uniform(-0.15, 0.15, 4)
    first = rng.normal(size=4) * 0.04 if kind == "V" else rng.uniform(-0.1, 0.1, 4)
    x_o, u_o = model.set_points(load)
    extra = PERTURBATION if kind == "V" else INIT_ACTION
    agents, merged = [], {}
    for i in range(4):
        pars = {
            name: value + 0.01 * rng.standard_normal(np.shape(value)) * np.abs(value).max()
            for name, value in definition.learnable_parameters(i, net).items()
        }
        pars.update({f"load_{i}": load[i : i + 1], f"x_o_{i}": x_o[i], f"u_o_{i}": u_o[i]})
        merged.update(pars)
        agents.append({**pars, f"x{i}_0": state[4 * i : 4 * i + 4], extra: first[i : i + 1]})
    admm = AdmmCoordinator(net, local, CONFIG.admm())
    result = admm.solve(kind, agents)
    assert result.success and result.converged, result.iterations
    errors = check.compare(kind, result, merged, state, first)
    assert errors[f"{kind.lower()}_error"] < 1e-6
    assert errors["dual_error"] < 1e-4


def train(centralized: bool, episodes: int = 2):
    config = PowerSystemConfig(episodes=episodes, centralized=centralized)
    with contextlib.redirect_stdout(io.StringIO()):
        learner = script.build_learner(config)
        env = StepRecorder(PowerSystemEnv(max_steps=config.episode_steps))
        learner.train(env, episodes, seed=config.seed)
    return learner, env


def test_distributed_and_centralized_learn_the_same_parameters():
    """Two episodes (two updates), same seed, default settings."""
    dist, _ = train(False)
    cen, _ = train(True)
    pd, pc = dist.log.parameter_history(), cen.log.parameter_history()
    assert pd.keys() == pc.keys() and "P_tie_2_3" in pd and "Q_x_2" in pd
    assert len(pd["V0_0"]) == 3  # initial value and one update per episode
    gap = max(np.abs(pd[k] - pc[k]).max() for k in pd)
    assert gap < 1e-4
    # and every parameter that learning moved, by the same amount (measured: within 2 %)
    moved = 0
    for name in pd:
        change = np.abs(pc[name][-1] - pc[name][0]).max()
        if change > 1e-6:
            moved += 1
            assert np.abs(pd[name] - pc[name]).max() < 0.1 * change, name
    assert moved >= 10


def test_the_load_noise_of_an_episode_can_be_replayed():
    """``reset(options={"load_noise": ...})`` replays an episode's noise instead of drawing
    it: the seed then changes nothing, and the drawn noise replayed gives the drawn episode."""
    from reproduction.power_system.env import PowerSystemEnv

    def episode(env, seed, options=None):
        env.reset(seed=seed, options=options)
        return np.array([env.step(np.zeros(4))[0] for _ in range(6)]), env.state()["_x"]

    env = PowerSystemEnv(max_steps=6)
    drawn_costs, drawn_x = episode(env, 3)
    noise = np.random.default_rng(3).uniform(-0.1, 0.1, (6, 4))  # what reset(seed=3) draws
    env.reset(seed=3)
    assert np.allclose(env.np_random.uniform(-0.1, 0.1, (6, 4)), noise)  # the same stream
    replay_costs, replay_x = episode(env, 99, {"load_noise": noise})
    np.testing.assert_allclose(replay_x, drawn_x, atol=1e-12)
    np.testing.assert_allclose(replay_costs, drawn_costs, atol=1e-12)
    again, _ = episode(env, 5)  # the next reset draws again
    assert not np.allclose(again, drawn_costs)
    with pytest.raises(ValueError, match="shape"):
        env.reset(options={"load_noise": np.zeros((6, 3))})
