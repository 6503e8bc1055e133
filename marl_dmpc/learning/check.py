"""The centralized check: the centralized MPC solved beside every distributed solve, and
the gaps between the two (:class:`CentralizedCheck`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import casadi as cs
import numpy as np
import numpy.typing as npt
from csnlp.wrappers import Mpc
from mpcrl import Agent, MpcSolverError

from ..admm import AdmmResult
from ..blocks import dynamics_name
from ..exploration import PerAgentExploration
from ..local_mpc import LocalMpc
from ..mpc import (
    INIT_ACTION,
    PERTURBATION,
    LocalMpcDefinition,
    build_centralized_mpc,
    dual_function,
    inequality_names,
    lagrangian_gradient,
    state_name,
)
from ..network import Network
from .loop import refresh_solvers


def multipliers(mpc: Mpc) -> cs.SX:
    """The multiplier vector of ``mpc`` as csnlp lays it out (equalities, inequalities)."""
    return cs.vertcat(mpc.nlp.lam_g, mpc.nlp.lam_h)


def split_agents(vector: npt.ArrayLike, n: int) -> list[npt.NDArray[np.floating]]:
    """A network-wide vector cut into ``n`` equal per-agent blocks."""
    return np.split(np.asarray(vector, dtype=float).reshape(-1), n)


class CentralizedCheck:
    """Solves the centralized V or Q beside the distributed solve and measures the gap.

    The centralized problems are built from the same definitions and given the first-input
    constraint and the exploration perturbation by mpcrl's :class:`~mpcrl.Agent`, exactly
    as the centralized learner gets them.
    """

    def __init__(
        self,
        definition: LocalMpcDefinition,
        network: Network,
        local_mpcs: list[LocalMpc],
        solver: str,
    ) -> None:
        self.local_mpcs = local_mpcs
        mpc = build_centralized_mpc(definition, network, solver)
        exploration = PerAgentExploration(network.n_agents, definition.nu, 0.0, 1.0, 0.0)
        self._agent = Agent(mpc, exploration=exploration, name="centralized_check")
        self.n_agents = network.n_agents
        names = [name for m in local_mpcs for name in m.learnable_names]
        self._gradients = {}
        self._dynamics_duals = {}
        self._inequality_duals = {}
        for kind in ("V", "Q"):
            mpc = self._agent.V if kind == "V" else self._agent.Q
            lam = multipliers(mpc)
            self._gradients[kind] = lagrangian_gradient(mpc, names, mpc.nlp.p, lam, "check_d")
            self._dynamics_duals[kind] = [
                dual_function(mpc, lam, dynamics_name(i)) for i in range(self.n_agents)
            ]
            # agent i's inequalities, by the names its local problem gives them
            self._inequality_duals[kind] = [
                {
                    name: dual_function(mpc, lam, name)
                    for name in inequality_names(local.problems[kind].mpc)
                }
                for local in local_mpcs
            ]

    def restart_solvers(self) -> None:
        """Rebuild the centralized solvers (see
        :meth:`~marl_dmpc.learning.loop.TrainingLoop._restart_solvers`)."""
        refresh_solvers(self._agent)

    def compare(
        self,
        kind: str,
        result: AdmmResult,
        parameters: Mapping[str, Any],
        state: npt.ArrayLike,
        first: npt.ArrayLike,
    ) -> dict[str, float]:
        """The gaps between ``result`` and the centralized solution, by name:
        ``"v_error"`` or ``"q_error"`` (absolute value gap), ``"dual_error"`` (max abs gap
        of the dynamics multipliers lambda), ``"dual_error_norms"`` (the sum over agents
        of the 2-norms of those gaps), ``"inequality_dual_error_norms"`` (the same for
        the multipliers mu of the agents' inequality constraints; the paper's measure is
        the sum of the two) and ``"gradient_error"`` (max abs gap between the agents'
        local Lagrangian gradients and the centralized one).

        ``first`` is the perturbation (V) or the first action (Q).
        """
        mpc = self._agent.V if kind == "V" else self._agent.Q
        pars = dict(parameters)
        for i, x in enumerate(split_agents(state, self.n_agents)):
            pars[f"{state_name(i)}_0"] = x
        extra = PERTURBATION if kind == "V" else INIT_ACTION
        pars[extra] = np.asarray(first, dtype=float).reshape(-1, 1)
        sol = mpc.nlp.solve(pars)
        if not sol.success:
            raise MpcSolverError(f"centralized check: the centralized {kind} failed ({sol.status})")
        errors = {f"{kind.lower()}_error": abs(float(result.values.sum()) - float(sol.f))}
        lam = sol.lam_g_and_h
        local = np.concatenate(
            [m.gradient(s, kind) for m, s in zip(self.local_mpcs, result.local, strict=True)]
        )
        central = np.asarray(self._gradients[kind](sol.x, sol.p, lam)).reshape(-1)
        errors["gradient_error"] = float(np.abs(local - central).max())
        dual_error = dual_norms = inequality_norms = 0.0
        for i, (local_mpc, local_sol) in enumerate(zip(self.local_mpcs, result.local, strict=True)):
            central = np.asarray(self._dynamics_duals[kind][i](lam))
            diff = local_mpc.dual(kind, dynamics_name(i), local_sol) - central
            dual_error = max(dual_error, float(np.abs(diff).max()))
            dual_norms += float(np.linalg.norm(diff))
            inequalities = self._inequality_duals[kind][i]
            if inequalities:
                diff = np.concatenate(
                    [
                        np.ravel(local_mpc.dual(kind, name, local_sol) - np.asarray(mu(lam)))
                        for name, mu in inequalities.items()
                    ]
                )
                inequality_norms += float(np.linalg.norm(diff))
        errors["dual_error"] = dual_error
        errors["dual_error_norms"] = dual_norms
        errors["inequality_dual_error_norms"] = inequality_norms
        return errors
