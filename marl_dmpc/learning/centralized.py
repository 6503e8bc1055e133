"""mpcrl's LSTD Q-learning on the centralized MPC (:class:`CentralizedQLearning`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import casadi as cs
import numpy as np
import numpy.typing as npt
from gymnasium import Env
from gymnasium.spaces import Box
from mpcrl import LearnableParameter, LearnableParametersDict, LstdQLearningAgent
from mpcrl.optim import GradientDescent

from .. import mpcrl_compat as compat
from ..config import QLearningSettings, StabilizationSettings
from ..envs import mpc_parameters
from ..mpc import (
    PERTURBATION,
    LocalMpcDefinition,
    build_centralized_mpc,
    lagrangian_gradient,
    lagrangian_hessian,
)
from ..network import Network
from ..solvers import fallback_setup, solver_setup
from .check import multipliers
from .loop import TrainingLoop, refresh_solvers
from .newton import block_scale, newton_step, sample_parts
from .qp_solver import ActiveSetNlpSolver
from .records import TrainingLog
from .settings import (
    make_experience,
    make_exploration,
    make_optimizer,
    make_update_strategy,
)


def _learnable_dict(values: Mapping[str, npt.ArrayLike]) -> LearnableParametersDict:
    return LearnableParametersDict(
        LearnableParameter(name, np.shape(v), np.asarray(v, dtype=float))
        for name, v in values.items()
    )


@dataclass(frozen=True)
class _QFromV:
    """Q(s, a) read off V(s)'s solution ``v`` (a = V's action, same parameters), with
    the attributes mpcrl's learner reads from a Q solution."""

    v: Any
    f: float

    @property
    def success(self) -> bool:
        return bool(self.v.success)

    @property
    def status(self) -> str:
        return str(self.v.status)


def _as_vector(value: Any) -> npt.NDArray[np.floating]:
    return np.asarray(value, dtype=float).reshape(-1)


def _agent_slices(
    names: list[str], values: Mapping[str, npt.ArrayLike], owners: Mapping[str, int], n: int
) -> list[slice]:
    """Where every agent's parameters lie in the stacked parameter vector (the order of
    ``names``; each agent's contiguous, as the learnable parameters are built agent by
    agent): the blocks of the Newton step's curvature."""
    ends = np.cumsum([0, *(int(np.size(values[name])) for name in names)])
    slices = []
    for i in range(n):
        own = [k for k, name in enumerate(names) if owners[name] == i]
        if own != list(range(own[0], own[-1] + 1)):
            raise ValueError(f"agent {i}'s parameters are not contiguous")
        slices.append(slice(int(ends[own[0]]), int(ends[own[-1] + 1])))
    return slices


