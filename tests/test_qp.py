"""Re-solving a QP from its last active set gives the solver's optimum."""

import casadi as cs
import numpy as np
import pytest

from marl_dmpc.casadi_call import BufferedFunction
from marl_dmpc.qp import ActiveSetQp, FreshConic


def test_active_set_reuse_matches_the_solver(quiet):
    rng = np.random.default_rng(0)
    n, m = 8, 5
    w = cs.SX.sym("w", n)
    fixed = cs.SX.sym("fixed", 2)  # moves the constraints
    moving = cs.SX.sym("moving", n)  # moves the linear term only
    p = cs.vertcat(fixed, moving)
    M = rng.normal(size=(n, n))
    H = M @ M.T + 0.1 * np.eye(n)
    G = rng.normal(size=(m, n))
    f = 0.5 * cs.bilin(H, w, w) + cs.dot(moving, w)
    g = G @ w + cs.vertcat(fixed[0], fixed[1], 0, 0, 0)
    lbg, ubg = np.r_[0.0, -np.inf, -1, -1, -1], np.r_[0.0, 0.5, 1, 1, 1]
    lbx, ubx = -np.ones(n), np.ones(n)
    qp = {"x": w, "p": p, "f": f, "g": g}
    reference = cs.qpsol("r", "qpoases", qp, {"printLevel": "none"})
    solver = FreshConic("qpoases", {"printLevel": "none"}, lbg, ubg, lbx, ubx)
    fast = ActiveSetQp(w, p, f, g, solver, n_fixed=2)
    linear = rng.normal(size=n)
    for k in range(60):
        fix = np.array([0.3, 0.1]) if k < 30 else np.array([-0.2, 0.4])
        linear = linear + 0.02 * rng.normal(size=n)  # small moves, as in ADMM
        pk = np.r_[fix, linear]
        got = fast.solve(pk)
        ref = reference(p=pk, lbg=lbg, ubg=ubg, lbx=lbx, ubx=ubx)
        assert got.success
        np.testing.assert_allclose(got.x, np.asarray(ref["x"]).ravel(), atol=1e-9)
        np.testing.assert_allclose(got.lam_g, np.asarray(ref["lam_g"]).ravel(), atol=1e-8)
    assert fast.stats["reused"] > 30 and fast.stats["solver"] >= 1


def _moving_qp(rng, n=8, m=5):
    """A random convex QP whose linear term is the parameter vector ``q``."""
    w = cs.SX.sym("w", n)
    q = cs.SX.sym("q", n)
    M = rng.normal(size=(n, n))
    f = 0.5 * cs.bilin(M @ M.T + 0.1 * np.eye(n), w, w) + cs.dot(q, w)
    g = rng.normal(size=(m, n)) @ w
    bounds = dict(lbg=-np.ones(m), ubg=np.ones(m), lbx=-np.ones(n), ubx=np.ones(n))
    qp = {"x": w, "p": q, "f": f, "g": g}
    solver = FreshConic("qpoases", {"printLevel": "none"}, **bounds)
    reference = cs.qpsol("r", "qpoases", qp, {"printLevel": "none"})
    return w, q, f, g, solver, reference, bounds


