"""The ADMM dual-error study (marl_dmpc.dual_error): the multipliers of the dynamics and
of the inequalities, against the centralized MPC's."""

from __future__ import annotations

import casadi as cs
import numpy as np
import pytest

from marl_dmpc.results import load_result
from reproduction.example_1 import admm_dual_error
from tests.helpers import fails_with


def test_the_dual_error_vanishes_as_admm_converges(tmp_path, capsys):
    out = tmp_path / "dual.pkl"
    argv = ["--steps", "12", "--every", "1", "--iterations", "1,300", "--out", str(out)]
    assert admm_dual_error.main(argv) == 0
    result = load_result(out)
    errors = np.asarray(result["dual_errors"])
    assert result["kind"] == "example_1_admm_dual_error"
    assert errors.shape == (2, 2, 12, 2, 2)  # variants, starts, states, iterations, parts
    assert list(result["starts"]) == ["cold", "warm"] and len(result["parts"]) == 2
    plain = errors[0]
    assert plain[:, :, 1].max() < 1e-8  # 300 plain iterations: the centralized multipliers
    assert errors[1, :, :, 1].max() < 1e-5  # accelerated: stopped at its tolerance
    # one iteration is far off, in lambda and, where a bound is active, in mu
    assert plain[0, :, 0, 0].min() > 1e-3 and plain[0, :, 0, 1].max() > 0.1
    # the states are those of one episode; the warm start differs from the cold one
    assert list(result["steps"]) == list(range(12))
    assert not np.allclose(plain[0, :, 0], plain[1, :, 0])
    assert "median over 12 states" in capsys.readouterr().out


def test_a_bad_penalty_is_one_line(tmp_path, capsys):
    line = fails_with(
        admm_dual_error.main, ["--rho", "0", "--out", str(tmp_path / "d.pkl")], capsys
    )
    assert "--rho" in line and "> 0" in line


def test_every_inequality_has_a_dual_function():
    from csnlp import Nlp
    from csnlp.wrappers import Mpc

    from marl_dmpc.mpc import dual_function, inequality_names

    mpc = Mpc(Nlp(), prediction_horizon=2)
    x, _ = mpc.state("x", 1)
    mpc.constraint("upper", x, "<=", 1)
    mpc.constraint("same", x[:, 0], "==", 0)
    assert inequality_names(mpc) == ["upper"]
    lam_sym = cs.vertcat(mpc.nlp.lam_g, mpc.nlp.lam_h)  # equalities, then inequalities
    lam = np.arange(float(lam_sym.numel()))
    assert np.allclose(dual_function(mpc, lam_sym, "upper")(lam).T, lam[-3:])
    with pytest.raises(KeyError, match="no constraint 'lower'"):
        dual_function(mpc, lam_sym, "lower")
