"""The second-order (regularized Newton) update: its distributed form, each agent's share
from its own terms and a consensus on ``C``, is the centralized Newton step on the
same replay sample (marl_dmpc/learning/newton.py derives both)."""

from __future__ import annotations

import numpy as np
import pytest

from marl_dmpc.learning.newton import LocalNewtonTerms, local_newton_step, newton_step


def _distributed(gradients, td, hessians, tau, lr, consensus=None):
    """Every agent's step, ``C`` summed exactly or by ``consensus`` (each agent its own
    estimate)."""
    terms = [LocalNewtonTerms(g, td, k, tau) for g, k in zip(gradients, hessians, strict=True)]
    T = len(td)
    if consensus is None:
        Cs = [sum(t.term for t in terms)] * len(terms)
    else:
        estimates = consensus.sum(np.stack([t.term.reshape(-1) for t in terms]))
        Cs = [e.reshape(T, T) for e in estimates]
    return [local_newton_step(t, C, td, lr) for t, C in zip(terms, Cs, strict=True)]


def _gap(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("T", [4, 15, 40])
def test_the_distributed_step_is_the_newton_step_on_random_data(T):
    """Three agents of 5, 7 and 3 parameters, with curvature terms, one of them so large
    that its block needs the added identity: both forms regularize block by block and
    agree, and they are the plain ``-lr H^{-1} r`` where no block needs it."""
    rng = np.random.default_rng(T)
    sizes = (5, 7, 3)
    G = [rng.standard_normal((d, T)) for d in sizes]
    td = rng.standard_normal(T)
    K = [rng.standard_normal((T, d, d)) * s for d, s in zip(sizes, (0.01, 0.01, 50.0), strict=True)]
    K = [0.5 * (k + k.transpose(0, 2, 1)) for k in K]
    tau, lr = 1e-2, 0.3
    central = newton_step(G, td, K, tau, lr)
    assert _gap(central, _distributed(G, td, K, tau, lr)) < 1e-9 * max(
        np.abs(c).max() for c in central
    )
    K = [k * 1e-6 for k in K]  # now every block is positive definite: the textbook step
    stacked = np.vstack(G)
    D = np.zeros((sum(sizes), sum(sizes)))
    start = 0
    for d, k in zip(sizes, K, strict=True):
        D[start : start + d, start : start + d] = tau * np.eye(d) - np.tensordot(td, k, 1) / T
        start += d
    H = stacked @ stacked.T / T + D
    expected = -lr * np.linalg.solve(H, -stacked @ td / T)
    got = np.concatenate(_distributed(G, td, K, tau, lr))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.concatenate(newton_step(G, td, K, tau, lr)), expected, rtol=1e-9)


def _replay_sample(setup, episodes, T, seed=0):
    """A real replay sample of a distributed run: ``T`` transitions drawn from a short
    training run, each with its TD error and every agent's local gradient and second
    derivative of its Lagrangian (taken where Q was solved, before any later solve)."""
    learner = setup.learner
    seen = []
    action_value, store = learner.action_value, learner._store_experience

    def capture_q(*args, **kwargs):
        q = action_value(*args, **kwargs)
        seen.append({"g": [g.copy() for g in q.gradients], "k": q.hessians(learner.local_mpcs)})
        return q

    def capture_td(costs, q, sol_v):
        seen[-1]["td"] = store(costs, q, sol_v)
        return seen[-1]["td"]

    learner.action_value, learner._store_experience = capture_q, capture_td
    learner.train(setup.env, episodes, seed=1)
    seen = [s for s in seen if "td" in s]
    pick = np.random.default_rng(seed).choice(len(seen), T, replace=False)
    n = len(seen[0]["g"])
    G = [np.column_stack([seen[t]["g"][i] for t in pick]) for i in range(n)]
    K = [np.stack([seen[t]["k"][i] for t in pick]) for i in range(n)]
    return G, np.array([seen[t]["td"] for t in pick]), K, learner


def _example_1():
    from reproduction.example_1.config import Example1Config
    from reproduction.example_1.example_1 import setup

    return setup(Example1Config(steps=40)), 1


def _power_system():
    from reproduction.power_system.config import PowerSystemConfig
    from reproduction.power_system.q_learning_power import setup

    return setup(PowerSystemConfig(episodes=1, episode_steps=30)), 1


def _second_order():
    from reproduction.second_order.config import SecondOrderConfig
    from reproduction.second_order.second_order import setup

    return setup(SecondOrderConfig(steps=40)), 1


@pytest.mark.parametrize(
    "example",
    [_example_1, _power_system, _second_order],
    ids=["example_1", "power_system", "second_order"],
)
def test_the_distributed_newton_step_is_the_centralized_one_on_a_real_replay_sample(example):
    """On 15 transitions of a real run (the replay sample size of both examples' settings),
    the agents' steps from their own terms and the exact sum of ``C`` equal the
    centralized Newton step to 1e-9 of its size (measured: 1e-10 for example 1, 1e-12 for
    the power system); with the learner's 100 consensus iterations instead of the exact
    sum, to the consensus's own error. Example 1's parameters enter its Lagrangian
    linearly, so its curvature term is zero; the power system's tie-line coefficients
    enter through the discretization's matrix exponential, so its is not."""
    setup, episodes = example()
    G, td, K, learner = _replay_sample(setup, episodes, 15)
    curvature = max(float(np.abs(k).max()) for k in K)
    if example is _example_1:
        assert curvature == 0.0
    else:
        assert curvature > 1e-5
    tau, lr = 1e-3, 1e-2
    central = newton_step(G, td, K, tau, lr)
    scale = max(float(np.abs(c).max()) for c in central)
    assert scale > 0
    assert _gap(central, _distributed(G, td, K, tau, lr)) < 1e-9 * scale
    by_consensus = _distributed(G, td, K, tau, lr, learner.consensus)
    assert _gap(central, by_consensus) < max(1e-9, 10 * learner.consensus.error_bound) * scale


