"""The learnable MPCs: one definition per agent, used both locally and centralized.

An example describes one agent's learnable MPC once, as a :class:`LocalMpcDefinition`:
its parameters and a :meth:`~LocalMpcDefinition.build` method that adds the agent's
constraints to an MPC and returns its local cost, given symbols for the agent's own state
trajectory, its inputs and its neighbours' state trajectories. From that single
definition this module builds

* :class:`LocalMpc`, agent ``i``'s problem for consensus ADMM: the neighbours'
  trajectories are local copies (decision variables) and the cost is augmented with
  ``y^T (x_aug - z) + rho/2 ||x_aug - z||^2``;
* :func:`build_centralized_mpc`, the network's MPC: the same definitions stacked, each
  agent's neighbour trajectories being the neighbours' own variables.

Hence the distributed and the centralized Q-functions can never drift apart. Parameter
and constraint names are global (see :func:`parameter_name`), so a name means the same
thing in every MPC.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import casadi as cs
import numpy as np
import numpy.typing as npt
from csnlp import Nlp, Solution
from csnlp.wrappers import Mpc, NlpSensitivity

from .network import Network
from .solvers import solver_setup

#: Name of the parameter perturbing V's cost on the first action (as in mpcrl).
PERTURBATION = "cost_perturbation"
#: Name of the parameter (and constraint) fixing Q's first action (as in mpcrl).
INIT_ACTION = "a_init"
#: Names of the consensus-ADMM parameters of a local MPC.
ADMM_DUAL, ADMM_AVERAGE = "admm_y", "admm_z"


def parameter_name(base: str, agent: int, neighbour: int | None = None) -> str:
    """The global name of a parameter of ``agent``.

    ``parameter_name("A", 2)`` is ``"A_2"``; a coupling parameter of agent ``i`` to
    neighbour ``j`` is ``parameter_name("A_c", i, j) == "A_c_i_j"``.
    """
    return f"{base}_{agent}" if neighbour is None else f"{base}_{agent}_{neighbour}"


def state_name(agent: int) -> str:
    """Name of agent ``agent``'s state trajectory in every MPC."""
    return f"x{agent}"


def action_name(agent: int) -> str:
    """Name of agent ``agent``'s input trajectory in every MPC."""
    return f"u{agent}"


class LocalMpcDefinition(ABC):
    """One agent's learnable MPC, as an example specifies it.

    Subclasses set :attr:`nx`, :attr:`nu`, :attr:`horizon` and :attr:`discount`, and
    implement :meth:`learnable_parameters`, :meth:`action_bounds` and :meth:`build`.
    Parameter names returned by the methods must be global (:func:`parameter_name`).
    """

    nx: int
    """Size of one agent's state."""
    nu: int
    """Size of one agent's input."""
    horizon: int
    """Prediction horizon ``N``."""
    discount: float
    """Discount factor ``gamma`` of the MPC's stage costs (and of Q-learning)."""

    @abstractmethod
    def learnable_parameters(self, agent: int, network: Network) -> dict[str, npt.NDArray[np.floating]]:
        """The learnable parameters of ``agent`` with their initial values (global
        names, values shaped as the parameter)."""

    def fixed_parameters(self, agent: int, network: Network) -> dict[str, npt.NDArray[np.floating]]:
        """Non-learnable parameters of ``agent`` with default values (e.g., set points
        updated every step). None by default."""
        return {}

    @abstractmethod
    def action_bounds(self, agent: int) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
        """Hard lower and upper bounds on ``agent``'s input."""

    @abstractmethod
    def build(
        self,
        mpc: Mpc,
        agent: int,
        x: cs.SX,
        u: cs.SX,
        neighbour_states: Mapping[int, cs.SX],
        parameters: Mapping[str, cs.SX],
    ) -> cs.SX:
        """Add ``agent``'s variables (e.g., slacks) and constraints to ``mpc`` and
        return its local cost.

        Parameters
        ----------
        mpc : csnlp.wrappers.Mpc
            The MPC being built (local or centralized). Names of variables and
            constraints added here must contain the agent's index.
        agent : int
            The agent.
        x : casadi.SX
            The agent's state trajectory, shape ``(nx, N + 1)``; ``x[:, 0]`` is fixed to
            the measured state.
        u : casadi.SX
            The agent's inputs, shape ``(nu, N)``.
        neighbour_states : mapping of int to casadi.SX
            Each neighbour's state trajectory, shape ``(nx, N + 1)`` (a local copy in
            the distributed MPC, the neighbour's own variable in the centralized one).
        parameters : mapping of str to casadi.SX
            Every parameter symbol of the MPC, by global name.
        """


