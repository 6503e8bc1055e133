"""The paper's distributed Q-learning coordinator (:class:`DistributedQLearning`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium import Env
from mpcrl import LearnableParameter, LearnableParametersDict, MpcSolverError
from mpcrl.optim import GradientDescent

from ..admm import AdmmCoordinator, AdmmResult
from ..config import AdmmSettings, QLearningSettings, StabilizationSettings
from ..consensus import AverageConsensus
from ..envs import AGENT_COSTS, mpc_parameters
from ..local_mpc import LocalMpc, LocalSolution
from ..mpc import INIT_ACTION, PERTURBATION, LocalMpcDefinition, state_name
from ..network import Network
from .check import CentralizedCheck, split_agents
from .loop import TrainingLoop
from .newton import LocalNewtonTerms, block_scale, local_newton_step, sample_parts
from .records import TrainingLog
from .settings import (
    clip_td_error,
    make_experience,
    make_exploration,
    make_optimizer,
    make_update_strategy,
)


@dataclass(frozen=True)
class ActionValue:
    """Q(s, a) as the agents hold it.

    Attributes
    ----------
    values : ndarray, shape (n_agents,)
        Every agent's local share of Q(s, a) (their sum is Q).
    gradients : tuple of ndarray
        Every agent's gradient of its local Lagrangian w.r.t. its own parameters.
    from_value : bool
        Whether it was read off V(s)'s solution rather than solved.
    solutions : tuple of LocalSolution
        Every agent's local solution the values and gradients were read off (of its V
        problem if ``from_value``, else of its Q problem).
    curvatures : tuple of ndarray, optional
        Every agent's :meth:`hessians`, taken at once where a second-order learner needs
        them (None otherwise).
    """

    values: npt.NDArray[np.floating]
    gradients: tuple[npt.NDArray[np.floating], ...]
    from_value: bool
    solutions: tuple[LocalSolution, ...] = ()
    curvatures: tuple[npt.NDArray[np.floating], ...] | None = None

    def hessians(self, local_mpcs: Sequence[LocalMpc]) -> tuple[npt.NDArray[np.floating], ...]:
        """Every agent's second derivative of its local Lagrangian w.r.t. its own
        parameters at its solution (:meth:`LocalMpc.hessian`)."""
        kind = "V" if self.from_value else "Q"
        return tuple(m.hessian(s, kind) for m, s in zip(local_mpcs, self.solutions, strict=True))


class _StackedParameters:
    """One agent's learnable parameters as a single mpcrl parameter ``theta_i``: its
    named parameters vectorized column by column and stacked in order (the layout of
    the gradients). mpcrl checks bounds parameter by parameter on every update, so one
    stacked parameter makes an agent's update several times cheaper."""

    def __init__(self, agent: int, values: Mapping[str, npt.ArrayLike]) -> None:
        self.shapes = {name: np.shape(v) for name, v in values.items()}
        sizes = [int(np.prod(shape)) for shape in self.shapes.values()]
        self._slices = {
            name: slice(end - size, end)
            for name, size, end in zip(self.shapes, sizes, np.cumsum(sizes), strict=True)
        }
        theta = np.concatenate(
            [np.asarray(v, dtype=float).reshape(-1, order="F") for v in values.values()]
        )
        self.parameters = LearnableParametersDict(
            [LearnableParameter(f"theta_{agent}", theta.size, theta)]
        )
        self.values = self.split_agents(theta)

    def split_agents(self, theta: npt.NDArray[np.floating]) -> dict[str, npt.NDArray[np.floating]]:
        return {
            name: theta[self._slices[name]].reshape(shape, order="F")
            for name, shape in self.shapes.items()
        }

    def refresh(self) -> None:
        """Re-read :attr:`values` (by name) after an update of :attr:`parameters`."""
        self.values = self.split_agents(self.parameters.value.copy())


