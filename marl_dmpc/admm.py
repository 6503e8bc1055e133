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
1000 iterations without converging). The fixed point is the same for any ``rho``.

With a tolerance and a memory, the iteration is Anderson-accelerated (:class:`_Anderson`):
as a map of ``d = y - rho z`` it is affine while the local active sets hold, and its
slow modes are few. They come from copies whose owner cannot move them while their
holder's cost is very sensitive to them (e.g. a neighbour's angle under a power-system
area whose input is saturated): plain ADMM moves their duals by ``rho`` times a tiny
residual per iteration (measured on the power system: a quarter of the solves of the
first episodes at the 1000-iteration cap, the residual falling 3 % per 100 iterations).
The extrapolation's history is dropped whenever a local active set or ``rho`` changes.

A tolerance of 0 runs exactly the cap with the nominal ``rho`` and no acceleration (the
release's plain ADMM with 50 iterations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.linalg import lapack

from .config import AdmmSettings
from .local_mpc import LocalMpc, LocalSolution
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
#: Tikhonov term of Anderson acceleration's least squares, relative to the mean squared
#: norm of the residual differences.
ANDERSON_REGULARIZATION = 1e-12


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
        One local MPC per agent, in agent order.
    settings : AdmmSettings
        The penalty ``rho``, the iteration cap, the tolerances on the primal and the
        dual residual (a primal tolerance of 0 runs exactly the cap) and the memory of
        the Anderson acceleration (:class:`_Anderson`; 0 is plain ADMM, and it is used
        only with a tolerance). The coordinator gives ``rho`` to the local problems at
        every solve.
    """

    def __init__(
        self,
        network: Network,
        local_mpcs: Sequence[LocalMpc],
        settings: AdmmSettings,
    ) -> None:
        if len(local_mpcs) != network.n_agents:
            raise ValueError("one local MPC per agent is needed")
        self.network = network
        self.local_mpcs = list(local_mpcs)
        self.settings = settings
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
        # the release's plain ADMM (tolerance 0) is never accelerated
        self._anderson = _Anderson(
            settings.admm_memory if settings.admm_tol > 0 else 0, len(self._all_index)
        )
        self.reset()

    def reset(self) -> None:
        """Forget the warm start: ``y = 0`` and ``z = 0``."""
        self.z = np.zeros(len(self._counts))
        self.y = np.zeros(len(self._all_index))

    def state(self) -> dict[str, Any]:
        """The warm start of the next solve as plain data: ``y``, ``z`` and the local
        solvers' active sets."""
        return {
            "y": self.y.copy(),
            "z": self.z.copy(),
            "active_sets": [mpc.active_sets() for mpc in self.local_mpcs],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the warm start of :meth:`state`."""
        y, z = np.asarray(state["y"], dtype=float), np.asarray(state["z"], dtype=float)
        if y.shape != self.y.shape or z.shape != self.z.shape:
            raise ValueError("the ADMM state belongs to another network or horizon")
        self.y, self.z = y.copy(), z.copy()
        for mpc, active_sets in zip(self.local_mpcs, state["active_sets"], strict=True):
            mpc.set_active_sets(active_sets)

    def solve(self, kind: str, parameters: Sequence[dict[str, Any]]) -> AdmmResult:
        """Solve the network's V (``kind="V"``) or Q (``kind="Q"``) problem.

        The iteration runs on ``d = y - rho z`` (every agent's view of it), the only input
        of the local problems (their linear term on ``x_aug``); ``z`` is ``-avg(d) / rho``
        because the duals of one entry's copies sum to zero. Where an agent's local
        problem keeps its optimal active set from one iteration to the next, its
        solution is the affine map of :meth:`LocalMpc.region` (one matrix-vector
        product); otherwise (first iteration, active-set change, other solvers) the
        local problem is solved, its active-set steps starting from the step the failed
        region's checks give (:meth:`~marl_dmpc.qp.AffineRegion.next_active_set`).

        Parameters
        ----------
        kind : {"V", "Q"}
            Which problem.
        parameters : sequence of dict
            Every agent's parameter values for :meth:`LocalMpc.solve`.
        """
        settings = self.settings
        rho = settings.rho
        mpcs, slices = self.local_mpcs, self._slices
        n = len(mpcs)
        static = [mpc.pack(kind, parameters[i], rho) for i, mpc in enumerate(mpcs)]
        regions: list[AffineRegion | None] = [None] * n
        primal_res: list[float] = []
        dual_res: list[float] = []
        converged = failed = False
        x = np.empty_like(self.y)
        views = self._view(self.z)
        d = self.y - rho * views
        y, z = self.y, self.z
        anderson = self._anderson
        anderson.reset()
        next_rho = rho
        for iteration in range(settings.admm_iters):
            if next_rho != rho:
                # same y and z, new penalty
                d = y - next_rho * views
                rho = next_rho
                static = [mpc.pack(kind, parameters[i], rho) for i, mpc in enumerate(mpcs)]
                regions = [None] * n
                anderson.reset()
            # this iteration's inputs (the updates below make new arrays)
            y_used, views_used = y, views
            solved: list[LocalSolution | None] = [None] * n
            for i in range(n):
                region, di = regions[i], d[slices[i]]
                xi = None if region is None else region.evaluate(di)
                if xi is None:
                    start = None if region is None else region.next_active_set(di)
                    solution = solved[i] = mpcs[i].solve(
                        kind, static[i], y[slices[i]], views[slices[i]], start
                    )
                    failed = not solution.success
                    if failed:
                        break
                    xi = solution.x_aug
                    regions[i] = mpcs[i].region(kind)
                    # the map d -> x changed: the secant history no longer describes it
                    anderson.reset()
                x[slices[i]] = xi
            if failed:
                break
            z = self._average(x)
            views_new = self._view(z)
            r = x - views_new
            dz = views_new - views
            primal, dual = float(np.sqrt(r @ r)), rho * float(np.sqrt(dz @ dz))
            primal_res.append(primal)
            dual_res.append(dual)
            y = y + rho * r
            if settings.admm_tol > 0:
                if primal <= settings.admm_tol and dual <= settings.admm_dual_tol:
                    converged = True
                    break
                if iteration + 1 >= RHO_WAIT and (iteration + 1) % RHO_PERIOD == 0:
                    if primal > RHO_BALANCE * dual:
                        next_rho = rho * RHO_FACTOR
                    elif dual > RHO_BALANCE * primal:
                        next_rho = rho / RHO_FACTOR
            g = y - rho * views_new  # the plain ADMM step's d
            d = anderson.step(d, g)
            if d is g:
                views = views_new
            else:  # the extrapolated point's z and y
                z = -self._average(d) / rho
                views = self._view(z)
                y = d + rho * views
        # the local solutions of the last iteration (the failed one included), from its
        # inputs
        local = [
            solved[i] or mpcs[i].solve(kind, static[i], y_used[slices[i]], views_used[slices[i]])
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

    def _average(self, values: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        """The average over every copy of each entry of ``z``."""
        return np.bincount(self._all_index, weights=values, minlength=len(self._counts)) / (
            self._counts
        )

    def _view(self, z: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        """Every agent's view of ``z``, in the layout of ``y``."""
        return z[self._all_index]


class _Anderson:
    """Type-II Anderson acceleration of a fixed-point iteration ``d <- G(d)`` (Walker and
    Ni, "Anderson acceleration for fixed-point iterations", 2011): the next point is
    ``G(d) - dG gamma``, with ``gamma`` fitting the last ``memory`` residual differences
    ``dF`` to the residual ``G(d) - d`` in least squares (normal equations with a small
    Tikhonov term, :data:`ANDERSON_REGULARIZATION`). While ``G`` is affine (the local
    problems keep their active sets), this is GMRES on the fixed-point equation, which
    removes the few slow modes plain ADMM has when ``rho`` suits some entries and not
    others. Memory 0 is the plain iteration."""

    def __init__(self, memory: int, size: int) -> None:
        self.memory = memory
        self._F = np.zeros((memory, size))  # rows: the residual differences
        self._G = np.zeros((memory, size))  # rows: the step differences
        self._gram = np.zeros((memory, memory))  # F F^T
        self.reset()

    def reset(self) -> None:
        """Forget the history (``G`` changed)."""
        self._f: npt.NDArray[np.floating] | None = None
        self._g: npt.NDArray[np.floating] | None = None
        self._used = 0  # rows of the history in use
        self._next = 0  # the row the next difference goes to (the oldest when full)

    def step(
        self, d: npt.NDArray[np.floating], g: npt.NDArray[np.floating]
    ) -> npt.NDArray[np.floating]:
        """The next point after ``d``, whose plain step is ``g = G(d)`` (``g`` itself
        when there is no history)."""
        if self.memory == 0:
            return g
        f = g - d
        if self._f is not None:
            k, df = self._next, f - self._f
            self._F[k] = df
            self._G[k] = g - self._g
            self._used = max(self._used, k + 1)
            column = self._F[: self._used] @ df
            self._gram[k, : self._used] = column
            self._gram[: self._used, k] = column
            self._next = (k + 1) % self.memory
        self._f, self._g = f, g
        used = self._used
        if used == 0:
            return g
        gram = self._gram[:used, :used]
        gram = gram + (ANDERSON_REGULARIZATION * np.trace(gram) / used) * np.eye(used)
        _, gamma, info = lapack.dposv(gram, self._F[:used] @ f)
        if info != 0:  # numerically dependent differences: start over
            self.reset()
            return g
        return g - gamma @ self._G[:used]
