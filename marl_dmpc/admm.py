"""Consensus ADMM: solving the network's MPC with one local problem per agent.

Agent ``i`` holds ``x_aug_i``, its own predicted state trajectory and copies of its
neighbours', a dual ``y_i`` of the same shape and its view ``z_i`` of the global averages.
One iteration:

1. every agent solves ``min f_i + y_i^T (x_aug_i - z_i) + rho/2 ||x_aug_i - z_i||^2``;
2. ``z_j`` becomes the average of every trajectory of agent ``j`` (its own and its
   neighbours' copies);
3. ``y_i += rho (x_aug_i - z_i)``.

It stops when the primal residual ``||x_aug - z||`` is below the tolerance and the dual
residual ``rho ||z - z_prev||`` below the dual tolerance (both over the whole network;
Boyd et al., "Distributed optimization and statistical learning via ADMM", 2011, section
3.3.1), or after the iteration cap. ``y`` and ``z`` are kept between solves, so every
solve is warm-started from the previous one.

With a tolerance, a solve that has not converged after :data:`RHO_WAIT` iterations
balances ``rho`` every :data:`RHO_PERIOD` iterations (Boyd et al., section 3.4.1): ``rho`` is
multiplied by :data:`RHO_FACTOR` when the primal residual exceeds :data:`RHO_BALANCE`
times the dual one, and divided by it in the opposite case; every solve starts at the
nominal ``rho``. Without it, a solve can stall: in Q(s, a) the fixed first input pins
an agent's ``x_1`` except through its copies of its neighbours' initial states, which
then stay ``~1e-4`` off while ``y`` grows by ``rho`` times that per iteration (measured:
1000 iterations without converging). The fixed point is the same for any ``rho``. A
tolerance of 0 runs exactly the cap with the nominal ``rho`` (the release's
plain ADMM with 50 iterations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .mpc import LocalMpc, LocalSolution
from .network import Network
from .qp import AffineRegion

#: Residual balancing: from this iteration of a solve on (earlier, ``rho`` is nominal),
RHO_WAIT = 100
#: every this many iterations,
RHO_PERIOD = 10
#: ``rho`` changes when one residual exceeds the other this many times,
RHO_BALANCE = 10.0
#: by this factor.
RHO_FACTOR = 2.0


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
        Whether both residuals reached their tolerances (always ``False`` with
        tolerance 0).
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
        Stopping tolerance on the primal residual; 0 runs exactly ``max_iterations``.
    dual_tolerance : float, optional
        Stopping tolerance on the dual residual; ``tolerance`` by default.
    """

    def __init__(
        self,
        network: Network,
        local_mpcs: Sequence[LocalMpc],
        max_iterations: int = 50,
        tolerance: float = 0.0,
        dual_tolerance: float | None = None,
    ) -> None:
        if max_iterations < 1:
            raise ValueError(f"ADMM needs at least one iteration; got {max_iterations}")
        if tolerance < 0 or (dual_tolerance is not None and dual_tolerance < 0):
            raise ValueError(f"ADMM tolerances must be >= 0; got {tolerance}, {dual_tolerance}")
        if len(local_mpcs) != network.n_agents:
            raise ValueError("one local MPC per agent is needed")
        self.network = network
        self.local_mpcs = list(local_mpcs)
        self.rho = local_mpcs[0].rho
        self.max_iterations = max_iterations
        self.tolerance = tolerance
        self.dual_tolerance = tolerance if dual_tolerance is None else dual_tolerance
        d = local_mpcs[0].definition
        nx, cols = d.nx, d.horizon + 1
        # z is kept flat, (agent, state, k) in C order; agent i's x_aug, y_i and its view
        # z_i of z are vectors in the local problem's layout (LocalSolution.x_aug), and
        # index[i] gives the entry of z under each of their entries
        self._index = []
        for i in range(network.n_agents):
            copies = np.asarray(network.copies(i))
            k, c, s = np.meshgrid(
                np.arange(cols), np.arange(len(copies)), np.arange(nx), indexing="ij"
            )
            self._index.append(((copies[c] * nx + s) * cols + k).reshape(-1))
        ends = np.cumsum([len(index) for index in self._index])
        self._slices = [
            slice(end - len(index), end) for end, index in zip(ends, self._index, strict=True)
        ]
        self._all_index = np.concatenate(self._index)
        self._counts = np.bincount(self._all_index, minlength=network.n_agents * nx * cols)
        self.reset()

    def reset(self) -> None:
        """Forget the warm start: ``y = 0`` and ``z = 0``."""
        self.z = np.zeros(len(self._counts))
        self.y = np.zeros(len(self._all_index))

    def solve(self, kind: str, parameters: Sequence[dict[str, Any]]) -> AdmmResult:
        """Solve the network's V (``kind="V"``) or Q (``kind="Q"``) problem.

        Where an agent's local problem keeps its optimal active set from one iteration
        to the next, its solution is the affine map of :meth:`LocalMpc.region` (one
        matrix-vector product); otherwise (first iteration, active-set change, other
        solvers) the local problem is solved, its active-set steps starting from the
        step the failed region's checks give
        (:meth:`~marl_dmpc.qp.AffineRegion.next_active_set`).

        Parameters
        ----------
        kind : {"V", "Q"}
            Which problem.
        parameters : sequence of dict
            Every agent's parameter values for :meth:`LocalMpc.solve`.
        """
        rho, z, y = self.rho, self.z, self.y
        mpcs, slices, index = self.local_mpcs, self._slices, self._index
        n = len(mpcs)
        static = [mpc.pack(kind, parameters[i], rho) for i, mpc in enumerate(mpcs)]
        regions: list[AffineRegion | None] = [None] * n
        primal_res: list[float] = []
        dual_res: list[float] = []
        converged = failed = False
        x = np.empty_like(y)
        all_index = self._all_index
        views = z[all_index]  # every agent's view of z
        next_rho = rho
        for iteration in range(self.max_iterations):
            if next_rho != rho:
                rho = next_rho
                static = [mpc.pack(kind, parameters[i], rho) for i, mpc in enumerate(mpcs)]
                regions = [None] * n
            # this iteration's inputs (the updates below make new arrays) and the agents
            # solved in it; the local problems' linear terms on x_aug move by y - rho z
            y_used, z_used = y, z
            solved: list[LocalSolution | None] = [None] * n
            d = y - rho * views
            for i in range(n):
                region, di = regions[i], d[slices[i]]
                xi = None if region is None else region.evaluate(di)
                if xi is None:
                    start = None if region is None else region.next_active_set(di)
                    solution = solved[i] = mpcs[i].solve(
                        kind, static[i], y[slices[i]], z[index[i]], start
                    )
                    failed = not solution.success
                    if failed:
                        break
                    xi = solution.x_aug
                    regions[i] = mpcs[i].region(kind)
                x[slices[i]] = xi
            if failed:
                break
            z_new = np.bincount(all_index, weights=x, minlength=len(z)) / self._counts
            views_new = z_new[all_index]
            r = x - views_new
            dz = views_new - views
            y = y + rho * r
            z, views = z_new, views_new
            primal, dual = float(np.sqrt(r @ r)), rho * float(np.sqrt(dz @ dz))
            primal_res.append(primal)
            dual_res.append(dual)
            if self.tolerance > 0:
                if primal <= self.tolerance and dual <= self.dual_tolerance:
                    converged = True
                    break
                if iteration + 1 < RHO_WAIT or (iteration + 1) % RHO_PERIOD:
                    continue
                if primal > RHO_BALANCE * dual:
                    next_rho = rho * RHO_FACTOR
                elif dual > RHO_BALANCE * primal:
                    next_rho = rho / RHO_FACTOR
        # the local solutions of the last iteration (the failed one included), from its
        # inputs
        local = [
            solved[i] or mpcs[i].solve(kind, static[i], y_used[slices[i]], z_used[index[i]])
            for i in range(n)
        ]
        self.y = y
        self.z = z
        return AdmmResult(
            local=local,
            iterations=len(primal_res),
            primal_residuals=np.asarray(primal_res),
            dual_residuals=np.asarray(dual_res),
            converged=converged,
        )
