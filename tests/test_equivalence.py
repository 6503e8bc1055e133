"""The paper's theorem: at ADMM convergence the distributed MPC is the centralized one.

At random states and parameter values the ADMM values of V(s) and Q(s, a) equal the
centralized MPC's, the local multipliers of the dynamics equal the centralized ones, and
each agent's local Lagrangian gradient equals its block of the centralized gradient.
"""

import casadi as cs
import numpy as np
import pytest
from csnlp.wrappers import NlpSensitivity

from marl_dmpc.admm import AdmmCoordinator
from marl_dmpc.blocks import dynamics_name
from marl_dmpc.config import AdmmSettings
from marl_dmpc.learning import CentralizedCheck
from marl_dmpc.local_mpc import LocalMpc
from marl_dmpc.mpc import INIT_ACTION, PERTURBATION
from reproduction.example_1 import model
from reproduction.example_1.config import Example1Config
from reproduction.example_1.mpc import Example1Mpc

SOLVER = "qpoases"
DEFAULT = Example1Config()
#: The project's default ADMM settings, and tight ones with plain ADMM
SETTINGS = {
    "default": DEFAULT.admm(),
    "tight": AdmmSettings(rho=DEFAULT.rho, admm_iters=3000, admm_tol=1e-10, admm_dual_tol=1e-10),
}


def plain_admm(net, local, iters: int, tol: float, memory: int = 0) -> AdmmCoordinator:
    """ADMM at example 1's rho with the same primal and dual tolerance."""
    settings = AdmmSettings(
        rho=DEFAULT.rho, admm_iters=iters, admm_tol=tol, admm_dual_tol=tol, admm_memory=memory
    )
    return AdmmCoordinator(net, local, settings)


@pytest.fixture(scope="module")
def setup():
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        definition = Example1Mpc(DEFAULT.horizon, DEFAULT.discount)
        net = model.network()
        local = [LocalMpc(definition, net, i, SOLVER) for i in range(3)]
        check = CentralizedCheck(definition, net, local, SOLVER)
    return definition, net, local, check


def random_case(definition, net, rng):
    """A state in the operating region and parameters perturbed around their initial
    values."""
    state = np.column_stack([rng.uniform(0.05, 0.9, 3), rng.uniform(-0.5, 0.5, 3)]).ravel()
    pars = {}
    for i in range(3):
        for name, value in definition.learnable_parameters(i, net).items():
            pars[name] = value + 0.03 * rng.standard_normal(np.shape(value))
    return state, pars


def agent_parameters(local, pars, state, kind, first):
    extra = PERTURBATION if kind == "V" else INIT_ACTION
    out = []
    for i, mpc in enumerate(local):
        p = {k: pars[k] for k in mpc.learnable_names}
        p[f"x{i}_0"] = state[2 * i : 2 * i + 2]
        p[extra] = first[i]
        out.append(p)
    return out


def centralized_solution(check, kind, pars, state, first):
    mpc = check._agent.V if kind == "V" else check._agent.Q
    p = dict(pars)
    for i in range(3):
        p[f"x{i}_0"] = state[2 * i : 2 * i + 2]
    p[PERTURBATION if kind == "V" else INIT_ACTION] = np.reshape(first, (-1, 1))
    sol = mpc.nlp.solve(p)
    assert sol.success, sol.status
    return mpc, sol


