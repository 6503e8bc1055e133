"""Distributed and centralized learning with the same seed take the same steps."""

import contextlib
import io

import numpy as np
import pytest

from example_1.config import Example1Config
from example_1.env import CoupledLinearSystemsEnv
from marl_dmpc.envs import StepRecorder

from .helpers import load_example_script

example_1 = load_example_script()


def run(steps, centralized, seed, **overrides):
    config = Example1Config(steps=steps, seed=seed, centralized=centralized, **overrides)
    with contextlib.redirect_stdout(io.StringIO()):
        learner = example_1.make_learner(config)
        env = StepRecorder(CoupledLinearSystemsEnv(max_steps=steps))
        learner.train(env, 1, seed=config.seed)
    return learner, env


def compare(steps, seed, check=False):
    cen, cen_env = run(steps, True, seed)
    dist, dist_env = run(
        steps, False, seed, admm_iters=1000, admm_tol=1e-9, check_centralized=check
    )
    pc, pd = cen.log.parameter_history(), dist.log.parameter_history()
    assert pc.keys() == pd.keys()
    return cen, dist, cen_env, dist_env


def test_same_seed_same_learning_until_multipliers_are_not_unique():
    """Same draws, same TD errors, same updates, step for step, up to the first Q(s, a)
    whose multipliers are not unique (flagged by the centralized check). Seed 42's first
    such step comes after 20 regular ones."""
    cen, dist, cen_env, dist_env = compare(40, seed=42, check=True)
    assert len(cen.log.td_errors) == len(dist.log.td_errors) == 40
    dual_error = np.array(dist.log.check["dual_error"])  # V(s0), then Q(s_t, a_t), V(s_t+1)
    degenerate = np.flatnonzero(dual_error[1::2] > 1e-4)
    first = int(degenerate[0]) if degenerate.size else 40
    assert first >= 8, "too few regular steps to compare"
    td_c, td_d = np.array(cen.log.td_errors), np.array(dist.log.td_errors)
    np.testing.assert_allclose(td_d[:first], td_c[:first], atol=1e-6)
    updates = first // 2  # an update after every 2nd step uses only earlier transitions
    pc, pd = cen.log.parameter_history(), dist.log.parameter_history()
    for name in pc:
        np.testing.assert_allclose(pd[name][: updates + 1], pc[name][: updates + 1], atol=1e-8)
    np.testing.assert_allclose(
        dist_env.episode_arrays(0)["states"][: first + 1],
        cen_env.episode_arrays(0)["states"][: first + 1],
        atol=1e-6,
    )
    assert np.abs(pc["f_1"][updates] - pc["f_1"][0]).max() > 0  # learning did happen


@pytest.mark.xfail(
    strict=True,
    reason="open: Q(s,a) is degenerate when V's solution puts x_1 on its soft bound "
    "(the first input fixes x_1, so the bound and the slack's sign constraint are both "
    "active and the multipliers are not unique); ADMM and the centralized solver then "
    "return different valid multipliers and the runs drift apart (issue 2)",
)
def test_same_seed_same_learning_100_steps():
    cen, dist, *_ = compare(100, seed=42)
    pc, pd = cen.log.parameter_history(), dist.log.parameter_history()
    assert max(np.abs(pc[k] - pd[k]).max() for k in pc) < 1e-4
    td_c, td_d = np.array(cen.log.td_errors), np.array(dist.log.td_errors)
    assert np.abs(td_c - td_d).max() < 1e-4
