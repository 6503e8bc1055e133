"""The paper's baselines: nominal and scenario MPC of a linear network, centralized.

A scenario MPC predicts ``K`` trajectories of the network's state, one per scenario
``k`` with its own model ``(A_k, B_k)`` and disturbance sequence ``w_k``, all driven by
one shared input sequence::

    min  sum_k [ sum_{t=1}^{N-1} gamma^t (x_k,t - r)^T Q (x_k,t - r)
                 + gamma^N (x_k,N - r)^T Q_N (x_k,N - r) + sum_{t=0}^{N-1} gamma^t c^T s_k,t ]
         + m sum_{t=0}^{N-1} gamma^t (u_t - v)^T R (u_t - v)
    s.t. x_k,0 = x,   x_k,t+1 = A_k x_k,t + B_k u_t + w_k,t,
         lb - s_k,t <= C x_k,t+1 <= ub + s_k,t,   s_k,t >= 0,   u_lb <= u_t <= u_ub,

the state bounds softened by slacks weighted by ``c``, the input cost counted ``m`` times
(``m = K`` keeps its weight against the ``K`` state costs, as in the power system's
scenario MPC; example 1's counts it once), ``r`` and ``v`` set points
given at every solve. The nominal MPC is the case ``K = 1`` with one model and no
disturbance. Only the first input is applied.

The states are eliminated (condensed) with NumPy once, at construction: the QP's
variables are the inputs and the slacks, its matrices are constant, and a solve only
computes its linear term and bounds (two matrix-vector products) and calls the QP
solver. Built symbolically instead, the power system's 100-scenario MPC took 14 s to
build and 40 ms per solve, most of it in evaluating its expression graph.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import casadi as cs
import numpy as np
import numpy.typing as npt

from .solvers import solver_setup

#: Curvature added to the slacks' cost (``0.5 eps s^2``, negligible next to ``c s``).
SLACK_REGULARIZATION = 1e-8


class ProblemTooLarge(ValueError):
    """A problem would not fit in the memory available; the message is one line."""


def scenario_mpc_bytes(scenarios: int, nx: int, nu: int, horizon: int, rows: int) -> int:
    """An estimate of the peak memory of building a :class:`ScenarioMpc` (its dense
    matrices, counted twice for the copies made while converting them), in bytes."""
    K, N = scenarios, horizon
    n_u, n_s = N * nu, K * rows * N
    n = n_u + n_s
    # Phi, Gamma, Psi, 2 Q Gamma, C Phi and C Psi of one scenario
    per_scenario = N * nx * (nx + 2 * N * nu + N * nx) + rows * N * (nx + N * nx)
    return 8 * 2 * (n * n + 2 * n_s * n + K * per_scenario)


def available_memory() -> int:
    """The memory available to new allocations, in bytes (``MemAvailable`` of Linux,
    else the free physical pages)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_scenario_size(
    scenarios: int, nx: int, nu: int, horizon: int, rows: int, copies: int = 1
) -> None:
    """Refuse a scenario MPC that would not fit in memory (``copies`` built at once).

    Raises
    ------
    ProblemTooLarge
        Naming the size needed and available.
    """
    need = copies * scenario_mpc_bytes(scenarios, nx, nu, horizon, rows)
    available = available_memory()
    if need > available:
        at_once = f", {copies} at once" if copies > 1 else ""
        raise ProblemTooLarge(
            f"a scenario MPC with K={scenarios} scenarios needs about {_size(need)} of memory"
            f"{at_once}, more than the {_size(available)} available; use fewer scenarios"
            + (" or fewer --workers" if copies > 1 else "")
        )


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    raise AssertionError  # unreachable


@dataclass(frozen=True)
class SoftStateBounds:
    """``lb - s <= C x <= ub + s`` with ``s >= 0`` weighted by ``weight`` in the cost
    (``C`` selects or combines states; ``lb``, ``ub`` and ``weight`` have one entry per
    row of ``C``)."""

    C: npt.NDArray[np.floating]
    lb: npt.NDArray[np.floating]
    ub: npt.NDArray[np.floating]
    weight: npt.NDArray[np.floating]