@pytest.mark.parametrize("settings", ["default", "tight"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["V", "Q"])
def test_admm_equals_centralized(setup, quiet, seed, kind, settings):
    """V and Q to 1e-6, the dynamics multipliers to 1e-5; at tight settings also the
    first actions to 1e-6 and every agent's gradient to 1e-5."""
    definition, net, local, check = setup
    rng = np.random.default_rng(seed)
    state, pars = random_case(definition, net, rng)
    first = rng.normal(size=3) * 0.5 if kind == "V" else rng.uniform(-0.8, 0.8, size=3)
    admm = AdmmCoordinator(net, local, SETTINGS[settings])
    result = admm.solve(kind, agent_parameters(local, pars, state, kind, first))
    assert result.success and result.converged, (result.iterations, result.statuses)
    mpc, sol = centralized_solution(check, kind, pars, state, first)

    assert abs(result.values.sum() - float(sol.f)) < 1e-6
    for i, (lmpc, lsol) in enumerate(zip(local, result.local, strict=True)):
        np.testing.assert_allclose(
            lmpc.dual(kind, dynamics_name(i), lsol),
            sol.dual_vals[f"lam_g_{dynamics_name(i)}"],
            atol=1e-5,
        )
    if settings == "default":
        return
    np.testing.assert_allclose(
        result.action,
        np.asarray(sol.vals["u0"]).ravel()[:1].tolist()
        + np.asarray(sol.vals["u1"]).ravel()[:1].tolist()
        + np.asarray(sol.vals["u2"]).ravel()[:1].tolist(),
        atol=1e-6,
    )

    # each agent's local gradient is its block of the centralized one
    nlp = mpc.nlp
    names = [n for lm in local for n in lm.learnable_names]
    theta = cs.vvcat([nlp.parameters[n] for n in names])
    grad = cs.Function(
        "g",
        [nlp.x, nlp.p, cs.vertcat(nlp.lam_g, nlp.lam_h)],
        [NlpSensitivity(nlp, theta).jacobian("L-p")],
    )
    central = np.asarray(grad(sol.x, sol.p, sol.lam_g_and_h)).ravel()
    local_grads = np.concatenate(
        [lm.gradient(ls, kind) for lm, ls in zip(local, result.local, strict=True)]
    )
    np.testing.assert_allclose(local_grads, central, atol=1e-5)


def test_q_at_v_action_is_v_without_perturbation(setup, quiet):
    """What the learners read off V(s) when a is V's own action: Q(s, a) equals V's cost
    without the exploration term."""
    definition, net, local, _ = setup
    rng = np.random.default_rng(3)
    state, pars = random_case(definition, net, rng)
    admm = plain_admm(net, local, 3000, 1e-10)
    perturbation = rng.normal(size=3)
    v = admm.solve("V", agent_parameters(local, pars, state, "V", perturbation))
    q = admm.solve("Q", agent_parameters(local, pars, state, "Q", v.action))
    costs = np.array([s.cost for s in v.local])
    np.testing.assert_allclose(costs.sum(), q.values.sum(), atol=1e-7)
    np.testing.assert_allclose(v.values - costs, perturbation * v.action, atol=1e-12)


def test_release_fixed_iterations_run_exactly_the_cap(setup, quiet):
    """Tolerance 0 is the release's plain ADMM: exactly the cap, no acceleration."""
    definition, net, local, _ = setup
    state, pars = random_case(definition, net, np.random.default_rng(5))
    parameters = agent_parameters(local, pars, state, "V", np.zeros(3))
    results = [plain_admm(net, local, 7, 0.0, memory).solve("V", parameters) for memory in (0, 10)]
    for result in results:
        assert result.iterations == 7 and not result.converged
        assert result.primal_residuals.shape == result.dual_residuals.shape == (7,)
    np.testing.assert_array_equal(results[0].primal_residuals, results[1].primal_residuals)


def test_anderson_acceleration_reaches_the_same_solution_sooner(setup, quiet):
    """From the same cold start, to the same tolerance: the same V and first actions
    (1e-7), in fewer iterations than plain ADMM."""
    definition, net, local, _ = setup
    state, pars = random_case(definition, net, np.random.default_rng(11))
    parameters = agent_parameters(local, pars, state, "V", np.zeros(3))
    plain, accelerated = (
        plain_admm(net, local, 5000, 1e-10, memory).solve("V", parameters) for memory in (0, 10)
    )
    assert plain.converged and accelerated.converged
    assert abs(plain.values.sum() - accelerated.values.sum()) < 1e-7
    np.testing.assert_allclose(plain.action, accelerated.action, atol=1e-7)
    assert accelerated.iterations < plain.iterations


def test_timing_the_agents_changes_no_number(setup, quiet):
    """With ``time_agents`` every agent's local work is timed per iteration (the
    own-machine time sums the slowest agent's per iteration), and the solve is the same
    to the last bit."""
    definition, net, local, _ = setup
    state, pars = random_case(definition, net, np.random.default_rng(7))
    parameters = agent_parameters(local, pars, state, "V", np.zeros(3))
    settings = AdmmSettings(rho=0.5, admm_iters=300, admm_tol=1e-9, admm_dual_tol=1e-8)
    start = [mpc.active_sets() for mpc in local]
    plain = AdmmCoordinator(net, local, settings).solve("V", parameters)
    for mpc, active_sets in zip(local, start, strict=True):  # the same warm start
        mpc.set_active_sets(active_sets)
    timed = AdmmCoordinator(net, local, settings, time_agents=True).solve("V", parameters)
    assert plain.agent_seconds is None
    np.testing.assert_array_equal(plain.primal_residuals, timed.primal_residuals)
    np.testing.assert_array_equal(plain.action, timed.action)
    seconds = timed.agent_seconds
    assert seconds.shape == (timed.iterations, 3) and (seconds > 0).all()
    assert timed.own_machine_seconds == seconds.max(axis=1).sum()
    assert timed.own_machine_seconds < seconds.sum()