def _declare_parameters(
    mpc: Mpc, values: Mapping[str, npt.ArrayLike], sink: dict[str, cs.SX]
) -> None:
    for name, value in values.items():
        shape = np.shape(value)
        shape2d = (1, 1) if len(shape) == 0 else (shape[0], 1) if len(shape) == 1 else shape
        sink[name] = mpc.parameter(name, shape2d)


def _init_solver(mpc: Mpc, solver: str) -> None:
    plugin, kind, opts = solver_setup(solver)
    mpc.init_solver(opts, plugin, kind)


def build_centralized_mpc(
    definition: LocalMpcDefinition, network: Network, solver: str = "qpoases"
) -> Mpc:
    """The network's MPC: every agent's local definition stacked.

    States are named ``x0, x1, ...`` and inputs ``u0, u1, ...`` so that the MPC's state
    and action vectors are the agents' ones concatenated in agent order. The returned MPC
    has neither the first-action constraint nor the exploration perturbation: mpcrl's
    agents add them.
    """
    nlp = Nlp[cs.SX](sym_type="SX", name="centralized")
    mpc = Mpc[cs.SX](nlp, prediction_horizon=definition.horizon, shooting="multi")
    n = network.n_agents
    xs = [mpc.state(state_name(i), definition.nx)[0] for i in range(n)]
    us = []
    for i in range(n):
        lb, ub = definition.action_bounds(i)
        us.append(mpc.action(action_name(i), definition.nu, lb=lb[:, None], ub=ub[:, None])[0])
    pars: dict[str, cs.SX] = {}
    for i in range(n):
        _declare_parameters(mpc, definition.learnable_parameters(i, network), pars)
        _declare_parameters(mpc, definition.fixed_parameters(i, network), pars)
    cost = 0
    for i in range(n):
        neighbours = {j: xs[j] for j in network.neighbours(i)}
        cost += definition.build(mpc, i, xs[i], us[i], neighbours, pars)
    mpc.minimize(cost)
    _init_solver(mpc, solver)
    return mpc


@dataclass
class LocalSolution:
    """Agent ``i``'s solution of its local problem in one ADMM iteration.

    Attributes
    ----------
    x_aug : ndarray, shape (m, nx, N + 1)
        The agent's own predicted trajectory followed by its copies of its neighbours'
        (``m = 1 + number of neighbours``).
    u0 : ndarray, shape (nu,)
        The first input.
    value : float
        The local cost (V: including the exploration perturbation; without the ADMM
        terms).
    success : bool
        Whether the solver succeeded.
    status : str
        The solver's return status.
    solution : csnlp.Solution
        The full solution (primal, duals, parameters).
    """

    x_aug: npt.NDArray[np.floating]
    u0: npt.NDArray[np.floating]
    value: float
    success: bool
    status: str
    solution: Solution


