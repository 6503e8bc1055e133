"""Consensus ADMM: solving the network's MPC with one local problem per agent.

Agent ``i`` holds ``x_aug_i``, its own predicted state trajectory and copies of its
neighbours', a dual ``y_i`` of the same shape and its view ``z_i`` of the global averages.
One iteration:

1. every agent solves ``min f_i + y_i^T (x_aug_i - z_i) + rho/2 ||x_aug_i - z_i||^2``;
2. ``z_j`` becomes the average of every trajectory of agent ``j`` (its own and its
   neighbours' copies);
3. ``y_i += rho (x_aug_i - z_i)``.

It stops when the primal residual ``||x_aug - z||`` and the dual residual
``rho ||z - z_prev||`` (both over the whole network) are below the tolerance, or after
the iteration cap; a tolerance of 0 runs exactly the cap (the release's fixed 50
iterations). ``y`` and ``z`` are kept between solves, so every solve is warm-started from
the previous one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .mpc import LocalMpc, LocalSolution
from .network import Network


@dataclass
class AdmmResult:
    """The outcome of one ADMM solve.

    Attributes
    ----------
    local : list of LocalSolution
        Every agent's local solution at the last iteration.
    iterations : int
        Number of iterations run.
    primal_residuals, dual_residuals : ndarray
        The residuals after every iteration.
    converged : bool
        Whether both residuals reached the tolerance (always ``False`` with tolerance 0).
    success : bool
        Whether every local solve of the last iteration succeeded.
    """

    local: list[LocalSolution]
    iterations: int
    primal_residuals: npt.NDArray[np.floating]
    dual_residuals: npt.NDArray[np.floating]
    converged: bool

    @property
    def success(self) -> bool:
        return all(s.success for s in self.local)

    @property
    def statuses(self) -> list[str]:
        return [s.status for s in self.local]

    @property
    def values(self) -> npt.NDArray[np.floating]:
        """Every agent's local value (its share of the global V or Q)."""
        return np.array([s.value for s in self.local])

    @property
    def action(self) -> npt.NDArray[np.floating]:
        """The first inputs of all agents, concatenated."""
        return np.concatenate([s.u0 for s in self.local])


class AdmmCoordinator:
    """Runs consensus ADMM over the agents' :class:`~marl_dmpc.mpc.LocalMpc`.

    Parameters
    ----------
    network : Network
        The communication graph.
    local_mpcs : sequence of LocalMpc
        One local MPC per agent, in agent order, all built with the same ``rho``.
    max_iterations : int
        Iteration cap (> 0).
    tolerance : float
        Stopping tolerance on both residuals; 0 runs exactly ``max_iterations``.
    """

    def __init__(
        self,
        network: Network,
        local_mpcs: Sequence[LocalMpc],
        max_iterations: int = 50,
        tolerance: float = 0.0,
    ) -> None:
        if max_iterations < 1:
            raise ValueError(f"ADMM needs at least one iteration; got {max_iterations}")
        if tolerance < 0:
            raise ValueError(f"ADMM tolerance must be >= 0; got {tolerance}")
        if len(local_mpcs) != network.n_agents:
            raise ValueError("one local MPC per agent is needed")
        self.network = network
        self.local_mpcs = list(local_mpcs)
        self.rho = local_mpcs[0].rho
        self.max_iterations = max_iterations
        self.tolerance = tolerance
        d = local_mpcs[0].definition
        self._traj_shape = (d.nx, d.horizon + 1)
        # for each agent j: (holder, position of j in the holder's x_aug)
        self._holders = [
            [(h, network.copies(h).index(j)) for h in network.holders(j)]
            for j in range(network.n_agents)
        ]
        self._copy_index = [np.array(network.copies(i)) for i in range(network.n_agents)]
        self.reset()

    def reset(self) -> None:
        """Forget the warm start: ``y = 0`` and ``z = 0``."""
        n = self.network.n_agents
        self.z = np.zeros((n, *self._traj_shape))
        self.y = [np.zeros((len(c), *self._traj_shape)) for c in self._copy_index]

    def solve(self, kind: str, parameters: Sequence[dict[str, Any]]) -> AdmmResult:
        """Solve the network's V (``kind="V"``) or Q (``kind="Q"``) problem.

        Parameters
        ----------
        kind : {"V", "Q"}
            Which problem.
        parameters : sequence of dict
            Every agent's parameter values for :meth:`LocalMpc.solve`.
        """
        rho, z, y = self.rho, self.z, self.y
        static = [mpc.pack(kind, parameters[i]) for i, mpc in enumerate(self.local_mpcs)]
        primal_res: list[float] = []
        dual_res: list[float] = []
        converged = False
        local: list[LocalSolution] = []
        for _ in range(self.max_iterations):
            local = [
                mpc.solve(kind, static[i], y[i], z[self._copy_index[i]])
                for i, mpc in enumerate(self.local_mpcs)
            ]
            if not all(s.success for s in local):
                break
            z_new = np.empty_like(z)
            for j, holders in enumerate(self._holders):
                z_new[j] = np.mean([local[h].x_aug[p] for h, p in holders], axis=0)
            primal_sq = dual_sq = 0.0
            for i, sol in enumerate(local):
                zi = z_new[self._copy_index[i]]
                r = sol.x_aug - zi
                y[i] += rho * r
                primal_sq += float(np.sum(r * r))
                dual_sq += float(np.sum((zi - z[self._copy_index[i]]) ** 2))
            z = z_new
            primal_res.append(np.sqrt(primal_sq))
            dual_res.append(rho * np.sqrt(dual_sq))
            if (
                self.tolerance > 0
                and primal_res[-1] <= self.tolerance
                and dual_res[-1] <= self.tolerance
            ):
                converged = True
                break
        self.z = z
        return AdmmResult(
            local=local,
            iterations=len(primal_res),
            primal_residuals=np.asarray(primal_res),
            dual_residuals=np.asarray(dual_res),
            converged=converged,
        )
