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

With a tolerance, a solve that has not converged after ``RHO_WAIT`` iterations balances
``rho`` every ``RHO_PERIOD`` iterations (Boyd et al., section 3.4.1; the constants are
:mod:`~marl_dmpc.admm_loop`'s): ``rho`` is multiplied by ``RHO_FACTOR`` when the primal
residual exceeds ``RHO_BALANCE`` times the dual one, and divided by it in the opposite
case; every solve starts at the nominal ``rho``. Without it, a solve can stall: in Q(s,
a) the fixed first input pins an agent's ``x_1`` except through its copies of its
neighbours' initial states, which then stay ``~1e-4`` off while ``y`` grows by ``rho``
times that per iteration (measured: 1000 iterations without converging). The fixed point
is the same for any ``rho``.

With a tolerance and a memory, the iteration is Anderson-accelerated
(:func:`~marl_dmpc.admm_loop.anderson`): as a map of ``d = y - rho z`` it is affine
while the local active sets hold, and its slow modes are few. They come from copies
whose owner cannot move them while their holder's cost is very sensitive to them (e.g. a
neighbour's angle under a power-system area whose input is saturated): plain ADMM moves
their duals by ``rho`` times a tiny residual per iteration (measured on the power
system: a quarter of the solves of the first episodes at the 1000-iteration cap, the
residual falling 3 % per 100 iterations). The extrapolation's history is dropped
whenever a local active set or ``rho`` changes.

A tolerance of 0 runs exactly the cap with the nominal ``rho`` and no acceleration (the
release's plain ADMM with 50 iterations).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import admm_loop as loops
from .admm_loop import Loop
from .compiled import cycles_per_second
from .config import AdmmSettings
from .local_mpc import LocalMpc, LocalSolution
from .network import Network
from .qp import ActiveSetQp, QpBatch, QpSolution


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
    agent_seconds : ndarray or None
        With :attr:`AdmmCoordinator.time_agents`: per iteration and agent, the seconds
        of its local work (its local problem, including a solve outside the compiled
        loop); else ``None``.
    """

    local: list[LocalSolution]
    iterations: int
    primal_residuals: npt.NDArray[np.floating]
    dual_residuals: npt.NDArray[np.floating]
    converged: bool
    agent_seconds: npt.NDArray[np.floating] | None = None

    @property
    def own_machine_seconds(self) -> float:
        """The solve's local work with every agent on its own machine: per iteration the
        slowest agent's, summed (communication not counted). Needs
        :attr:`agent_seconds`."""
        if self.agent_seconds is None:
            raise ValueError("the agents' local work was not timed (time_agents)")
        return float(self.agent_seconds.max(axis=1).sum()) if self.iterations else 0.0

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


@dataclass
class _Kind:
    """The agents' local problems of one kind (V or Q) as seen by the iteration."""

    batch: QpBatch  # the QPs solved by the compiled active-set steps
    qp_of: npt.NDArray[np.int64]  # agent -> its QP in the batch, -1 if solved outside
    aug_pos: npt.NDArray[np.int64]  # the batch's QP variable under each entry of x_aug


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
        the Anderson acceleration (:func:`~marl_dmpc.admm_loop.anderson`; 0 is plain
        ADMM, and it is used only with a tolerance). The coordinator gives ``rho`` to
        the local problems at every solve.
    time_agents : bool, optional
        Time every agent's local work in every iteration (for benchmarks:
        :attr:`AdmmResult.agent_seconds`); the numbers are the same either way.
    """

    def __init__(
        self,
        network: Network,
        local_mpcs: Sequence[LocalMpc],
        settings: AdmmSettings,
        time_agents: bool = False,
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
        index = []
        for i in range(network.n_agents):
            copies = np.asarray(network.copies(i))
            k, c, s = np.meshgrid(
                np.arange(cols), np.arange(len(copies)), np.arange(nx), indexing="ij"
            )
            index.append(((copies[c] * nx + s) * cols + k).reshape(-1))
        self._aug_off = np.concatenate(([0], np.cumsum([len(ix) for ix in index])))
        self._slices = [
            slice(int(a), int(b))
            for a, b in zip(self._aug_off[:-1], self._aug_off[1:], strict=True)
        ]
        self._all_index = np.concatenate(index).astype(np.int64)
        self._counts = np.bincount(self._all_index, minlength=network.n_agents * nx * cols).astype(
            float
        )
        # the release's plain ADMM (tolerance 0) is never accelerated
        self._memory = settings.admm_memory if settings.admm_tol > 0 else 0
        self._kinds = {kind: self._kind(kind) for kind in ("V", "Q")}
        self.time_agents = time_agents
        self._cycles_per_second = cycles_per_second() if time_agents else 1.0
        self.reset()
        # compile the loop (or load it from numba's cache) now rather than in a solve
        for info in self._kinds.values():
            idle = self._loop(info, settings.rho)
            idle.ints[loops.I_CAP] = 0
            loops.iterate(info.batch.arrays, idle)

    def _kind(self, kind: str) -> _Kind:
        structures, qp_of, aug_pos, offset = [], [], [], 0
        for mpc in self.local_mpcs:
            problem = mpc.problems[kind]
            if isinstance(problem.solver, ActiveSetQp):
                qp_of.append(len(structures))
                aug_pos.append(problem.aug_index + offset)
                offset += problem.solver.n
                structures.append(problem.solver.structure)
            else:
                qp_of.append(-1)
                aug_pos.append(np.zeros(len(problem.aug_index), dtype=np.int64))
        return _Kind(
            batch=QpBatch(structures),
            qp_of=np.asarray(qp_of, dtype=np.int64),
            aug_pos=np.concatenate(aug_pos).astype(np.int64),
        )

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
        because the duals of one entry's copies sum to zero. The iterations run compiled
        (:func:`~marl_dmpc.admm_loop.iterate`), every agent's local QP by
        :mod:`~marl_dmpc.kkt`'s active-set steps from its last optimal active set,
        whose factorization is re-used while that set holds (one solve with it per
        iteration). A QP those steps do not solve
        (and every local problem of another solver) is solved here by its solver, and
        the iterations go on.

        Parameters
        ----------
        kind : {"V", "Q"}
            Which problem.
        parameters : sequence of dict
            Every agent's parameter values for :meth:`LocalMpc.solve`.
        """
        mpcs, slices, n = self.local_mpcs, self._slices, len(self.local_mpcs)
        info = self._kinds[kind]
        batch, qp_of = info.batch, info.qp_of
        qps = [mpc.problems[kind].solver for mpc in mpcs]
        rho = self.settings.rho
        loop = self._loop(info, rho)
        for i in range(n):
            if qp_of[i] >= 0:
                active = qps[i].active_set
                loop.need_solver[i] = active is None
                if active is not None:
                    batch.set_active_set(int(qp_of[i]), active)
        static = self._set_data(kind, info, parameters, rho, loop)
        # the local solutions found here (and the iteration of each)
        outside: list[LocalSolution | None] = [None] * n
        outside_it = np.full(n, -1)
        failed = False
        while True:
            status = loops.iterate(batch.arrays, loop)
            if status == loops.NEW_RHO:
                rho = float(loop.floats[loops.F_RHO])
                static = self._set_data(kind, info, parameters, rho, loop)
                continue
            if status != loops.SOLVE_OUTSIDE:
                break
            i = int(loop.ints[loops.I_AGENT])
            sl = slices[i]
            start = time.perf_counter()
            if qp_of[i] >= 0:  # the active-set steps failed, or there is no active set
                b = int(qp_of[i])
                sol = qps[i].rescue(batch, b, loop.g[batch.variables(b)])
                solution = self._solution(mpcs[i], kind, static[i], loop, i, sol)
                loop.need_solver[i] = not sol.success
            else:
                solution = mpcs[i].solve(kind, static[i], loop.y_used[sl], loop.views_used[sl])
            if self.time_agents:
                seconds = time.perf_counter() - start
                loop.agent_cycles[loop.ints[loops.I_IT], i] += int(
                    seconds * self._cycles_per_second
                )
            outside[i], outside_it[i] = solution, loop.ints[loops.I_IT]
            if not solution.success:
                failed = True
                break
            loop.x_given[sl] = solution.x_aug
            loop.given[i] = True
        iterations = int(loop.ints[loops.I_IT])
        # the local solutions of the last iteration (the failed one included)
        last = iterations if failed else iterations - 1
        stop = int(loop.ints[loops.I_AGENT]) if failed else n
        local = []
        for i in range(n):
            sl = slices[i]
            if i <= stop and outside_it[i] == last:
                solution = outside[i]
            elif i > stop:  # not reached in the failed iteration
                solution = mpcs[i].solve(kind, static[i], loop.y_used[sl], loop.views_used[sl])
            else:
                w, lam = batch.point(int(qp_of[i]))
                qp_solution = QpSolution(w.copy(), lam.copy(), True, "active set re-used")
                solution = self._solution(mpcs[i], kind, static[i], loop, i, qp_solution)
            local.append(solution)
            if qp_of[i] >= 0 and not loop.need_solver[i]:
                qps[i].active_set = batch.active_set(int(qp_of[i])).copy()
        self.y, self.z = loop.y, loop.z
        return AdmmResult(
            local=local,
            iterations=iterations,
            primal_residuals=loop.primal[:iterations].copy(),
            dual_residuals=loop.dual[:iterations].copy(),
            converged=status == loops.CONVERGED,
            agent_seconds=(
                loop.agent_cycles[:iterations] / self._cycles_per_second
                if self.time_agents
                else None
            ),
        )

    def _set_data(
        self,
        kind: str,
        info: _Kind,
        parameters: Sequence[dict[str, Any]],
        rho: float,
        loop: Loop,
    ) -> list[npt.NDArray[np.floating]]:
        """Pack every agent's parameters with ``rho``; the batch's QPs get their data."""
        static = []
        for i, mpc in enumerate(self.local_mpcs):
            static.append(mpc.pack(kind, parameters[i], rho))
            b = int(info.qp_of[i])
            if b >= 0:
                Hx, Ax, lo, up, linear0 = mpc.problems[kind].solver.data(static[-1])
                info.batch.set_data(b, Hx, Ax, lo, up)
                loop.linear0[info.batch.variables(b)] = linear0
        return static

    def _solution(
        self,
        mpc: LocalMpc,
        kind: str,
        static: npt.NDArray[np.floating],
        loop: Loop,
        i: int,
        solution: QpSolution,
    ) -> LocalSolution:
        """Agent ``i``'s local solution from its QP's ``solution`` in this iteration."""
        sl = self._slices[i]
        p = np.concatenate((static, loop.y_used[sl], loop.views_used[sl]))
        return mpc.solution(kind, solution, p)

    def _loop(self, info: _Kind, rho: float) -> Loop:
        """A fresh loop state, warm-started from the last solve's ``y`` and ``z``."""
        settings, size, memory, n = (
            self.settings,
            len(self._all_index),
            self._memory,
            len(self.local_mpcs),
        )
        views = self.z[self._all_index]
        ints = np.zeros(8, dtype=np.int64)
        ints[loops.I_CAP], ints[loops.I_MEMORY] = settings.admm_iters, memory
        ints[loops.I_TIMING] = self.time_agents
        n_vars = len(info.batch.arrays.w)
        return Loop(
            aug_off=self._aug_off,
            aug_pos=info.aug_pos,
            qp_of=info.qp_of,
            need_solver=np.zeros(n, dtype=np.bool_),
            all_index=self._all_index,
            counts=self._counts,
            linear0=np.zeros(n_vars),
            g=np.zeros(n_vars),
            y=self.y.copy(),
            z=self.z.copy(),
            views=views,
            d=self.y - rho * views,
            step=np.zeros(size),
            x=np.zeros(size),
            x_given=np.zeros(size),
            given=np.zeros(n, dtype=np.bool_),
            y_used=np.zeros(size),
            views_used=np.zeros(size),
            primal=np.zeros(settings.admm_iters),
            dual=np.zeros(settings.admm_iters),
            F=np.zeros((size, memory)),
            G=np.zeros((memory, size)),
            gram=np.zeros((memory, memory)),
            chol=np.zeros((memory, memory)),
            column=np.zeros(memory),
            rhs=np.zeros(memory),
            f_prev=np.zeros(size),
            g_prev=np.zeros(size),
            agent_cycles=np.zeros((settings.admm_iters if self.time_agents else 0, n), np.int64),
            ints=ints,
            floats=np.array([rho, rho, settings.admm_tol, settings.admm_dual_tol]),
        )