class DistributedQLearning(TrainingLoop):
    """The paper's distributed multi-agent Q-learning coordinator.

    Parameters
    ----------
    definition : LocalMpcDefinition
        The example's local MPC.
    network : Network
        The communication graph.
    settings : QLearningSettings
        Q-learning hyperparameters.
    admm : AdmmSettings
        Settings of the consensus ADMM that solves the network's MPC.
    consensus_iters : int
        Iterations of average consensus for the global scalars.
    solver : str
        Solver of the local (and check) problems.
    check_centralized : bool
        Also solve the centralized MPC at every solve and log the gaps.
    safeguards : StabilizationSettings, optional
        The learning's safeguards (none: the paper's learning).
    """

    def __init__(
        self,
        definition: LocalMpcDefinition,
        network: Network,
        settings: QLearningSettings,
        admm: AdmmSettings,
        *,
        consensus_iters: int,
        solver: str,
        check_centralized: bool = False,
        safeguards: StabilizationSettings | None = None,
    ) -> None:
        n = network.n_agents
        self.td_clip = safeguards.td_clip if safeguards is not None else 0.0
        self.newton_tau = settings.newton_tau if settings.optimizer == "newton" else None
        self.newton_variant = settings.newton_variant
        self.newton_definite = settings.newton_definite
        self.definition = definition
        self.network = network
        self.discount = definition.discount
        self.local_mpcs = [LocalMpc(definition, network, i, solver) for i in range(n)]
        self.admm = AdmmCoordinator(network, self.local_mpcs, admm)
        self.consensus = AverageConsensus(network, consensus_iters)
        self.learnable = [
            _StackedParameters(i, definition.learnable_parameters(i, network)) for i in range(n)
        ]
        self.optimizers = []
        for pars in self.learnable:
            optimizer = make_optimizer(settings, safeguards)
            optimizer.set_learnable_parameters(pars.parameters)
            self.optimizers.append(optimizer)
        self.experience = make_experience(settings)
        self.update_strategy = make_update_strategy(settings)
        self.exploration = make_exploration(settings, n, definition.nu)
        self.fixed_parameters = [definition.fixed_parameters(i, network) for i in range(n)]
        self.check = (
            CentralizedCheck(definition, network, self.local_mpcs, solver)
            if check_centralized
            else None
        )
        self.log = TrainingLog()
        self.log.record_parameters(self.parameter_values())
        self._fallbacks_seen = 0

    def parameter_values(self) -> dict[str, npt.NDArray[np.floating]]:
        """Every agent's current learnable parameters, by global name."""
        values: dict[str, npt.NDArray[np.floating]] = {}
        for pars in self.learnable:
            values.update(pars.values)
        return values

    def parameter_agents(self) -> dict[str, int]:
        """The agent that owns each learnable parameter (by global name)."""
        return {name: i for i, pars in enumerate(self.learnable) for name in pars.shapes}

    def set_parameter_values(self, values: Mapping[str, npt.ArrayLike]) -> None:
        """Set the learnable parameters to ``values`` (by global name, every one of
        them; e.g. a row of a result file's parameter history)."""
        for i, pars in enumerate(self.learnable):
            missing = [name for name in pars.shapes if name not in values]
            if missing:
                raise KeyError(f"no value for the learnable parameter(s) {', '.join(missing)}")
            theta = np.concatenate(
                [
                    np.asarray(values[name], dtype=float).reshape(shape).reshape(-1, order="F")
                    for name, shape in pars.shapes.items()
                ]
            )
            pars.parameters.update_values({f"theta_{i}": theta})
            pars.refresh()

    # ------------------------------------------------------------------ solving
    def _solve(self, kind: str, state: npt.ArrayLike, first: npt.ArrayLike | None) -> AdmmResult:
        n = self.network.n_agents
        states = split_agents(state, n)
        firsts = split_agents(np.zeros(n * self.definition.nu) if first is None else first, n)
        extra = PERTURBATION if kind == "V" else INIT_ACTION
        parameters = []
        for i in range(n):
            pars = dict(self.fixed_parameters[i])
            pars.update(self.learnable[i].values)
            pars[f"{state_name(i)}_0"] = states[i]
            pars[extra] = firsts[i]
            parameters.append(pars)
        result = self.admm.solve(kind, parameters)
        self.log.admm_iterations.append(result.iterations)
        fallbacks = sum(m.solver_fallbacks() for m in self.local_mpcs)
        self.log.fallbacks += fallbacks - self._fallbacks_seen
        self._fallbacks_seen = fallbacks
        if not result.success:
            raise MpcSolverError(
                f"distributed {kind}: a local MPC failed ({'; '.join(result.statuses)})"
            )
        if self.check is not None:
            merged: dict[str, Any] = {}
            for pars in parameters:
                merged.update({k: v for k, v in pars.items() if k != extra})
            first_all = np.concatenate(firsts)
            errors = self.check.compare(kind, result, merged, state, first_all)
            for name, error in errors.items():
                self.log.check.setdefault(name, []).append(error)
        return result

    def state_value(
        self, state: npt.ArrayLike, deterministic: bool = False
    ) -> tuple[npt.NDArray, AdmmResult]:
        """The action and the ADMM solution of V(s), exploring unless deterministic
        (the same draws as mpcrl's ``Agent.state_value``)."""
        perturbation = None if deterministic else self.exploration.draw()
        result = self._solve("V", state, perturbation)
        return result.action, result

    def action_value(
        self,
        state: npt.ArrayLike,
        action: npt.ArrayLike,
        value_solution: AdmmResult | None = None,
    ) -> ActionValue:
        """Q(s, a): every agent's local value and gradient.

        Pass ``value_solution``, V(s)'s solution with the current parameters whose
        action is ``action``, to read Q off it (see the module's notes); otherwise the Q
        problems are solved by ADMM.
        """
        if value_solution is not None:
            local = value_solution.local
            q = ActionValue(
                np.array([s.cost for s in local]),
                tuple(m.gradient(s, "V") for m, s in zip(self.local_mpcs, local, strict=True)),
                from_value=True,
                solutions=tuple(local),
            )
        else:
            result = self._solve("Q", state, action)
            q = ActionValue(
                result.values,
                tuple(m.gradient(s) for m, s in zip(self.local_mpcs, result.local, strict=True)),
                from_value=False,
                solutions=tuple(result.local),
            )
        if self.newton_tau is None:
            return q
        return dataclasses.replace(q, curvatures=q.hessians(self.local_mpcs))

    # ----------------------------------------------------------------- learning
    def _begin(self, env: Env, rng: np.random.Generator) -> None:
        self.exploration.reset(rng)
        self.experience.reset(rng)
        self._value_solution: AdmmResult | None = None

    def _begin_episode(self, env: Env, episode: int, state: npt.ArrayLike) -> npt.NDArray:
        self.read_env_parameters(env)
        action, self._value_solution = self.state_value(state)
        return action

    def _step(
        self, env: Env, episode: int, timestep: int, state: npt.ArrayLike, action: npt.ArrayLike
    ) -> tuple[npt.NDArray, npt.NDArray, float, bool, float]:
        # Q(s, a) off V(s)'s solution unless an update came in between
        q = self.action_value(state, action, self._value_solution)
        new_state, cost, truncated, terminated, info = env.step(action)
        self.read_env_parameters(env)
        new_action, sol_v = self.state_value(new_state)
        td_error = self._store_experience(info[AGENT_COSTS], q, sol_v)
        updated = self.update_strategy.hook == "on_timestep_end" and self._maybe_update()
        self._value_solution = None if updated else sol_v
        return new_state, new_action, float(cost), truncated or terminated, td_error

    def _end_episode(self, env: Env, episode: int, total: float) -> None:
        self._value_solution = None
        if self.update_strategy.hook == "on_episode_end":
            self._maybe_update()

    def _in_flight(self) -> bool:
        return self._value_solution is not None

    def _optimizers(self) -> list[GradientDescent]:
        return self.optimizers

    def _solver_state(self) -> dict[str, Any]:
        return {"admm": self.admm.state()}

    def _load_solver_state(self, state: Mapping[str, Any]) -> None:
        self.admm.load_state(state["admm"])

    def _restart_solvers(self) -> None:
        """The local QPs' answers depend on their data and saved active sets only
        (:class:`~marl_dmpc.qp.ActiveSetQp`); only the centralized check's solvers, if
        any, are rebuilt."""
        if self.check is not None:
            self.check.restart_solvers()

    def read_env_parameters(self, env: Env) -> None:
        """Give every agent the env's current values of its time-varying parameters."""
        self.set_env_parameters(mpc_parameters(env))

    def set_env_parameters(self, values: Mapping[str, npt.ArrayLike]) -> None:
        """Give every agent these values of its time-varying parameters (by global
        name, as an env's ``mpc_parameters`` gives them)."""
        for name, value in values.items():
            owners = [pars for pars in self.fixed_parameters if name in pars]
            if not owners:
                raise KeyError(f"the env's MPC parameter {name!r} is no agent's fixed parameter")
            for pars in owners:
                pars[name] = value

    def _store_experience(
        self, agent_costs: npt.ArrayLike, q: ActionValue, sol_v: AdmmResult
    ) -> float:
        """Every agent forms the global TD error by consensus and stores its own
        ``-td * dQ_i``; returns the TD error."""
        cost = self.consensus.sum(agent_costs)
        v_next = self.consensus.sum(sol_v.values)
        q_value = self.consensus.sum(q.values)
        td = cost + self.discount * v_next - q_value  # every agent's own estimate
        scale = clip_td_error(td, self.td_clip)
        if q.curvatures is None:
            self.experience.append(tuple(-scale[i] * dq for i, dq in enumerate(q.gradients)))
        else:  # the second-order update needs the parts (newton_directions)
            self.experience.append(
                tuple((float(scale[i]), dq, q.curvatures[i]) for i, dq in enumerate(q.gradients))
            )
        self.log.td_errors.append(float(td.mean()))
        return float(td.mean())

    def _maybe_update(self) -> bool:
        """Update if the strategy says so; returns whether it did."""
        if not self.update_strategy.can_update() or len(self.experience) == 0:
            return False
        sample = list(self.experience.sample())
        if self.newton_tau is None:
            directions = [
                np.mean([item[i] for item in sample], axis=0) for i in range(len(self.optimizers))
            ]
        else:
            directions = self._newton_directions(sample)
        for i, optimizer in enumerate(self.optimizers):
            status = optimizer.update(directions[i])
            if status is not None:
                raise RuntimeError(f"update of agent {i} failed: {status}")
            self.learnable[i].refresh()
        self.exploration.step()
        for optimizer in self.optimizers:
            optimizer.step()
        self.log.record_parameters(self.parameter_values())
        return True

    def _newton_directions(self, sample: list[tuple]) -> list[npt.NDArray[np.floating]]:
        """Every agent's regularized Newton direction ``H^{-1} r`` on ``sample`` from its
        own terms and a consensus on ``C`` (:mod:`marl_dmpc.learning.newton`); gradient
        descent's step ``-lr`` times it is the Newton step."""
        assert self.newton_tau is not None
        T = len(sample)
        scale = block_scale(self.newton_variant, T)
        tds, terms = [], []
        for i in range(len(self.optimizers)):
            td, gradients, curvatures = sample_parts([item[i] for item in sample])
            tds.append(td)
            terms.append(
                LocalNewtonTerms(
                    gradients, td, curvatures, self.newton_tau, scale, self.newton_definite
                )
            )
        C = self.consensus.sum(np.stack([t.term.reshape(-1) for t in terms]))
        return [-local_newton_step(t, C[i].reshape(T, T), tds[i], 1.0) for i, t in enumerate(terms)]
