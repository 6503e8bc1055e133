"""Agent ``i``'s learnable MPC for consensus ADMM (:class:`LocalMpc`), built from the
example's :class:`~marl_dmpc.mpc.LocalMpcDefinition`, and its solution in one ADMM
iteration (:class:`LocalSolution`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import casadi as cs
import numpy as np
import numpy.typing as npt
from csnlp import Nlp
from csnlp.wrappers import Mpc

from .blocks import action_name, state_name
from .casadi_call import BufferedFunction
from .mpc import (
    ADMM_AVERAGE,
    ADMM_DUAL,
    ADMM_PENALTY,
    INIT_ACTION,
    PERTURBATION,
    LocalMpcDefinition,
    declare_parameters,
    dual_function,
    lagrangian_gradient,
    lagrangian_hessian,
)
from .network import Network
from .qp import ActiveSetQp, DirectSolve, FreshConic, QpSolution
from .solvers import fallback_setup, solver_setup


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
                FreshConic(plugin, opts, **bounds, fallback=fallback_setup(solver)),
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
        solver: str = "qpoases",
        reuse_active_set: bool = True,
    ) -> None:
        self.definition = definition
        self.reuse_active_set = reuse_active_set
        self.network = network
        self.agent = agent
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
        self._hessians: dict[str, BufferedFunction] = {}

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
        declare_parameters(mpc, d.learnable_parameters(i, self.network), pars)
        declare_parameters(mpc, d.fixed_parameters(i, self.network), pars)
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
        self, kind: str, parameters: Mapping[str, Any], rho: float
    ) -> npt.NDArray[np.floating]:
        """Pack the parameters that stay fixed while ``y`` and ``z`` move: the initial
        state (``x{i}_0``), the agent's learnable and fixed parameters,
        ``cost_perturbation`` (V) or ``a_init`` (Q), and the ADMM penalty ``rho`` (the
        coordinator's, :class:`~marl_dmpc.admm.AdmmCoordinator`)."""
        return self.problems[kind].pack({**parameters, ADMM_PENALTY: rho})

    def solve(
        self,
        kind: str,
        static: npt.NDArray[np.floating],
        y: npt.NDArray[np.floating],
        z: npt.NDArray[np.floating],
    ) -> LocalSolution:
        """Solve the local V (``kind="V"``) or Q (``kind="Q"``) problem for the packed
        ``static`` parameters (:meth:`pack`) and ADMM variables ``y``, ``z`` (vectors in
        the layout of :attr:`LocalSolution.x_aug`)."""
        p = np.concatenate((static, y, z))
        return self.solution(kind, self.problems[kind].solver.solve(p), p)

    def solution(
        self, kind: str, solution: QpSolution, p: npt.NDArray[np.floating]
    ) -> LocalSolution:
        """The local solution of the ``kind`` problem's QP (or NLP) ``solution`` for the
        parameter vector ``p`` (``[static, y, z]``)."""
        problem = self.problems[kind]
        return LocalSolution(
            x_aug=solution.x[problem.aug_index],
            success=solution.success,
            status=solution.status,
            x=solution.x,
            lam=solution.lam_g,
            p=p,
            outputs=problem.outputs,
        )

    def solver_fallbacks(self) -> int:
        """How many QPs its fallback solver has solved
        (:data:`~marl_dmpc.solvers.FALLBACK_SOLVERS`)."""
        return sum(
            p.solver.fallbacks for p in self.problems.values() if isinstance(p.solver, ActiveSetQp)
        )

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

    def hessian(self, solution: LocalSolution, kind: str = "Q") -> npt.NDArray[np.floating]:
        """The second derivative of the local Lagrangian of Q (or V) w.r.t. the agent's
        learnable parameters at ``solution``, primal and dual variables held (built on
        first use: first-order learning never needs it)."""
        if kind not in self._hessians:
            p = self.problems[kind]
            name = f"local{self.agent}_d2{kind}"
            self._hessians[kind] = BufferedFunction(
                lagrangian_hessian(p.mpc, self.learnable_names, p.p_sym, p.lam_sym, name)
            )
        (hess,) = self._hessians[kind](solution.x, solution.p, solution.lam)
        return hess.copy()

    def dual(self, kind: str, constraint: str, solution: LocalSolution) -> npt.NDArray[np.floating]:
        """The multipliers of a named constraint (e.g. ``dynamics_name(0)``) at
        ``solution``."""
        return np.asarray(self.problems[kind].dual_function(constraint)(solution.lam))