class CentralizedQLearning(TrainingLoop, LstdQLearningAgent):
    """mpcrl's LSTD Q-learning on the centralized MPC, with the same settings,
    exploration and records as :class:`DistributedQLearning`.

    The one change to mpcrl's agent: Q(s, a) at V(s)'s own action, with no update in
    between, is read off V(s)'s solution, as the distributed learner does (see the
    module's notes). The safeguards, if any, act as in the distributed learner: on the
    optimizer's step and on the TD error in the stored gradients.
    """

    def __init__(
        self,
        definition: LocalMpcDefinition,
        network: Network,
        settings: QLearningSettings,
        *,
        solver: str,
        safeguards: StabilizationSettings | None = None,
    ) -> None:
        n = network.n_agents
        learnable: dict[str, npt.NDArray[np.floating]] = {}
        fixed: dict[str, npt.NDArray[np.floating]] = {}
        self._agents: dict[str, int] = {}
        for i in range(n):
            own = definition.learnable_parameters(i, network)
            learnable.update(own)
            self._agents.update(dict.fromkeys(own, i))
            fixed.update(definition.fixed_parameters(i, network))
        super().__init__(
            mpc=build_centralized_mpc(definition, network, solver),
            update_strategy=make_update_strategy(settings),
            discount_factor=definition.discount,
            optimizer=make_optimizer(settings, safeguards),
            learnable_parameters=_learnable_dict(learnable),
            fixed_parameters=fixed,
            exploration=make_exploration(settings, n, definition.nu),
            experience=make_experience(settings),
            record_td_errors=True,
            name="centralized",
        )
        self.td_clip = safeguards.td_clip if safeguards is not None else 0.0
        self.newton_tau = settings.newton_tau if settings.optimizer == "newton" else None
        self.newton_variant = settings.newton_variant
        self.newton_definite = settings.newton_definite
        if self.optimizer.order != 1:
            raise ValueError("CentralizedQLearning supports first-order optimizers only")
        names = compat.learnable_names(self)
        v_mpc, q_mpc = compat.value_mpcs(self)
        self._gradients = {
            kind: lagrangian_gradient(mpc, names, mpc.nlp.p, multipliers(mpc), f"d{kind}")
            for kind, mpc in (("V", v_mpc), ("Q", q_mpc))
        }
        self._curvatures = (
            {
                kind: lagrangian_hessian(mpc, names, mpc.nlp.p, multipliers(mpc), f"d2{kind}")
                for kind, mpc in (("V", v_mpc), ("Q", q_mpc))
            }
            if self.newton_tau is not None
            else {}
        )
        self._agent_slices = _agent_slices(names, learnable, self._agents, n)
        v = v_mpc.nlp
        unperturbed = v.f
        if PERTURBATION in v.parameters:
            unperturbed = cs.substitute(v.f, v.parameters[PERTURBATION], 0)
        self._unperturbed_value = cs.Function("unperturbed_V", [v.x, v.p], [unperturbed])
        compat.set_sensitivity(self, self._dq)  # mpcrl's dQ/dtheta (same input and output)
        self._last_value: tuple[npt.NDArray, npt.NDArray, Any] | None = None
        self.log = TrainingLog()
        self.log.record_parameters(self.parameter_values())
        # a QP solver answers where the compiled active-set steps fail (as in the local
        # problems); IPOPT solves every NLP itself
        plugin, kind, options = solver_setup(solver)
        self._solvers = (
            [
                ActiveSetNlpSolver(mpc.unwrapped, plugin, options, fallback_setup(solver))
                for mpc in compat.value_mpcs(self)
            ]
            if kind == "conic"
            else []
        )
        for mpc, nlp_solver in zip(compat.value_mpcs(self), self._solvers, strict=False):
            compat.set_nlp_solver(mpc, nlp_solver)  # none with IPOPT
        self._fallbacks_seen = 0

    def parameter_values(self) -> dict[str, npt.NDArray[np.floating]]:
        return dict(self.learnable_parameters.value_as_dict)

    def parameter_agents(self) -> dict[str, int]:
        """The agent that owns each learnable parameter (by global name)."""
        return dict(self._agents)

    def set_parameter_values(self, values: Mapping[str, npt.ArrayLike]) -> None:
        """Set the learnable parameters to ``values`` (by global name, every one of
        them)."""
        names = list(self.learnable_parameters)
        missing = [name for name in names if name not in values]
        if missing:
            raise KeyError(f"no value for the learnable parameter(s) {', '.join(missing)}")
        self.learnable_parameters.update_values(
            {name: np.asarray(values[name], dtype=float) for name in names}
        )
        self._last_value = None

    def state_value(self, state: Any, deterministic: bool = False, **kwargs: Any) -> Any:
        action, solution = super().state_value(state, deterministic, **kwargs)
        self._last_value = (
            None if deterministic else (_as_vector(state), _as_vector(action), solution)
        )
        return action, solution

    def action_value(self, state: Any, action: Any, **kwargs: Any) -> Any:
        last = self._last_value
        if (
            last is not None
            and np.array_equal(last[0], _as_vector(state))
            and np.array_equal(last[1], _as_vector(action))
        ):
            solution = last[2]
            value = float(self._unperturbed_value(solution.x, solution.p))
            return _QFromV(solution, value)
        return super().action_value(state, action, **kwargs)

    def _dq(self, solution: Any) -> npt.NDArray[np.floating]:
        kind, solution = ("V", solution.v) if isinstance(solution, _QFromV) else ("Q", solution)
        dq = self._gradients[kind](solution.x, solution.p, solution.lam_g_and_h)
        return np.asarray(dq).reshape(-1)

    def _ddq(self, solution: Any) -> npt.NDArray[np.floating]:
        """The second derivative of Q's Lagrangian w.r.t. the parameters (as :meth:`_dq`)."""
        kind, solution = ("V", solution.v) if isinstance(solution, _QFromV) else ("Q", solution)
        return np.asarray(self._curvatures[kind](solution.x, solution.p, solution.lam_g_and_h))

    def update(self) -> str | None:
        """mpcrl's update, or with ``--optimizer newton`` gradient descent along the
        regularized Newton direction of the replay sample, each agent's curvature block
        regularized as the distributed learner's (:mod:`marl_dmpc.learning.newton`)."""
        if self.newton_tau is None:
            return super().update()
        if len(self.experience) <= 0:
            return "Experience buffer empty."
        td, G, K = sample_parts(list(self.experience.sample()))
        steps = newton_step(
            [G[s] for s in self._agent_slices],
            td,
            [K[:, s, s] for s in self._agent_slices],
            self.newton_tau,
            1.0,
            block_scale(self.newton_variant, len(td)),
            self.newton_definite,
        )
        return self.optimizer.update(-np.concatenate(steps))

    def read_env_parameters(self, env: Env) -> None:
        """Give the MPC the env's current values of its time-varying parameters."""
        fixed = self.fixed_parameters
        for name, value in mpc_parameters(env).items():
            if name not in fixed:
                raise KeyError(f"the env's MPC parameter {name!r} is not a fixed parameter")
            fixed[name] = value

    def on_episode_start(self, env: Env, episode: int, state: Any) -> None:
        super().on_episode_start(env, episode, state)
        self.read_env_parameters(env)

    def on_env_step(self, env: Env, episode: int, timestep: int) -> None:
        super().on_env_step(env, episode, timestep)
        self.read_env_parameters(env)

    def on_update(self) -> None:
        super().on_update()
        self._last_value = None  # V's solution no longer has the current parameters
        self.log.record_parameters(self.parameter_values())

    # ----------------------------------------------------------------- learning
    def _begin(self, env: Env, rng: np.random.Generator) -> None:
        if hasattr(env, "action_space") and not isinstance(env.action_space, Box):
            raise TypeError("the env's action space must be a Box")
        self.reset(rng)
        compat.start_training(self)
        self.on_training_start(env)

    def _begin_episode(self, env: Env, episode: int, state: npt.ArrayLike) -> npt.NDArray:
        self.on_episode_start(env, episode, state)
        action, solution = self.state_value(state, False, action_space=env.action_space)
        if not solution.success:
            self.on_mpc_failure(episode, None, solution.status, True)
        return action

    def _step(
        self, env: Env, episode: int, timestep: int, state: npt.ArrayLike, action: npt.ArrayLike
    ) -> tuple[npt.NDArray, npt.NDArray, float, bool, float]:
        solution_q = self.action_value(state, action)
        new_state, cost, truncated, terminated, _ = env.step(action)
        self.on_env_step(env, episode, timestep)
        new_action, solution_v = self.state_value(new_state, False, action_space=env.action_space)
        curvature = None if self.newton_tau is None else self._ddq(solution_q)
        stored = compat.store_experience(
            self, cost, solution_q, solution_v, self.td_clip, curvature
        )
        if not stored:
            self.on_mpc_failure(
                episode, timestep, f"{solution_q.status} (Q); {solution_v.status} (V)", True
            )
        td_error = float(self.td_errors[-1])
        self.log.td_errors.append(td_error)
        self._count_fallbacks()
        self.on_timestep_end(env, episode, timestep + 1)  # updates if due
        return np.asarray(new_state), new_action, float(cost), truncated or terminated, td_error

    def _end_episode(self, env: Env, episode: int, total: float) -> None:
        self.on_episode_end(env, episode, total)  # updates if due

    def _end(self, env: Env, returns: npt.NDArray[np.floating]) -> None:
        self.on_training_end(env, returns)

    def _in_flight(self) -> bool:
        return self._last_value is not None

    def _optimizers(self) -> list[GradientDescent]:
        return [self.optimizer]

    def _solver_state(self) -> dict[str, Any]:
        last = compat.last_solution(self)  # its primal values are the next solve's initial guess
        return {
            "warm_start": None
            if last is None
            else {name: np.asarray(value, dtype=float) for name, value in last.vals.items()},
            "active_sets": [
                None if s.active_set is None else s.active_set.copy() for s in self._solvers
            ],
        }

    def _load_solver_state(self, state: Mapping[str, Any]) -> None:
        warm = state["warm_start"]
        compat.set_last_solution(self, None if warm is None else _WarmStart(dict(warm)))
        for solver, active in zip(self._solvers, state["active_sets"], strict=True):
            solver.active_set = active
        self.td_errors.clear()  # mpcrl's own record, kept beside the log
        self.td_errors.extend(self.log.td_errors)

    def _restart_solvers(self) -> None:
        # the active-set solvers answer from the parameters and their saved active sets
        # alone, as a resumed run's do: only IPOPT's csnlp solvers are started anew
        if not self._solvers:
            refresh_solvers(self)

    def _count_fallbacks(self) -> None:
        """Add the fallbacks since the last count to the log (as the distributed
        learner does after every solve)."""
        fallbacks = sum(s.fallbacks for s in self._solvers)
        self.log.fallbacks += fallbacks - self._fallbacks_seen
        self._fallbacks_seen = fallbacks


@dataclass(frozen=True)
class _WarmStart:
    """A saved solution's primal values, which is all the agent reads of its last
    solution (the next solve's initial guess)."""

    vals: dict[str, npt.NDArray[np.floating]]
