import os
import pickle

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from marl_dmpc.envs import AGENT_COSTS
from marl_dmpc.results import ResultFileError, load_result, save_result
from reproduction.example_1 import model
from reproduction.example_1.env import CoupledLinearSystemsEnv


def test_env_passes_gymnasium_checker():
    check_env(CoupledLinearSystemsEnv(max_steps=50), skip_render_check=True)


def test_env_dynamics_costs_and_seeded_noise():
    env = CoupledLinearSystemsEnv(max_steps=3)
    x0, _ = env.reset(seed=3)
    np.testing.assert_array_equal(x0, np.tile(model.X0, 3))
    u = np.array([0.5, -0.2, 1.0])
    x1, cost, terminated, truncated, info = env.step(u)
    w = x1 - (env.A @ x0 + env.B @ u)
    assert np.all(w[1::2] == 0) and np.all((w[0::2] <= 0) & (w[0::2] >= -0.1))
    np.testing.assert_allclose(info[AGENT_COSTS], model.stage_costs(x0, u))
    assert cost == pytest.approx(info[AGENT_COSTS].sum())
    env.reset(seed=3)
    x1_again, *_ = env.step(u)
    np.testing.assert_array_equal(x1, x1_again)  # the noise comes from the env's seed
    env.step(u)
    assert env.step(u)[3] and not terminated and not truncated  # truncated after 3 steps


def test_shared_noise_is_one_draw_per_step_for_every_agent():
    u = np.zeros(3)
    for shared in (False, True):
        env = CoupledLinearSystemsEnv(shared_noise=shared)
        x, _ = env.reset(seed=4)
        noise = []
        for _ in range(20):
            x_next, *_ = env.step(u)
            noise.append((x_next - (env.A @ x + env.B @ u))[0::2])
            x = x_next
        spread = np.ptp(np.array(noise), axis=1)
        assert np.all(spread < 1e-15) if shared else np.all(spread > 0)
    with pytest.raises(ValueError, match="shape"):
        CoupledLinearSystemsEnv(noise_sequence=np.zeros((5, 2)))


def test_stage_cost_penalizes_violations():
    x = np.array([-0.1, 0.0, 0.0, 1.5, 0.5, 0.0])
    costs = model.stage_costs(x, np.zeros(3))
    np.testing.assert_allclose(costs, [0.5 * (0.01 + 120 * 0.1), 0.5 * (2.25 + 120 * 0.5), 0.125])


def test_result_round_trip(tmp_path):
    result = {
        "states": np.random.default_rng(0).normal(size=(4, 6)),
        "params": {"A_0": np.ones((3, 2, 2), np.float32)},
        "config": {"steps": 3, "solver": "qpoases", "check": False, "tol": None},
        "wall_time_s": 1.5,
        "admm_iterations": [3, 4],
    }
    loaded = load_result(save_result(tmp_path / "sub" / "r.pkl", result))
    np.testing.assert_array_equal(loaded["states"], result["states"])
    assert loaded["params"]["A_0"].dtype == np.float32
    assert loaded["config"] == result["config"]
    assert not list((tmp_path / "sub").glob("*.tmp"))  # written atomically


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_arbitrary_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"states": np.zeros(2), "x": _Payload()}))
    with pytest.raises(ResultFileError, match="only plain data"):
        load_result(path)


def test_malformed_and_missing_files_are_refused(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ResultFileError, match="not a valid result file"):
        load_result(bad)
    notdict = tmp_path / "list.pkl"
    notdict.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ResultFileError, match="does not hold a result dict"):
        load_result(notdict)
    with pytest.raises(ResultFileError, match="no result file"):
        load_result(tmp_path / "missing.pkl")


def test_saving_refuses_non_plain_data(tmp_path):
    with pytest.raises(TypeError):
        save_result(tmp_path / "x.pkl", {"obj": object()})
