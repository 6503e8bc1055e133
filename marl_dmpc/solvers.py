"""The optimization solvers a local or centralized MPC can be solved with.

The MPCs of both examples are convex QPs once their parameters are fixed, so a QP solver
through CasADi's ``qpsol`` is the default; IPOPT (the release's choice) treats them as
NLPs. Each entry fixes the options that make the solver quiet and accurate enough for the
ADMM equivalence (multipliers matching to ~1e-6).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, Literal

SOLVER_CHOICES = ("qpoases", "osqp", "ipopt", "qrqp", "highs")
DEFAULT_SOLVER = "qpoases"


def solver_setup(name: str) -> tuple[str, Literal["nlp", "conic"], dict[str, Any]]:
    """The CasADi plugin, problem type and options for the named solver.

    Parameters
    ----------
    name : str
        One of :data:`SOLVER_CHOICES`.

    Returns
    -------
    tuple of (str, {"nlp", "conic"}, dict)
        Arguments for :meth:`csnlp.Nlp.init_solver`.

    Raises
    ------
    ValueError
        If ``name`` is not a known solver.
    """
    if name == "qpoases":
        opts = {"printLevel": "none", "error_on_fail": False, "enableRegularisation": True}
        return "qpoases", "conic", opts
    if name == "osqp":
        osqp = {
            "verbose": False,
            "eps_abs": 1e-9,
            "eps_rel": 1e-9,
            "polish": True,
            "max_iter": 20_000,
        }
        return "osqp", "conic", {"osqp": osqp, "error_on_fail": False}
    if name == "qrqp":
        return "qrqp", "conic", {"print_iter": False, "print_header": False, "error_on_fail": False}
    if name == "highs":
        return "highs", "conic", {"highs": {"output_flag": False}, "error_on_fail": False}
    if name == "ipopt":
        ipopt = {"print_level": 0, "sb": "yes", "tol": 1e-10, "max_iter": 1000}
        return "ipopt", "nlp", {"print_time": False, "ipopt": ipopt, "error_on_fail": False}
    raise ValueError(f"unknown solver {name!r}; choose one of {', '.join(SOLVER_CHOICES)}")


#: The QP solver tried when a solve fails, before the solve counts as failed (a
#: failure of one solver on a well-posed QP is usually numerical: qpOASES reports
#: "infeasibility" on QPs that are feasible by construction, all their state bounds
#: being soft). IPOPT has none.
FALLBACK_SOLVERS = {"qpoases": "osqp", "osqp": "qpoases", "qrqp": "qpoases", "highs": "qpoases"}


def fallback_setup(name: str) -> tuple[str, dict[str, Any]] | None:
    """The CasADi conic plugin and options of the named solver's fallback, if any."""
    fallback = FALLBACK_SOLVERS.get(name)
    if fallback is None:
        return None
    plugin, _, opts = solver_setup(fallback)
    return plugin, opts


@contextlib.contextmanager
def quiet_solvers() -> Iterator[None]:
    """Discard what is printed to ``sys.stdout`` inside the block.

    CasADi routes its plugins' output through ``sys.stdout``; qpOASES prints its licence
    at every solver construction and first solve. Scripts build and train inside this
    block (their progress bar writes to stderr) and print their summary after it.
    """
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield
