"""Re-solving a QP from its last active set gives the solver's optimum."""

import casadi as cs
import numpy as np

from marl_dmpc.qp import ActiveSetQp, DirectSolve


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
    solver = cs.qpsol("s", "qpoases", qp, {"printLevel": "none"})
    reference = cs.qpsol("r", "qpoases", qp, {"printLevel": "none"})
    fast = ActiveSetQp(w, p, f, g, DirectSolve(solver, lbg, ubg, lbx, ubx), n_fixed=2)
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
