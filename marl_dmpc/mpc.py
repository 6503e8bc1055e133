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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import casadi as cs
import numpy as np
import numpy.typing as npt
from csnlp import Nlp
from csnlp.wrappers import Mpc, NlpSensitivity

from .blocks import action_name, parameter_name, state_name
from .casadi_call import BufferedFunction
from .network import Network
from .qp import ActiveSetQp, AffineRegion, DirectSolve, FreshConic
from .solvers import solver_setup

__all__ = [
    "ADMM_AVERAGE",
    "ADMM_DUAL",
    "ADMM_PENALTY",
    "INIT_ACTION",
    "PERTURBATION",
    "LocalMpc",
    "LocalMpcDefinition",
    "LocalSolution",
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


def dual_function(mpc: Mpc, lam: cs.SX, constraint: str) -> cs.Function:
    """``lam -> the multipliers of the named constraint`` of ``mpc``, with the
    multiplier vector laid out as the caller's ``lam``."""
    named = mpc.nlp.dual_variables[f"lam_g_{constraint}"]
    return cs.Function(f"dual_{constraint}", [lam], [named])


@dataclass
class LocalSolution:
    """Agent ``i``'s solution of its local problem in one ADMM iteration.

    Attributes
    ----------
    x_aug : ndarray, shape (m * nx * (N + 1),)
        The agent's own predicted trajectory and its copies of its neighbours'
        (``m = 1 + number of neighbours``), as the column-major ``vec`` of the
        ``(m * nx, N + 1)`` matrix stacking them (the layout of ``y`` and ``z``).
    u0 : ndarray, shape (nu,)
        The first input.
    value : float
        The local cost (V: including the exploration perturbation; without the ADMM
        terms).
    cost : float
        The local cost without the exploration perturbation (Q(s, u0) when this is V's
        solution).
    success : bool
        Whether the solver succeeded.
    status : str
        The solver's return status.
    x, lam, p : ndarray
        Primal solution, multipliers of the constraints (equalities then inequalities,
        as in csnlp) and the parameter vector the problem was solved with.
    outputs : BufferedFunction
        ``(x, p) -> (u0, value, cost)``, evaluated on first access of those attributes.
    """

    x_aug: npt.NDArray[np.floating]
    success: bool
    status: str
    x: npt.NDArray[np.floating]
    lam: npt.NDArray[np.floating]
    p: npt.NDArray[np.floating]
    outputs: BufferedFunction = field(repr=False)

    # u0, value and cost are needed only from the last ADMM iteration: computed on demand
    @cached_property
    def _outputs(self) -> tuple[npt.NDArray[np.floating], float, float]:
        u0, value, cost = self.outputs(self.x, self.p)
        return u0.reshape(-1).copy(), float(value[0, 0]), float(cost[0, 0])

    @property
    def u0(self) -> npt.NDArray[np.floating]:
        return self._outputs[0]

    @property
    def value(self) -> float:
        return self._outputs[1]

    @property
    def cost(self) -> float:
        return self._outputs[2]


class _LocalProblem:
    """One local problem (V or Q) as CasADi functions of a parameter vector laid out as
    ``[static parameters, vec(y), vec(z)]``: the static part is packed once per ADMM
    solve and only ``y`` and ``z`` change between iterations."""

    def __init__(
        self,
        mpc: Mpc,
        solver: str,
        x_aug: cs.SX,
        outputs: list[cs.SX],
        name: str,
        reuse_active_set: bool,
    ) -> None:
        nlp = mpc.nlp
        # positions of vec(x_aug)'s entries (decision variables) in the primal vector
        where = cs.Function("where", [nlp.x], [cs.vec(x_aug)])
        self.aug_index = np.asarray(where(np.arange(nlp.nx))).reshape(-1).astype(np.intp)
        pars = nlp.parameters
        self.mpc = mpc
        self.static_names = tuple(n for n in pars if n not in (ADMM_DUAL, ADMM_AVERAGE))
        self.n_static = sum(pars[n].numel() for n in self.static_names)
        self.p_sym = cs.vertcat(
            *(cs.vec(pars[n]) for n in self.static_names),
            cs.vec(pars[ADMM_DUAL]),
            cs.vec(pars[ADMM_AVERAGE]),
        )
        self.lam_sym = cs.vertcat(nlp.lam_g, nlp.lam_h)
        self.sizes = {n: pars[n].numel() for n in self.static_names}
        plugin, kind, opts = solver_setup(solver)
        problem = {"x": nlp.x, "p": self.p_sym, "f": nlp.f, "g": cs.vertcat(nlp.g, nlp.h)}
        bounds = {
            "lbg": np.concatenate((np.zeros(nlp.ng), np.full(nlp.nh, -np.inf))),
            "ubg": np.zeros(nlp.ng + nlp.nh),
            "lbx": nlp.lbx,
            "ubx": nlp.ubx,
        }
        solve: DirectSolve | ActiveSetQp
        if kind == "conic" and reuse_active_set:
            solve = ActiveSetQp(
                nlp.x,
                self.p_sym,
                nlp.f,
                problem["g"],
                FreshConic(plugin, opts, **bounds),
                self.n_static,
                self.aug_index,
            )
        else:
            make = cs.qpsol if kind == "conic" else cs.nlpsol
            solve = DirectSolve(make(f"{name}_solver", plugin, problem, opts), **bounds)
        #: ``solver.solve(p) -> QpSolution``, re-using active sets where it can
        self.solver: DirectSolve | ActiveSetQp = solve
        self.outputs = BufferedFunction(
            cs.Function(
                f"{name}_outputs",
                [nlp.x, self.p_sym],
                [cs.densify(o) for o in outputs],
                {"cse": True},
            )
        )
        self._dual_functions: dict[str, cs.Function] = {}

    def pack(self, parameters: Mapping[str, Any]) -> npt.NDArray[np.floating]:
        """The static part of the parameter vector (a scalar value fills its parameter)."""
        blocks = []
        for name, size in self.sizes.items():
            if name not in parameters:
                raise KeyError(f"missing value of MPC parameter {name!r}")
            value = np.asarray(parameters[name], dtype=float)
            # matrices are vectorized column-major, as casadi.vec
            flat = value.reshape(-1, order="F") if value.ndim == 2 else value.reshape(-1)
            if flat.size != size:
                flat = np.broadcast_to(flat, (size,))
            blocks.append(flat)
        return np.concatenate(blocks) if blocks else np.zeros(0)

    def dual_function(self, constraint: str) -> cs.Function:
        """Maps the multiplier vector to the multipliers of a named constraint (built
        once per constraint)."""
        if constraint not in self._dual_functions:
            self._dual_functions[constraint] = dual_function(self.mpc, self.lam_sym, constraint)
        return self._dual_functions[constraint]


class LocalMpc:
    """Agent ``agent``'s learnable MPC for consensus ADMM, as V(s) and Q(s, a).

    Two csnlp MPCs are built from ``definition``: :attr:`V`, whose cost carries the
    exploration perturbation ``p^T u_0``, and :attr:`Q`, whose first input is constrained
    to the parameter ``a_init``. Both add the ADMM terms
    ``y^T (x_aug - z) + rho/2 ||x_aug - z||^2`` on the augmented trajectory ``x_aug``
    (own trajectory stacked over the neighbours' copies). They are solved by calling the
    CasADi solver directly, with the parameters fixed during an ADMM solve packed once
    (see :meth:`pack`).

    Parameters
    ----------
    definition : LocalMpcDefinition
        The example's definition of one agent's MPC.
    network : Network
        The network the agent belongs to.
    agent : int
        The agent's index.
    rho : float
        The ADMM penalty (nominal: it is a parameter of the local problems, see
        :meth:`pack`).
    solver : str, optional
        The solver name (see :mod:`marl_dmpc.solvers`).
    reuse_active_set : bool, optional
        With a QP solver, re-solve by re-using the last optimal active set
        (:class:`~marl_dmpc.qp.ActiveSetQp`), calling the solver only when it changes.
    """

    def __init__(
        self,
        definition: LocalMpcDefinition,
        network: Network,
        agent: int,
        rho: float,
        solver: str = "qpoases",
        reuse_active_set: bool = True,
    ) -> None:
        self.definition = definition
        self.reuse_active_set = reuse_active_set
        self.network = network
        self.agent = agent
        self.rho = rho
        self.copies = network.copies(agent)
        self.learnable_names = tuple(definition.learnable_parameters(agent, network))
        self.problems = {kind: self._build(kind, solver) for kind in ("V", "Q")}
        self._gradients = {
            kind: BufferedFunction(
                lagrangian_gradient(
                    p.mpc, self.learnable_names, p.p_sym, p.lam_sym, f"local{agent}_d{kind}"
                )
            )
            for kind, p in self.problems.items()
        }

    @property
    def V(self) -> Mpc:
        """The csnlp MPC of the local V problem."""
        return self.problems["V"].mpc

    @property
    def Q(self) -> Mpc:
        """The csnlp MPC of the local Q problem."""
        return self.problems["Q"].mpc

    def _build(self, kind: str, solver: str) -> _LocalProblem:
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
        rho = mpc.parameter(ADMM_PENALTY, (1, 1))
        y = mpc.parameter(ADMM_DUAL, x_aug.shape)
        z = mpc.parameter(ADMM_AVERAGE, x_aug.shape)
        diff = x_aug - z
        mpc.minimize(value + cs.sum1(cs.sum2(y * diff)) + 0.5 * rho * cs.sumsqr(diff))
        outputs = [u[:, 0], value, cost]
        return _LocalProblem(mpc, solver, x_aug, outputs, f"local{i}_{kind}", self.reuse_active_set)

    def pack(
        self, kind: str, parameters: Mapping[str, Any], rho: float | None = None
    ) -> npt.NDArray[np.floating]:
        """Pack the parameters that stay fixed while ``y`` and ``z`` move: the initial
        state (``x{i}_0``), the agent's learnable and fixed parameters,
        ``cost_perturbation`` (V) or ``a_init`` (Q), and the penalty ``rho`` (by default
        :attr:`rho`)."""
        return self.problems[kind].pack(
            {**parameters, ADMM_PENALTY: self.rho if rho is None else rho}
        )

    def solve(
        self,
        kind: str,
        static: npt.NDArray[np.floating],
        y: npt.NDArray[np.floating],
        z: npt.NDArray[np.floating],
        active_set: npt.NDArray[np.int8] | None = None,
    ) -> LocalSolution:
        """Solve the local V (``kind="V"``) or Q (``kind="Q"``) problem for the packed
        ``static`` parameters (:meth:`pack`) and ADMM variables ``y``, ``z`` (vectors in
        the layout of :attr:`LocalSolution.x_aug`). ``active_set`` is where an active-set
        solver starts (e.g. :meth:`~marl_dmpc.qp.AffineRegion.next_active_set` of this
        problem's last :meth:`region`); other solvers ignore it."""
        problem = self.problems[kind]
        p = np.concatenate((static, y, z))
        solver = problem.solver
        if active_set is not None and isinstance(solver, ActiveSetQp):
            sol = solver.solve(p, active_set)
        else:
            sol = solver.solve(p)
        return LocalSolution(
            x_aug=sol.x[problem.aug_index],
            success=sol.success,
            status=sol.status,
            x=sol.x,
            lam=sol.lam_g,
            p=p,
            outputs=problem.outputs,
        )

    def region(self, kind: str) -> AffineRegion | None:
        """The affine map ``y - rho z -> x_aug`` (the moving part of the local cost's
        linear term on ``x_aug``) of the local problem's last optimal active set, for the
        static parameters of its last :meth:`solve`; ``None`` if the solver does not
        re-use active sets or the active set is degenerate. See
        :meth:`~marl_dmpc.qp.ActiveSetQp.region`."""
        solver = self.problems[kind].solver
        return solver.region() if isinstance(solver, ActiveSetQp) else None

    def active_sets(self) -> dict[str, npt.NDArray[np.int8] | None]:
        """The warm start of the V and Q problems' active-set solvers (``None`` where
        there is none), by kind."""
        return {
            kind: problem.solver.active_set if isinstance(problem.solver, ActiveSetQp) else None
            for kind, problem in self.problems.items()
        }

    def set_active_sets(self, active_sets: Mapping[str, npt.ArrayLike | None]) -> None:
        """Restore :meth:`active_sets`."""
        for kind, active in active_sets.items():
            solver = self.problems[kind].solver
            if isinstance(solver, ActiveSetQp):
                solver.active_set = active

    def gradient(self, solution: LocalSolution, kind: str = "Q") -> npt.NDArray[np.floating]:
        """The gradient of the local Lagrangian of Q (or V) w.r.t. the agent's learnable
        parameters, at ``solution`` (a solution of that problem)."""
        (grad,) = self._gradients[kind](solution.x, solution.p, solution.lam)
        return grad.reshape(-1).copy()

    def dual(self, kind: str, constraint: str, solution: LocalSolution) -> npt.NDArray[np.floating]:
        """The multipliers of a named constraint (e.g. ``dynamics_name(0)``) at
        ``solution``."""
        return np.asarray(self.problems[kind].dual_function(constraint)(solution.lam))