@dataclass(frozen=True)
class MpcAction:
    """An MPC's answer: the first input, whether the solver succeeded, its status and
    the wall time of the solve (ms)."""

    u0: npt.NDArray[np.floating]
    success: bool
    status: str
    solve_ms: float


def _prediction(
    A: npt.NDArray[np.floating], B: npt.NDArray[np.floating], N: int
) -> tuple[npt.NDArray, npt.NDArray, npt.NDArray]:
    """``(Phi, Gamma, Psi)`` with ``[x_1; ...; x_N] = Phi x_0 + Gamma [u_0; ...] + Psi
    [w_0; ...]`` for ``x+ = A x + B u + w``."""
    nx, nu = B.shape
    powers = [np.eye(nx)]
    for _ in range(N):
        powers.append(A @ powers[-1])
    Phi = np.vstack(powers[1:])
    Gamma = np.zeros((N * nx, N * nu))
    Psi = np.zeros((N * nx, N * nx))
    for t in range(N):  # block row of x_{t+1}
        for tau in range(t + 1):
            P = powers[t - tau]
            Gamma[t * nx : (t + 1) * nx, tau * nu : (tau + 1) * nu] = P @ B
            Psi[t * nx : (t + 1) * nx, tau * nx : (tau + 1) * nx] = P
    return Phi, Gamma, Psi