def test_region_is_the_solution_while_the_active_set_holds(quiet):
    rng = np.random.default_rng(1)
    w, q, f, g, solver, reference, bounds = _moving_qp(rng)
    rows = np.array([3, 0, 5, 1, 2, 4, 7, 6])  # q moves the linear term at every entry
    fast = ActiveSetQp(w, q, f, g, solver, n_fixed=0, region_rows=rows)
    inside = outside = 0
    q0 = 2.0 * rng.normal(size=8)
    fast.solve(q0)
    region = fast.region()
    for _ in range(200):
        qk = q0 + 0.3 * rng.normal(size=8)
        ref = reference(p=qk, **bounds)
        x_ref = np.asarray(ref["x"]).ravel()
        got = region.evaluate(qk[rows])  # the linear term is q itself
        if got is None:
            outside += 1
            # the optimum has another active set: some multiplier changes from 0 or to 0
            lam = np.r_[np.asarray(ref["lam_g"]).ravel(), np.asarray(ref["lam_x"]).ravel()]
            active = fast._active_set(lam[:5], lam[5:])
            assert not np.array_equal(active != 0, region.active != 0)
            # the region's active-set step is the one from the KKT point, and the
            # steps started there reach the optimum
            guess = region.next_active_set(qk[rows])
            _, expected = fast._try(region.active, qk)  # the linear term is q
            np.testing.assert_array_equal(guess, expected)
            np.testing.assert_allclose(fast.solve(qk, guess).x, x_ref, atol=1e-9)
        else:
            inside += 1
            np.testing.assert_allclose(got, x_ref[rows], atol=1e-9)
            np.testing.assert_array_equal(region.next_active_set(qk[rows]), region.active)
    assert inside > 20 and outside > 20
    with pytest.raises(ValueError, match="outside region_rows"):
        ActiveSetQp(w, q, f, g, solver, n_fixed=0, region_rows=rows[:4])


def test_active_set_steps_reach_the_optimum_without_the_solver(quiet):
    rng = np.random.default_rng(2)
    w, q, f, g, solver, reference, bounds = _moving_qp(rng)
    fast = ActiveSetQp(w, q, f, g, solver, n_fixed=0)
    qk = 2.0 * rng.normal(size=8)
    for _ in range(40):
        qk = qk + 0.3 * rng.normal(size=8)  # moves that change the active set
        got = fast.solve(qk)
        ref = reference(p=qk, **bounds)
        np.testing.assert_allclose(got.x, np.asarray(ref["x"]).ravel(), atol=1e-9)
        np.testing.assert_allclose(got.lam_g, np.asarray(ref["lam_g"]).ravel(), atol=1e-8)
    assert fast.stats["guessed"] > 5
    assert fast.stats["solver"] < fast.stats["guessed"]


def test_buffered_function_returns_the_function_values():
    x = cs.SX.sym("x", 3)
    f = cs.Function("f", [x], [cs.densify(cs.vertcat(x.T, 2 * x.T)), cs.densify(x[0] * x)])
    call = BufferedFunction(f)
    for value in (np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 4.0])):
        out = call(value)
        expected = [np.asarray(v) for v in f(value)]
        for a, b in zip(out, expected, strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="not dense"):
        BufferedFunction(cs.Function("g", [x], [cs.diag(x)]))


def test_fresh_conic_answers_from_the_data_alone(quiet):
    """The same QP gets the same answer, bit for bit, whatever was solved before (one
    qpOASES instance hot-starts from its previous call, which changes the last bits)."""
    rng = np.random.default_rng(3)
    n, m = 40, 20
    M = rng.normal(size=(n, n))
    H, A = M @ M.T, rng.normal(size=(m, n))
    solver = FreshConic("qpoases", {"printLevel": "none"}, -np.ones(m), np.ones(m), -1, 1)
    lba, uba = -np.ones(m), np.ones(m)
    linear = [rng.normal(size=n) for _ in range(6)]
    alone = solver.solve(H, A, linear[-1], lba, uba)
    for g in linear[:-1]:
        solver.solve(H, A, g, lba, uba)
    after = solver.solve(H, A, linear[-1], lba, uba)
    assert alone.success and after.success
    np.testing.assert_array_equal(alone.x, after.x)
    np.testing.assert_array_equal(alone.lam_g, after.lam_g)
    # and it is the QP's optimum
    w = cs.SX.sym("w", n)
    qp = {"x": w, "f": 0.5 * cs.bilin(H, w, w) + cs.dot(linear[-1], w), "g": A @ w}
    ref = cs.qpsol("r", "qpoases", qp, {"printLevel": "none"})(lbg=-1, ubg=1, lbx=-1, ubx=1)
    np.testing.assert_allclose(alone.x, np.asarray(ref["x"]).ravel(), atol=1e-9)
