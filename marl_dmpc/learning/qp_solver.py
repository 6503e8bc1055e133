"""The centralized learner's MPC solved by active-set re-use (:class:`ActiveSetNlpSolver`).

The centralized MPC is a convex QP once its parameters are fixed, the same kind of
problem as the distributed MPC's local ones, and consecutive solves (V(s) at one step,
Q(s, a) and V(s') at the next) differ little: the optimal active set of one is usually
that of the next. :class:`ActiveSetNlpSolver` stands in for the CasADi solver of a csnlp
NLP and answers every solve with :class:`~marl_dmpc.qp.ActiveSetQp`'s compiled steps
from the last optimal active set, as the local problems are answered; the configured
solver (a new instance every time, see :class:`~marl_dmpc.conic.FreshConic`) answers
where those steps fail. Measured in ``docs/benchmarks.md``: qpOASES through CasADi was
three quarters of a centralized training step.

The answer depends on the parameters and the last optimal active set only, which a
checkpoint saves, so a resumed run continues bit for bit.
"""

from __future__ import annotations

from typing import Any

import casadi as cs
import numpy as np
import numpy.typing as npt

from ..casadi_call import BufferedFunction
from ..conic import FreshConic
from ..qp import ActiveSetQp


class ActiveSetNlpSolver:
    """Stands in for a csnlp NLP's solver (its private ``_solver``, set by
    :func:`~marl_dmpc.mpcrl_compat.set_nlp_solver`): csnlp calls it with CasADi's keyword
    arguments (``p``, the bounds, an initial guess it does not need) and reads
    ``func.stats()``.

    Parameters
    ----------
    nlp : csnlp.Nlp
        The NLP, a convex QP in its variables for fixed parameters, complete (no
        variable, parameter or constraint is added after this is built).
    plugin, options :
        The CasADi conic plugin and options that answer where the active-set steps fail.
    fallback : tuple of (str, dict), optional
        The plugin and options tried when that one fails too.
    """

    def __init__(
        self,
        nlp: Any,
        plugin: str,
        options: dict[str, Any],
        fallback: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        g = cs.vertcat(nlp.g, nlp.h)
        lbg = np.concatenate((np.zeros(nlp.ng), np.full(nlp.nh, -np.inf)))
        zero = np.zeros(len(lbg))
        conic = FreshConic(plugin, options, lbg, zero, nlp.lbx.data, nlp.ubx.data, fallback)
        # every parameter may move the matrices: the QP's data is rebuilt at every solve
        self.qp = ActiveSetQp(nlp.x, nlp.p, nlp.f, g, conic, n_fixed=nlp.np)
        lam_g = cs.SX.sym("lam_g", g.shape[0])
        lagrangian = nlp.f + cs.dot(lam_g, g)
        self._outputs = BufferedFunction(
            cs.Function(
                "centralized_outputs",
                [nlp.x, nlp.p, lam_g],
                [cs.densify(nlp.f), cs.densify(g), cs.densify(cs.gradient(lagrangian, nlp.x))],
                {"cse": True},
            )
        )
        self.func = self
        self._stats: dict[str, Any] = {}
        #: How many QPs the fallback's own fallback solver has solved (settable).
        self.fallbacks = 0

    def __call__(self, **kwargs: Any) -> dict[str, cs.DM]:
        for name in ("lbx", "ubx"):
            given = np.asarray(kwargs[name], dtype=float).reshape(-1)
            if not np.array_equal(given, getattr(self.qp, name)):
                raise ValueError(f"the NLP's {name} changed after its active-set solver was built")
        p = np.asarray(kwargs["p"], dtype=float).reshape(-1)
        before = self.qp.fallbacks
        solution = self.qp.solve(p)
        self.fallbacks += self.qp.fallbacks - before
        f, g, stationarity = self._outputs(solution.x, p, solution.lam_g)
        lam_x = solution.lam_x
        active = self.qp.active_set
        if lam_x is None:  # the bounds' multipliers: what stationarity leaves to them
            at_bound = active[self.qp.m :] != 0 if active is not None else False
            lam_x = np.where(at_bound, -stationarity.reshape(-1), 0.0)
        self._stats = {"success": solution.success, "return_status": solution.status}
        return {
            "x": cs.DM(solution.x),
            "f": cs.DM(float(f[0, 0])),
            "g": cs.DM(g.reshape(-1)),
            "lam_g": cs.DM(solution.lam_g),
            "lam_x": cs.DM(lam_x),
            "lam_p": cs.DM.zeros(len(p)),
        }

    def stats(self) -> dict[str, Any]:
        """The last solve's verdict, as CasADi's solvers report it."""
        return self._stats

    @property
    def active_set(self) -> npt.NDArray[np.int8] | None:
        """The last optimal active set (saved by checkpoints; settable)."""
        return self.qp.active_set

    @active_set.setter
    def active_set(self, active: npt.ArrayLike | None) -> None:
        self.qp.active_set = active