class ScenarioMpc:
    """The centralized scenario MPC of a linear network (see the module).

    Parameters
    ----------
    A, B : array of shape (K, nx, nx) and (K, nx, nu)
        Every scenario's model.
    horizon : int
        Prediction horizon ``N``.
    discount : float
        Discount ``gamma``.
    Q, R : array of shape (nx, nx) and (nu, nu)
        State and input weights (positive semidefinite; the input's definite).
    bounds : SoftStateBounds
        The softened state bounds, on ``x_t`` for every ``t`` of ``bounded_steps``.
    u_lb, u_ub : array of shape (nu,)
        Hard input bounds.
    Q_terminal : array of shape (nx, nx), optional
        ``Q_N``; ``Q`` by default.
    input_multiplier : float, optional
        ``m``; ``K`` by default.
    bounded_steps : sequence of int, optional
        The steps ``t`` (in ``1..N``) whose states are bounded; all by default.
    slack_discount_shift : int, optional
        The slack of the bound on ``x_t`` costs ``gamma^(t - slack_discount_shift)``
        times its weight: 1 (the default) discounts it as the stage cost of the step
        that leads to ``x_t``, 0 as the stage cost of ``x_t`` itself.
    solver : str, optional
        A solver of :mod:`marl_dmpc.solvers`; an NLP solver (IPOPT) gets the QP through
        CasADi's ``nlpsol`` plugin. HiGHS by default.
    fallback : str or None, optional
        The solver of a QP that ``solver`` fails (IPOPT by default): CasADi marks some QPs
        that HiGHS reports optimal unsuccessful and returns zeros for them (measured: 8
        of 100 steps of a power-system episode, 50 scenarios); :attr:`fallbacks` counts
        them.
    """

    def __init__(
        self,
        A: npt.ArrayLike,
        B: npt.ArrayLike,
        horizon: int,
        discount: float,
        Q: npt.ArrayLike,
        R: npt.ArrayLike,
        bounds: SoftStateBounds,
        u_lb: npt.ArrayLike,
        u_ub: npt.ArrayLike,
        Q_terminal: npt.ArrayLike | None = None,
        input_multiplier: float | None = None,
        bounded_steps: Sequence[int] | None = None,
        slack_discount_shift: int = 1,
        solver: str = "highs",
        fallback: str | None = "ipopt",
    ) -> None:
        A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
        if A.ndim != 3 or B.ndim != 3 or A.shape[0] != B.shape[0]:
            raise ValueError("A and B must be stacks of one model per scenario")
        K, nx, nu, N = A.shape[0], A.shape[1], B.shape[2], horizon
        check_scenario_size(K, nx, nu, N, np.shape(bounds.C)[0])
        self.n_scenarios, self.nx, self.nu, self.horizon = K, nx, nu, N
        Q = np.asarray(Q, dtype=float)
        Q_N = Q if Q_terminal is None else np.asarray(Q_terminal, dtype=float)
        gammas = discount ** np.arange(N + 1)
        # weights of [x_1; ...; x_N] and [u_0; ...; u_{N-1}]
        Q_bar = np.zeros((N * nx, N * nx))
        for t in range(1, N + 1):
            Q_bar[(t - 1) * nx : t * nx, (t - 1) * nx : t * nx] = gammas[t] * (Q_N if t == N else Q)
        R_bar = np.kron(np.diag(gammas[:N]), np.asarray(R, dtype=float))
        C = np.asarray(bounds.C, dtype=float)
        steps = np.arange(1, N + 1) if bounded_steps is None else np.asarray(bounded_steps)
        if steps.size == 0 or steps.min() < 1 or steps.max() > N or len(set(steps)) < steps.size:
            raise ValueError(f"bounded_steps must be distinct steps in 1..{N}")
        rows, T = C.shape[0] * steps.size, steps.size
        C_bar = np.kron(np.eye(N)[steps - 1], C)  # the bounded states of [x_1; ...; x_N]
        n_u, n_s = N * nu, K * rows
        # per scenario: the states' affine map and what enters the bounds
        self._Phi, self._Psi, self._QG, self._CPhi, self._CPsi = [], [], [], [], []
        H = np.zeros((n_u + n_s, n_u + n_s))
        m = K if input_multiplier is None else input_multiplier
        H[:n_u, :n_u] = 2 * m * R_bar
        A_qp = np.zeros((2 * n_s, n_u + n_s))
        for k in range(K):
            Phi, Gamma, Psi = _prediction(A[k], B[k], N)
            H[:n_u, :n_u] += 2 * Gamma.T @ Q_bar @ Gamma
            self._Phi.append(Phi)
            self._Psi.append(Psi)
            self._QG.append(2 * Q_bar @ Gamma)
            rows_k = slice(k * rows, (k + 1) * rows)
            slacks = n_u + np.arange(k * rows, (k + 1) * rows)
            A_qp[rows_k, :n_u] = C_bar @ Gamma  # lower: C x + s >= lb
            A_qp[rows_k, slacks] = np.eye(rows)
            upper = slice(n_s + k * rows, n_s + (k + 1) * rows)
            A_qp[upper, :n_u] = C_bar @ Gamma  # upper: C x - s <= ub
            A_qp[upper, slacks] = -np.eye(rows)
            self._CPhi.append(C_bar @ Phi)
            self._CPsi.append(C_bar @ Psi)
        # the slacks' cost: gamma^(t - shift) c for the bound on x_t
        slack_gammas = gammas[steps - slack_discount_shift]
        weight = np.asarray(bounds.weight, float)
        self._g_slack = np.kron(np.ones(K), np.kron(slack_gammas, weight))
        self._R2 = 2 * m * R_bar
        self._lb_bar = np.tile(np.asarray(bounds.lb, dtype=float), T)
        self._ub_bar = np.tile(np.asarray(bounds.ub, dtype=float), T)
        H = 0.5 * (H + H.T)  # exactly symmetric, as the QP solvers expect
        # a tiny curvature on the slacks, which enter the cost linearly: with a singular
        # Hessian HiGHS reported some of these QPs unbounded and OSQP stalled
        H[n_u:, n_u:] += SLACK_REGULARIZATION * np.eye(n_s)
        self._H, self._A = cs.sparsify(cs.DM(H)), cs.sparsify(cs.DM(A_qp))
        self._lbx = np.concatenate((np.tile(np.asarray(u_lb, dtype=float), N), np.zeros(n_s)))
        self._ubx = np.concatenate(
            (np.tile(np.asarray(u_ub, dtype=float), N), np.full(n_s, np.inf))
        )
        self._solvers = {}
        self._sparsity = {"h": self._H.sparsity(), "a": self._A.sparsity()}
        self.solver, self.fallback = solver, fallback
        self._qp(solver)
        #: how many solves the fallback solver made
        self.fallbacks = 0

    def _qp(self, name: str) -> cs.Function:
        """The QP solver ``name`` (built once)."""
        if name not in self._solvers:
            plugin, kind, opts = solver_setup(name)
            if kind != "conic":  # an NLP solver gets the QP through CasADi's nlpsol plugin
                opts = {"nlpsol": plugin, "nlpsol_options": opts, "error_on_fail": False}
                plugin = "nlpsol"
            self._solvers[name] = cs.conic(f"scenario_mpc_{name}", plugin, self._sparsity, opts)
        return self._solvers[name]

    def solve(
        self,
        state: npt.ArrayLike,
        disturbances: npt.ArrayLike | None = None,
        x_ref: npt.ArrayLike | None = None,
        u_ref: npt.ArrayLike | None = None,
    ) -> MpcAction:
        """The first input at ``state``.

        Parameters
        ----------
        state : array of shape (nx,)
            The network's state.
        disturbances : array of shape (K, nx, N) or (K, nx), optional
            Every scenario's ``w_k``, a sequence or held over the horizon (zero by
            default).
        x_ref, u_ref : array of shape (nx,) and (nu,), optional
            The set points ``r`` and ``v`` (zero by default).
        """
        K, nx, nu, N = self.n_scenarios, self.nx, self.nu, self.horizon
        w = np.zeros((K, nx, N)) if disturbances is None else np.asarray(disturbances, float)
        if w.ndim == 2:
            w = np.repeat(w[:, :, None], N, axis=2)
        if w.shape != (K, nx, N):
            raise ValueError(f"disturbances must have shape {(K, nx, N)}; got {w.shape}")
        x0 = np.asarray(state, dtype=float).reshape(-1)
        r = np.zeros(nx) if x_ref is None else np.asarray(x_ref, dtype=float).reshape(-1)
        v = np.zeros(nu) if u_ref is None else np.asarray(u_ref, dtype=float).reshape(-1)
        g_u = -self._R2 @ np.tile(v, N)
        lower, upper = [], []
        for k in range(K):
            w_k = w[k].reshape(-1, order="F")  # [w_0; w_1; ...]
            free = self._Phi[k] @ x0 + self._Psi[k] @ w_k  # the states at u = 0
            g_u += self._QG[k].T @ (free - np.tile(r, N))
            bound_free = self._CPhi[k] @ x0 + self._CPsi[k] @ w_k
            lower.append(self._lb_bar - bound_free)
            upper.append(self._ub_bar - bound_free)
        n_s = len(self._g_slack)
        lba = np.concatenate((*lower, np.full(n_s, -np.inf)))
        uba = np.concatenate((np.full(n_s, np.inf), *upper))
        data = {
            "h": self._H,
            "g": np.concatenate((g_u, self._g_slack)),
            "a": self._A,
            "lba": lba,
            "uba": uba,
            "lbx": self._lbx,
            "ubx": self._ubx,
        }
        start = time.perf_counter()
        u0, success, status = self._call(self.solver, data)
        if not success and self.fallback is not None:
            self.fallbacks += 1
            u0, success, status = self._call(self.fallback, data)
        solve_ms = 1e3 * (time.perf_counter() - start)
        return MpcAction(u0, success, status, solve_ms)

    def _call(self, name: str, data: dict[str, Any]) -> tuple[npt.NDArray, bool, str]:
        qp = self._qp(name)
        out = qp(**data)
        stats = qp.stats()
        status = stats.get("return_status") or stats.get("solver_stats", {}).get("return_status")
        u0 = np.asarray(out["x"]).reshape(-1)[: self.nu].copy()
        return u0, bool(stats["success"]), f"{name}: {status}"