class LocalMpc:
    """Agent ``agent``'s learnable MPC for consensus ADMM, as V(s) and Q(s, a).

    Two csnlp MPCs are built from ``definition``: :attr:`V`, whose cost carries the
    exploration perturbation ``p^T u_0``, and :attr:`Q`, whose first input is constrained
    to the parameter ``a_init``. Both add the ADMM terms
    ``y^T (x_aug - z) + rho/2 ||x_aug - z||^2`` on the augmented trajectory ``x_aug``
    (own trajectory stacked over the neighbours' copies).

    Parameters
    ----------
    definition : LocalMpcDefinition
        The example's definition of one agent's MPC.
    network : Network
        The network the agent belongs to.
    agent : int
        The agent's index.
    rho : float
        The ADMM penalty.
    solver : str, optional
        The solver name (see :mod:`marl_dmpc.solvers`).
    """

    def __init__(
        self,
        definition: LocalMpcDefinition,
        network: Network,
        agent: int,
        rho: float,
        solver: str = "qpoases",
    ) -> None:
        self.definition = definition
        self.network = network
        self.agent = agent
        self.rho = rho
        self.copies = network.copies(agent)
        self.learnable_names = tuple(definition.learnable_parameters(agent, network))
        self.V = self._build("V", solver)
        self.Q = self._build("Q", solver)
        self.aug_shape = (len(self.copies), definition.nx, definition.horizon + 1)
        self._sensitivity = self._build_sensitivity(self.Q)

    def _build(self, kind: str, solver: str) -> Mpc:
        d, i = self.definition, self.agent
        nlp = Nlp[cs.SX](sym_type="SX", name=f"local{i}_{kind}")
        mpc = Mpc[cs.SX](nlp, prediction_horizon=d.horizon, shooting="multi")
        x, _ = mpc.state(state_name(i), d.nx)
        lb, ub = d.action_bounds(i)
        u, _ = mpc.action(action_name(i), d.nu, lb=lb[:, None], ub=ub[:, None])
        copies = {
            j: mpc.variable(f"{state_name(j)}_copy", (d.nx, d.horizon + 1))[0]
            for j in self.network.neighbours(i)
        }
        pars: dict[str, cs.SX] = {}
        _declare_parameters(mpc, d.learnable_parameters(i, self.network), pars)
        _declare_parameters(mpc, d.fixed_parameters(i, self.network), pars)
        cost = d.build(mpc, i, x, u, copies, pars)
        if kind == "V":
            pert = mpc.parameter(PERTURBATION, (d.nu, 1))
            value = cost + cs.dot(pert, u[:, 0])
        else:
            a0 = mpc.parameter(INIT_ACTION, (d.nu, 1))
            mpc.constraint(INIT_ACTION, u[:, 0], "==", a0)
            value = cost
        x_aug = cs.vertcat(x, *copies.values())
        y = mpc.parameter(ADMM_DUAL, x_aug.shape)
        z = mpc.parameter(ADMM_AVERAGE, x_aug.shape)
        diff = x_aug - z
        mpc.minimize(value + cs.sum1(cs.sum2(y * diff)) + 0.5 * self.rho * cs.sumsqr(diff))
        _init_solver(mpc, solver)
        # fast maps from the primal vector (and parameters) to what ADMM needs
        nlp_ = mpc.nlp
        mpc_outputs = cs.Function(
            f"local{i}_{kind}_outputs",
            [nlp_.x, nlp_.p],
            [cs.vec(x_aug), u[:, 0], value],
            {"cse": True},
        )
        mpc.admm_outputs = mpc_outputs  # type: ignore[attr-defined]
        return mpc

    def _build_sensitivity(self, mpc: Mpc) -> cs.Function:
        nlp = mpc.nlp
        theta = cs.vvcat([nlp.parameters[n] for n in self.learnable_names])
        gradient = NlpSensitivity(nlp, theta).jacobian("L-p")
        lam = cs.vertcat(nlp.lam_g, nlp.lam_h)
        return cs.Function(
            f"local{self.agent}_dQ", [nlp.x, nlp.p, lam], [gradient], {"cse": True}
        )

    def solve(
        self,
        kind: str,
        parameters: dict[str, Any],
        y: npt.NDArray[np.floating],
        z: npt.NDArray[np.floating],
        vals0: dict[str, Any] | None = None,
    ) -> LocalSolution:
        """Solve the local V (``kind="V"``) or Q (``kind="Q"``) problem.

        ``parameters`` holds the initial state (``x{i}_0``), the agent's learnable and
        fixed parameters, and ``cost_perturbation`` (V) or ``a_init`` (Q); ``y`` and
        ``z`` have shape :attr:`aug_shape`.
        """
        mpc = self.V if kind == "V" else self.Q
        pars = dict(parameters)
        pars[ADMM_DUAL] = _as_aug_matrix(y)
        pars[ADMM_AVERAGE] = _as_aug_matrix(z)
        sol = mpc.nlp.solve(pars, vals0)
        x_aug, u0, value = mpc.admm_outputs(sol.x, sol.p)
        return LocalSolution(
            x_aug=_from_aug_vector(np.asarray(x_aug).ravel(), self.aug_shape),
            u0=np.asarray(u0).ravel(),
            value=float(value),
            success=bool(sol.success),
            status=str(sol.status),
            solution=sol,
        )

    def gradient(self, solution: LocalSolution) -> npt.NDArray[np.floating]:
        """The gradient of the local Lagrangian of Q w.r.t. the agent's learnable
        parameters, at ``solution`` (a solution of the Q problem)."""
        sol = solution.solution
        return np.asarray(self._sensitivity(sol.x, sol.p, sol.lam_g_and_h)).ravel()


def _as_aug_matrix(a: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """``(m, nx, N+1)`` -> the ``(m * nx, N+1)`` matrix ``x_aug`` of the MPC."""
    m, nx, cols = a.shape
    return a.reshape(m * nx, cols)


def _from_aug_vector(v: npt.NDArray[np.floating], shape: tuple[int, int, int]) -> npt.NDArray[np.floating]:
    """Column-major ``vec(x_aug)`` -> ``(m, nx, N+1)``."""
    m, nx, cols = shape
    return v.reshape(cols, m * nx).T.reshape(m, nx, cols)
