"""The learnable MPCs: one definition per agent, used both locally and centralized.

An example describes one agent's learnable MPC once, as a :class:`LocalMpcDefinition`:
its parameters and a :meth:`~LocalMpcDefinition.build` method that adds the agent's
constraints to an MPC and returns its local cost, given symbols for the agent's own state
trajectory, its inputs and its neighbours' state trajectories. From that single
definition this module builds

* :class:`~marl_dmpc.local_mpc.LocalMpc`, agent ``i``'s problem for consensus ADMM:
  the neighbours' trajectories are local copies (decision variables) and the cost is
  augmented with ``y^T (x_aug - z) + rho/2 ||x_aug - z||^2``;
* :func:`build_centralized_mpc`, the network's MPC: the same definitions stacked, each
  agent's neighbour trajectories being the neighbours' own variables.

Hence the distributed and the centralized Q-functions can never drift apart. Parameter
and constraint names are global (see :func:`parameter_name`), so a name means the same
thing in every MPC.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import casadi as cs
import numpy as np
import numpy.typing as npt
from csnlp import Nlp
from csnlp.wrappers import Mpc, NlpSensitivity

from .blocks import action_name, parameter_name, state_name
from .network import Network
from .solvers import solver_setup

__all__ = [
    "ADMM_AVERAGE",
    "ADMM_DUAL",
    "ADMM_PENALTY",
    "INIT_ACTION",
    "PERTURBATION",
    "LocalMpcDefinition",
    "action_name",
    "build_centralized_mpc",
    "dual_function",
    "lagrangian_gradient",
    "parameter_name",
    "state_name",
]

#: Name of the parameter perturbing V's cost on the first action (as in mpcrl).
PERTURBATION = "cost_perturbation"
#: Name of the parameter (and constraint) fixing Q's first action (as in mpcrl).
INIT_ACTION = "a_init"
#: Names of the consensus-ADMM parameters of a local MPC.
ADMM_DUAL, ADMM_AVERAGE = "admm_y", "admm_z"
#: Name of the ADMM penalty parameter ``rho`` of a local MPC (it may change during a solve).
ADMM_PENALTY = "admm_rho"


class LocalMpcDefinition(ABC):
    """One agent's learnable MPC, as an example specifies it.

    Subclasses set :attr:`nx` and :attr:`nu` and implement
    :meth:`learnable_parameters`, :meth:`action_bounds` and :meth:`build`; the horizon
    and the discount are given at construction. Parameter names returned by the methods
    must be global (:func:`parameter_name`). :meth:`build` writes the dynamics with
    :func:`~marl_dmpc.blocks.add_dynamics` and every softened state bound with
    :func:`~marl_dmpc.blocks.add_soft_bounds`.
    """

    nx: int
    """Size of one agent's state."""
    nu: int
    """Size of one agent's input."""
    horizon: int
    """Prediction horizon ``N``."""
    discount: float
    """Discount factor ``gamma`` of the MPC's stage costs (and of Q-learning)."""

    def __init__(self, horizon: int, discount: float) -> None:
        self.horizon = horizon
        self.discount = discount

    @abstractmethod
    def learnable_parameters(
        self, agent: int, network: Network
    ) -> dict[str, npt.NDArray[np.floating]]:
        """The learnable parameters of ``agent`` with their initial values (global
        names, values shaped as the parameter)."""

    def fixed_parameters(self, agent: int, network: Network) -> dict[str, npt.NDArray[np.floating]]:
        """Non-learnable parameters of ``agent`` with default values (e.g., set points
        updated every step). None by default."""
        return {}

    @abstractmethod
    def action_bounds(
        self, agent: int
    ) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
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


def declare_parameters(
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
        declare_parameters(mpc, definition.learnable_parameters(i, network), pars)
        declare_parameters(mpc, definition.fixed_parameters(i, network), pars)
    cost = 0
    for i in range(n):
        neighbours = {j: xs[j] for j in network.neighbours(i)}
        cost += definition.build(mpc, i, xs[i], us[i], neighbours, pars)
    mpc.minimize(cost)
    _init_solver(mpc, solver)
    return mpc


def lagrangian_gradient(
    mpc: Mpc, names: Sequence[str], p: cs.SX, lam: cs.SX, name: str
) -> cs.Function:
    """``(x, p, lam) -> dL/dtheta``: the gradient of ``mpc``'s Lagrangian w.r.t. the
    parameters ``names`` (stacked as vectors in that order), with the parameter and
    multiplier vectors laid out as the caller's ``p`` and ``lam``."""
    nlp = mpc.nlp
    theta = cs.vvcat([nlp.parameters[n] for n in names])
    gradient = cs.densify(NlpSensitivity(nlp, theta).jacobian("L-p"))
    return cs.Function(name, [nlp.x, p, lam], [gradient], {"cse": True})


def lagrangian_hessian(
    mpc: Mpc, names: Sequence[str], p: cs.SX, lam: cs.SX, name: str
) -> cs.Function:
    """``(x, p, lam) -> d2L/dtheta2``: the second derivative of ``mpc``'s Lagrangian
    w.r.t. the parameters ``names`` at fixed primal and dual variables (mpcrl's
    "approx" Hessian: the solution's sensitivity left out), laid out as
    :func:`lagrangian_gradient`."""
    nlp = mpc.nlp
    theta = cs.vvcat([nlp.parameters[n] for n in names])
    hessian = cs.densify(NlpSensitivity(nlp, theta).hessian("L-pp"))
    return cs.Function(name, [nlp.x, p, lam], [hessian], {"cse": True})


def dual_function(mpc: Mpc, lam: cs.SX, constraint: str) -> cs.Function:
    """``lam -> the multipliers of the named constraint`` (an equality or an
    inequality) of ``mpc``, with the multiplier vector laid out as the caller's ``lam``."""
    duals = mpc.nlp.dual_variables
    named = duals.get(f"lam_g_{constraint}", duals.get(f"lam_h_{constraint}"))
    if named is None:
        raise KeyError(f"the MPC has no constraint {constraint!r}")
    return cs.Function(f"dual_{constraint}", [lam], [named])


def inequality_names(mpc: Mpc) -> list[str]:
    """The names of ``mpc``'s inequality constraints (not the variables' bounds), in
    the order of its multiplier vector."""
    return [name[6:] for name in mpc.nlp.dual_variables if name.startswith("lam_h_")]
