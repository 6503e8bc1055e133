"""Re-solving a QP from its last active set gives the solver's optimum."""

import casadi as cs
import numpy as np
import pytest

from marl_dmpc import kkt
from marl_dmpc import qp as qp_module
from marl_dmpc.casadi_call import BufferedFunction
from marl_dmpc.qp import ActiveSetQp, FreshConic, QpBatch


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
    # the first solve (no active set yet) goes to DAQP, then the steps
    assert fast.stats["reused"] > 30 and fast.stats["dual"] >= 1


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


def _batch_data(qp: ActiveSetQp):
    """The QP's data for a :class:`QpBatch` (its linear term is its parameter)."""
    Hx, Ax, lo, up, _ = qp.data(np.zeros(0))
    return Hx, Ax, lo, up


def test_a_batch_reuses_each_factorization_while_its_active_set_holds(quiet):
    """Two QPs in one batch, re-solved with small moves of their linear terms (as in
    ADMM): every answer is the solver's optimum, and most re-use the factorization of
    the last optimal active set."""
    rng = np.random.default_rng(1)
    problems = [_moving_qp(rng, n=n, m=m) for n, m in ((8, 5), (6, 3))]
    qps = [ActiveSetQp(w, q, f, g, solver, n_fixed=0) for w, q, f, g, solver, _, _ in problems]
    batch = QpBatch([qp.structure for qp in qps])
    linear = [2.0 * rng.normal(size=qp.n) for qp in qps]
    for b, qp in enumerate(qps):
        batch.set_data(b, *_batch_data(qp))
        first = qp.solve(linear[b])  # the solver's active set to start from
        batch.set_active_set(b, qp.active_set)
        assert first.success
    for _ in range(150):
        for b, (problem, qp) in enumerate(zip(problems, qps, strict=True)):
            linear[b] = linear[b] + 0.05 * rng.normal(size=qp.n)
            assert batch.solve(b, linear[b])
            ref = problem[5](p=linear[b], **problem[6])
            w, lam = batch.point(b)
            np.testing.assert_allclose(w, np.asarray(ref["x"]).ravel(), atol=1e-9)
            np.testing.assert_allclose(lam, np.asarray(ref["lam_g"]).ravel(), atol=1e-8)
    stats = batch.arrays.stats
    reused, factorizations = stats[:, kkt.REUSED], stats[:, kkt.FACTORIZATIONS]
    assert (reused > 50).all() and (factorizations < 100).all()
    w, q, f, g, solver = problems[0][:5]
    with pytest.raises(ValueError, match="outside region_rows"):
        ActiveSetQp(w, q, f, g, solver, n_fixed=0, region_rows=[0, 1])


def test_an_equality_on_a_variable_at_its_bound_is_not_singular(quiet):
    """Q(s, a) with the first input fixed at its bound: the input's equality row and its
    bound are both active, and the rows' multiplier is not unique. The steps answer
    with the solver's optimum (the row's multiplier 0, the bound's carrying it)."""
    w = cs.SX.sym("w", 3)
    q = cs.SX.sym("q", 3)
    f = 0.5 * cs.sumsqr(w) + cs.dot(q, w)
    g = cs.vertcat(w[0], w[0] + w[1] + w[2])
    bounds = dict(lbg=np.r_[1.0, -np.inf], ubg=np.r_[1.0, 2.0], lbx=-np.ones(3), ubx=np.ones(3))
    solver = FreshConic("qpoases", {"printLevel": "none"}, **bounds)
    qp = ActiveSetQp(w, q, f, g, solver, n_fixed=0)
    reference = cs.qpsol("r", "qpoases", {"x": w, "p": q, "f": f, "g": g}, {"printLevel": "none"})
    qk = np.array([-3.0, 0.1, 0.2])  # pushes w[0] past its upper bound 1
    qp.solve(qk)
    qp.active_set = np.array([3, 0, 2, 0, 0], dtype=np.int8)  # row and bound active
    for _ in range(5):
        qk = qk + np.array([0.0, 0.05, -0.05])
        got = qp.solve(qk)
        ref = reference(p=qk, **bounds)
        assert got.status == "active set re-used"
        np.testing.assert_allclose(got.x, np.asarray(ref["x"]).ravel(), atol=1e-9)


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


def test_a_qp_the_steps_fail_is_rescued_by_daqps_active_set_then_by_qpoases(quiet, monkeypatch):
    rng = np.random.default_rng(4)
    w, q, f, g, solver, reference, bounds = _moving_qp(rng)
    qk = 2.0 * rng.normal(size=8)
    ref = np.asarray(reference(p=qk, **bounds)["x"]).ravel()
    fast = ActiveSetQp(w, q, f, g, solver, n_fixed=0)
    got = fast.solve(qk)  # no active set yet
    assert got.status == "active set of DAQP" and fast.stats["dual"] == 1
    np.testing.assert_allclose(got.x, ref, atol=1e-9)
    # DAQP failing: a new qpOASES instance answers
    monkeypatch.setattr(qp_module, "dual_active_set", lambda *args: None)
    fresh = ActiveSetQp(w, q, f, g, solver, n_fixed=0)
    got = fresh.solve(qk)
    assert fresh.stats["solver"] == 1 and fresh.stats["dual"] == 0
    np.testing.assert_allclose(got.x, ref, atol=1e-9)
    assert fresh.active_set is not None  # the next solve starts from its active set


def test_the_factorizations_solve_sparse_systems_with_their_nonzero_patterns():
    from marl_dmpc import compiled

    rng = np.random.default_rng(3)
    s = 12
    # sparse and indefinite, as a KKT matrix: LU with pivoting, zeros skipped
    R = rng.normal(size=(s, s)) * (rng.random((s, s)) < 0.3) + 4 * np.diag(rng.choice([-1, 1], s))
    b = rng.normal(size=s)
    lu, piv = R.ravel().copy(), np.zeros(s, np.int64)
    ptr, col = np.zeros(2 * s + 1, np.int64), np.zeros(s * s, np.int64)
    assert compiled.lu(lu, s, piv, 1e-12)
    compiled.pattern(lu, s, s, False, ptr, col)
    assert ptr[-1] < s * (s - 1)  # the pattern skips zeros
    x = b.copy()
    compiled.lu_solve(lu, s, piv, ptr, col, x)
    np.testing.assert_allclose(x, np.linalg.solve(R, b), rtol=1e-12, atol=1e-12)
    # positive semidefinite of rank 5: the Cholesky solve on the pivot rows
    M = rng.normal(size=(s, 5)) * (rng.random((s, 5)) < 0.5)
    S = M @ M.T
    rhs = -S @ rng.normal(size=s)  # consistent: -S x = rhs has a solution
    chol = S.ravel().copy()  # cholesky factorizes S (R = -S)
    rank = compiled.cholesky(chol, s, piv, 1e-12)
    assert rank == np.linalg.matrix_rank(S)
    compiled.pattern(chol, s, rank, True, ptr, col)
    x = rhs.copy()
    compiled.cholesky_solve(chol, s, piv, rank, ptr, col, x)
    np.testing.assert_allclose(-S @ x, rhs, atol=1e-10)
    assert np.count_nonzero(x) <= rank
