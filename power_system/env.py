"""Example 2's plant as a gymnasium environment: the continuous-time four-area model,
integrated over every step with the input and the load held."""

from __future__ import annotations

from typing import Any

import casadi as cs
import gymnasium as gym
import numpy as np
import numpy.typing as npt

from marl_dmpc.blocks import parameter_name
from marl_dmpc.envs import NetworkEnv
from reproduction.power_system import model


def network_matrices(
    tie: npt.NDArray[np.floating] = model.P_TIE,
) -> tuple[npt.NDArray, npt.NDArray, npt.NDArray]:
    """The network's continuous-time ``(A, B, L)``: ``x' = A x + B u + L load``."""
    net = model.network()
    n, nx = net.n_agents, model.NX
    A = np.zeros((n * nx, n * nx))
    B = np.zeros((n * nx, n * model.NU))
    L = np.zeros((n * nx, n))
    for i in range(n):
        neighbours = net.neighbours(i)
        A_i, B_i, L_i, couplings = model.area_matrices(i, [tie[i, j] for j in neighbours])
        own = slice(i * nx, (i + 1) * nx)
        A[own, own] = A_i
        B[own, i * model.NU : (i + 1) * model.NU] = B_i
        L[own, i] = L_i[:, 0]
        for j, A_ij in zip(neighbours, couplings, strict=True):
            A[own, j * nx : (j + 1) * nx] = A_ij
    return A, B, L


def stage_costs(
    x: npt.ArrayLike, u: npt.ArrayLike, load: npt.ArrayLike
) -> npt.NDArray[np.floating]:
    """Every area's stage cost (docs/reproduction.md): the tracking cost of the set points of
    ``load``, the tie-line power term ``0.5 ts sum_j |P_ij (dtheta_i - dtheta_j)|``
    and the penalty on the angle's violation of ``|dtheta_i| <= 0.1``."""
    net = model.network()
    n = net.n_agents
    x = np.asarray(x, dtype=float).reshape(n, model.NX)
    u = np.asarray(u, dtype=float).reshape(n, model.NU)
    x_o, u_o = model.set_points(load)
    dx, du = x - x_o, u - u_o
    costs = np.einsum("ij,jk,ik->i", dx, model.Q_X, dx) + model.Q_U * (du**2).sum(axis=1)
    theta = x[:, 0]
    for i in range(n):
        for j in net.neighbours(i):
            costs[i] += model.TIE_WEIGHT * model.TS * abs(model.P_TIE[i, j] * (theta[i] - theta[j]))
    violation = np.maximum(0.0, np.abs(theta) - model.THETA_MAX)
    return costs + model.VIOLATION_WEIGHT * violation


class PowerSystemEnv(NetworkEnv):
    """Four power-system areas connected by tie lines, load frequency control.

    Observation: the areas' states concatenated, shape ``(16,)``. Action: their inputs,
    shape ``(4,)``, within ``|u_i| <= U_MAX[i]``. A step integrates the continuous-time
    model over ``TS`` with CVODES (absolute and relative tolerance 1e-8), the input and
    the load held; the load is the schedule's (:func:`model.scheduled_load`) plus
    ``U[-0.1, 0.1]`` noise per area from the generator seeded by ``reset(seed=...)``, or
    the episode's noise given as ``reset(options={"load_noise": (steps, areas)})`` (a
    replayed episode, e.g. one of the release's: :mod:`power_system.noise`).
    ``step`` returns the network's stage cost of the state and action (with the set
    points of the load known at that state) and every area's share in ``info``.

    The learnable MPCs track the load too: :meth:`mpc_parameters` gives, by global
    name, the nominal load of the last step (the one the state reflects) and its set
    points (``load_i``, ``x_o_i``, ``u_o_i``).

    Parameters
    ----------
    max_steps : int, optional
        Steps after which the episode is truncated; :data:`model.EPISODE_STEPS` by
        default, unlimited if ``None``.
    noise : bool, optional
        Whether to disturb the load (``True`` by default).
    """

    metadata: dict[str, Any] = {"render_modes": []}
    state_attributes = ("_x", "_steps", "_load")

    def __init__(self, max_steps: int | None = model.EPISODE_STEPS, noise: bool = True) -> None:
        super().__init__()
        self.network = model.network()
        n = self.n_agents = self.network.n_agents
        self.max_steps = max_steps
        self.noise = noise
        A, B, L = network_matrices()
        x = cs.SX.sym("x", A.shape[0])
        held = cs.SX.sym("held", B.shape[1] + L.shape[1])  # input, then load
        ode = {
            "x": x,
            "p": held,
            "ode": cs.mtimes(A, x) + cs.mtimes(cs.DM(np.hstack((B, L))), held),
        }
        self._integrator = cs.integrator(
            "power_system", "cvodes", ode, 0.0, model.TS, {"abstol": 1e-8, "reltol": 1e-8}
        )
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n * model.NX,), np.float64)
        self.action_space = gym.spaces.Box(-model.U_MAX, model.U_MAX, (n * model.NU,), np.float64)
        self._x = np.zeros(n * model.NX)
        self._load = np.zeros(n)
        self._steps = 0
        self._replayed: npt.NDArray[np.floating] | None = None

    def state_bounds(self) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
        """Every area's soft angle bound ``|dtheta_i| <= THETA_MAX`` (its first state);
        the other states are unbounded."""
        ub = np.full((self.n_agents, model.NX), np.inf)
        ub[:, 0] = model.THETA_MAX
        return -ub.reshape(-1), ub.reshape(-1)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.floating], dict[str, Any]]:
        super().reset(seed=seed)
        self._x = np.zeros(self.n_agents * model.NX)
        self._load = np.zeros(self.n_agents)
        self._steps = 0
        self._replayed = None
        if options is not None and options.get("load_noise") is not None:
            replayed = np.asarray(options["load_noise"], dtype=float)
            if replayed.ndim != 2 or replayed.shape[1] != self.n_agents:
                raise ValueError(
                    f"load_noise must have shape (steps, {self.n_agents}); got {replayed.shape}"
                )
            self._replayed = replayed
        return self._x.copy(), {}

    @property
    def load(self) -> npt.NDArray[np.floating]:
        """The nominal loads of the last step (zero after a reset)."""
        return self._load.copy()

    def mpc_parameters(self) -> dict[str, npt.NDArray[np.floating]]:
        """The MPCs' time-varying parameters at the current state, by global name."""
        x_o, u_o = model.set_points(self._load)
        values: dict[str, npt.NDArray[np.floating]] = {}
        for i in range(self.n_agents):
            values[parameter_name("load", i)] = self._load[i : i + 1].copy()
            values[parameter_name("x_o", i)] = x_o[i]
            values[parameter_name("u_o", i)] = u_o[i]
        return values

    def _advance(self, u: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        agent_costs = stage_costs(self._x, u, self._load)
        self._load = model.scheduled_load(self._steps + 1)  # the step being taken
        disturbed = self._load.copy()
        if self._replayed is not None:
            if self._steps >= len(self._replayed):
                raise ValueError(f"the replayed load noise has only {len(self._replayed)} steps")
            disturbed += self._replayed[self._steps]
        elif self.noise:
            disturbed += self.np_random.uniform(-model.LOAD_NOISE, model.LOAD_NOISE, self.n_agents)
        out = self._integrator(x0=self._x, p=np.concatenate((u, disturbed)))
        self._x = np.asarray(out["xf"], dtype=float).reshape(-1)
        return agent_costs