def test_a_distributed_newton_run_takes_the_newton_step():
    """``--optimizer newton``: the last update of a short run moves every agent's
    parameters by the Newton step of its replay sample (the learner's 100 consensus
    iterations are exact to 1e-12 on example 1's three agents), the learning rate times
    ``H^{-1}`` of the TD errors' gradient."""
    from marl_dmpc.config import ConfigError
    from reproduction.example_1.config import Example1Config
    from reproduction.example_1.example_1 import setup

    config = Example1Config(
        steps=12, optimizer="newton", newton_tau=1e-2, learning_rate=0.05, learning_rate_decay=1.0
    )
    learner = (run := setup(config)).learner
    seen = []
    directions = learner._newton_directions

    def capture(sample):
        seen.append((sample, [p.parameters.value.copy() for p in learner.learnable]))
        return directions(sample)

    learner._newton_directions = capture
    learner.train(run.env, 1, seed=1)
    assert len(seen) == 6  # one update every 2 steps
    sample, before = seen[-1]
    after = [p.parameters.value for p in learner.learnable]
    n = len(before)
    td = np.array([item[0][0] for item in sample])
    G = [np.column_stack([item[i][1] for item in sample]) for i in range(n)]
    K = [np.stack([item[i][2] for item in sample]) for i in range(n)]
    expected = newton_step(G, td, K, 1e-2, 0.05)
    moved = [a - b for a, b in zip(after, before, strict=True)]
    assert _gap(moved, expected) < 1e-9 * max(np.abs(e).max() for e in expected)
    with pytest.raises(ConfigError, match="optimizer"):
        Example1Config(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="newton_tau"):
        Example1Config(optimizer="newton", newton_tau=0.0)


@pytest.mark.parametrize(
    "example", ["example_1", "power_system"], ids=["example_1", "power_system"]
)
def test_centralized_and_distributed_newton_runs_take_the_same_steps(example):
    """With the same seed a centralized and a distributed Newton run draw the same
    exploration and replay samples, so their first updates agree to the ADMM's tolerance
    (measured on example 1: 1e-13 after one update, 4e-11 after ten, against steps of
    1.5e-5; the closed loop then amplifies the difference)."""
    if example == "example_1":
        from reproduction.example_1.config import Example1Config as Config
        from reproduction.example_1.example_1 import setup

        length = {"steps": 20, "learning_rate": 1e-3}
    else:
        from reproduction.power_system.config import PowerSystemConfig as Config
        from reproduction.power_system.q_learning_power import setup

        length = {"episodes": 1, "episode_steps": 20, "update_every": 4, "learning_rate": 1e-6}
        length["update_hook"] = "on_timestep_end"
    histories = []
    for centralized in (False, True):
        run = setup(Config(optimizer="newton", centralized=centralized, **length))
        run.learner.train(run.env, run.episodes, seed=1)
        histories.append(run.learner.log.parameters)
    distributed, centralized = histories
    moved = max(
        float(np.abs(np.asarray(distributed[name][-1]) - np.asarray(distributed[name][0])).max())
        for name in distributed
    )
    assert moved > 0
    for name in distributed:
        gap = np.abs(np.asarray(distributed[name][1]) - np.asarray(centralized[name][1])).max()
        assert gap < 1e-6 * moved, name


def test_the_follow_ups_variant_is_the_step_with_its_blocks_divided_by_T():
    """The follow-up's distributed step, ``lr D_i^{-1} G_i (I + C)^{-1} delta`` with its
    ``D_i = tau I - (1/T) sum_t delta_t K_t`` and ``C = sum_i G_i^T D_i^{-1} G_i``, is the
    exact Newton step with every block divided by ``T`` (``newton_variant
    "follow_up"``), in the distributed and the centralized form alike."""
    from marl_dmpc.learning.newton import block_scale, curvature_block

    rng = np.random.default_rng(7)
    T, sizes, tau, lr = 15, (4, 6, 3), 1e-3, 1e-4
    G = [rng.standard_normal((d, T)) for d in sizes]
    td = rng.standard_normal(T)
    K = [1e-4 * rng.standard_normal((T, d, d)) for d in sizes]  # every block positive definite
    K = [0.5 * (k + k.transpose(0, 2, 1)) for k in K]
    D = [curvature_block(td, k, tau, d) for k, d in zip(K, sizes, strict=True)]
    C = sum(g.T @ np.linalg.solve(d, g) for g, d in zip(G, D, strict=True))
    theirs = [
        lr * np.linalg.solve(d, g) @ np.linalg.solve(np.eye(T) + C, td)
        for g, d in zip(G, D, strict=True)
    ]
    scale = block_scale("follow_up", T)
    terms = [LocalNewtonTerms(g, td, k, tau, scale) for g, k in zip(G, K, strict=True)]
    C_scaled = sum(t.term for t in terms)
    ours = [local_newton_step(t, C_scaled, td, lr) for t in terms]
    size = max(np.abs(x).max() for x in theirs)
    assert _gap(ours, theirs) < 1e-9 * size
    assert _gap(newton_step(G, td, K, tau, lr, scale), theirs) < 1e-9 * size
    exact = newton_step(G, td, K, tau, lr)
    assert _gap(exact, theirs) > 1e-3 * size  # a different step
