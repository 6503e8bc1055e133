"""Multi-agent Q-learning with an MPC as the Q-function, distributed or centralized.

:class:`DistributedQLearning` is the paper's method: the network's V(s) and Q(s, a) are
solved by consensus ADMM over the agents' local MPCs; global scalars (stage cost, V, Q)
are formed by average consensus; every agent computes the TD error and updates its own
parameters with the gradient of its local Lagrangian. It is built from mpcrl's parts
(learnable parameters, gradient descent, experience replay, update strategy,
epsilon-greedy exploration) and follows the steps of mpcrl's
:class:`~mpcrl.LstdQLearningAgent` one for one, so that with the same seed it draws the
same exploration, env noise and replay samples as :class:`CentralizedQLearning`, which
*is* mpcrl's agent on the centralized MPC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium import Env
from mpcrl import (
    Agent,
    ExperienceReplay,
    LearnableParameter,
    LearnableParametersDict,
    LstdQLearningAgent,
    MpcSolverError,
    UpdateStrategy,
)
from mpcrl.core.schedulers import ExponentialScheduler
from mpcrl.optim import GradientDescent
from mpcrl.util.seeding import RngType, mk_seed

from .admm import AdmmCoordinator, AdmmResult
from .consensus import AverageConsensus
from .exploration import PerAgentExploration
from .mpc import (
    INIT_ACTION,
    PERTURBATION,
    LocalMpc,
    LocalMpcDefinition,
    build_centralized_mpc,
    state_name,
)
from .network import Network

#: Key of the per-agent stage costs in the ``info`` dict returned by an env's ``step``.
AGENT_COSTS = "agent_costs"

StepCallback = Callable[[float], None]
"""Called at the end of every training step with the step's TD error."""


@dataclass(frozen=True)
class QLearningSettings:
    """Hyperparameters of the Q-learning (identical for both learners).

    Attributes
    ----------
    learning_rate, learning_rate_decay : float
        Initial learning rate and the factor applied to it after every update.
    update_every : int
        Update after this many env steps (or episodes, with ``update_hook``
        ``"on_episode_end"``).
    replay_maxlen, replay_sample_size, replay_include_latest : int
        Experience replay: capacity, transitions per update, and how many of those are
        the latest ones.
    epsilon, epsilon_decay, exploration_strength : float
        Epsilon-greedy exploration: initial probability, its decay per update, and the
        scale of the cost perturbation.
    update_hook : {"on_timestep_end", "on_episode_end"}
        When updates are counted.
    """

    learning_rate: float
    learning_rate_decay: float
    update_every: int
    replay_maxlen: int
    replay_sample_size: int
    replay_include_latest: int
    epsilon: float
    epsilon_decay: float
    exploration_strength: float
    update_hook: str = "on_timestep_end"

    def optimizer(self) -> GradientDescent:
        """Plain gradient descent with the scheduled learning rate."""
        return GradientDescent(ExponentialScheduler(self.learning_rate, self.learning_rate_decay))

    def experience(self) -> ExperienceReplay:
        return ExperienceReplay(
            maxlen=self.replay_maxlen,
            sample_size=self.replay_sample_size,
            include_latest=self.replay_include_latest,
        )

    def update_strategy(self) -> UpdateStrategy:
        return UpdateStrategy(self.update_every, self.update_hook)

    def exploration(self, n_agents: int, action_size: int) -> PerAgentExploration:
        return PerAgentExploration(
            n_agents, action_size, self.epsilon, self.epsilon_decay, self.exploration_strength
        )


@dataclass
class TrainingLog:
    """What a learner records while training.

    Attributes
    ----------
    td_errors : list of float
        One TD error per training step.
    parameters : dict of str to list of ndarray
        Every learnable parameter's value initially and after every update.
    admm_iterations : list of int
        ADMM iterations of every distributed solve (empty when centralized).
    check : dict of str to list of float
        With the centralized check: ``"v_error"``, ``"q_error"`` (absolute errors of the
        ADMM values) and ``"dual_error"`` (max abs error of the dynamics multipliers).
    """

    td_errors: list[float] = field(default_factory=list)
    parameters: dict[str, list[npt.NDArray[np.floating]]] = field(default_factory=dict)
    admm_iterations: list[int] = field(default_factory=list)
    check: dict[str, list[float]] = field(default_factory=dict)

    def record_parameters(self, values: Mapping[str, npt.ArrayLike]) -> None:
        for name, value in values.items():
            self.parameters.setdefault(name, []).append(np.array(value, dtype=float))

    def parameter_history(self) -> dict[str, npt.NDArray[np.floating]]:
        """Every parameter's history as one array ``(updates + 1, *shape)``."""
        return {name: np.stack(values) for name, values in self.parameters.items()}


def _learnable_dict(values: Mapping[str, npt.ArrayLike]) -> LearnableParametersDict:
    return LearnableParametersDict(
        LearnableParameter(name, np.shape(v), np.asarray(v, dtype=float))
        for name, v in values.items()
    )


def _split(vector: npt.ArrayLike, n: int) -> list[npt.NDArray[np.floating]]:
    return np.split(np.asarray(vector, dtype=float).reshape(-1), n)


class CentralizedCheck:
    """Solves the centralized V or Q beside the distributed solve and measures the gap.

    The centralized problems are built from the same definitions and given the first-input
    constraint and the exploration perturbation by mpcrl's :class:`~mpcrl.Agent`, exactly
    as the centralized learner gets them.
    """

    def __init__(
        self,
        definition: LocalMpcDefinition,
        network: Network,
        local_mpcs: list[LocalMpc],
        solver: str,
    ) -> None:
        self.local_mpcs = local_mpcs
        mpc = build_centralized_mpc(definition, network, solver)
        exploration = PerAgentExploration(network.n_agents, definition.nu, 0.0, 1.0, 0.0)
        self._agent = Agent(mpc, exploration=exploration, name="centralized_check")
        self.n_agents = network.n_agents

    def compare(
        self,
        kind: str,
        result: AdmmResult,
        parameters: Mapping[str, Any],
        state: npt.ArrayLike,
        first: npt.ArrayLike,
    ) -> tuple[float, float]:
        """``(|value error|, max |dynamics multiplier error|)`` of ``result``.

        ``first`` is the perturbation (V) or the first action (Q).
        """
        mpc = self._agent.V if kind == "V" else self._agent.Q
        pars = dict(parameters)
        for i, x in enumerate(_split(state, self.n_agents)):
            pars[f"{state_name(i)}_0"] = x
        pars[PERTURBATION if kind == "V" else INIT_ACTION] = np.asarray(first, dtype=float).reshape(
            -1, 1
        )
        sol = mpc.nlp.solve(pars)
        if not sol.success:
            raise MpcSolverError(f"centralized check: the centralized {kind} failed ({sol.status})")
        value_error = abs(float(result.values.sum()) - float(sol.f))
        dual_error = 0.0
        for i, (mpc, local) in enumerate(zip(self.local_mpcs, result.local, strict=True)):
            key = f"dyn_{i}"
            diff = mpc.dual(kind, key, local) - np.asarray(sol.dual_vals[f"lam_g_{key}"])
            dual_error = max(dual_error, float(np.abs(diff).max()))
        return value_error, dual_error


class DistributedQLearning:
    """The paper's distributed multi-agent Q-learning coordinator.

    Parameters
    ----------
    definition : LocalMpcDefinition
        The example's local MPC.
    network : Network
        The communication graph.
    settings : QLearningSettings
        Q-learning hyperparameters.
    rho : float
        ADMM penalty.
    admm_iterations : int
        ADMM iteration cap.
    admm_tolerance : float
        ADMM residual tolerance (0: always run ``admm_iterations``).
    consensus_iterations : int
        Iterations of average consensus for the global scalars.
    solver : str
        Solver of the local (and check) problems.
    check_centralized : bool
        Also solve the centralized MPC at every solve and log the gaps.
    """

    def __init__(
        self,
        definition: LocalMpcDefinition,
        network: Network,
        settings: QLearningSettings,
        *,
        rho: float,
        admm_iterations: int,
        admm_tolerance: float,
        consensus_iterations: int,
        solver: str,
        check_centralized: bool = False,
    ) -> None:
        n = network.n_agents
        self.definition = definition
        self.network = network
        self.discount = definition.discount
        self.local_mpcs = [LocalMpc(definition, network, i, rho, solver) for i in range(n)]
        self.admm = AdmmCoordinator(network, self.local_mpcs, admm_iterations, admm_tolerance)
        self.consensus = AverageConsensus(network, consensus_iterations)
        self.learnable = [
            _learnable_dict(definition.learnable_parameters(i, network)) for i in range(n)
        ]
        self.optimizers = []
        for pars in self.learnable:
            optimizer = settings.optimizer()
            optimizer.set_learnable_parameters(pars)
            self.optimizers.append(optimizer)
        self.experience = settings.experience()
        self.update_strategy = settings.update_strategy()
        self.exploration = settings.exploration(n, definition.nu)
        self.fixed_parameters = [definition.fixed_parameters(i, network) for i in range(n)]
        self.check = (
            CentralizedCheck(definition, network, self.local_mpcs, solver)
            if check_centralized
            else None
        )
        self.log = TrainingLog()
        self.log.record_parameters(self.parameter_values())

    def parameter_values(self) -> dict[str, npt.NDArray[np.floating]]:
        """Every agent's current learnable parameters, by global name."""
        values: dict[str, npt.NDArray[np.floating]] = {}
        for pars in self.learnable:
            values.update(pars.value_as_dict)
        return values

    # ------------------------------------------------------------------ solving
    def _solve(self, kind: str, state: npt.ArrayLike, first: npt.ArrayLike | None) -> AdmmResult:
        n = self.network.n_agents
        states = _split(state, n)
        firsts = _split(np.zeros(n * self.definition.nu) if first is None else first, n)
        extra = PERTURBATION if kind == "V" else INIT_ACTION
        parameters = []
        for i in range(n):
            pars = dict(self.fixed_parameters[i])
            pars.update(self.learnable[i].value_as_dict)
            pars[f"{state_name(i)}_0"] = states[i]
            pars[extra] = firsts[i]
            parameters.append(pars)
        result = self.admm.solve(kind, parameters)
        self.log.admm_iterations.append(result.iterations)
        if not result.success:
            raise MpcSolverError(
                f"distributed {kind}: a local MPC failed ({'; '.join(result.statuses)})"
            )
        if self.check is not None:
            merged: dict[str, Any] = {}
            for pars in parameters:
                merged.update({k: v for k, v in pars.items() if k != extra})
            first_all = np.concatenate(firsts)
            value_error, dual_error = self.check.compare(kind, result, merged, state, first_all)
            self.log.check.setdefault(f"{kind.lower()}_error", []).append(value_error)
            self.log.check.setdefault("dual_error", []).append(dual_error)
        return result

    def state_value(
        self, state: npt.ArrayLike, deterministic: bool = False
    ) -> tuple[npt.NDArray, AdmmResult]:
        """The action and the ADMM solution of V(s), exploring unless deterministic
        (the same draws as mpcrl's ``Agent.state_value``)."""
        perturbation = None if deterministic else self.exploration.draw()
        result = self._solve("V", state, perturbation)
        return result.action, result

    def action_value(self, state: npt.ArrayLike, action: npt.ArrayLike) -> AdmmResult:
        """The ADMM solution of Q(s, a)."""
        return self._solve("Q", state, action)

    # ----------------------------------------------------------------- learning
    def train(
        self,
        env: Env,
        episodes: int,
        seed: RngType = None,
        callback: StepCallback | None = None,
    ) -> npt.NDArray[np.floating]:
        """Train for ``episodes`` episodes; returns each episode's total cost.

        Seeds are drawn as in mpcrl's ``LearningAgent.train``: the exploration streams,
        then the replay sampling and every episode's env seed come from ``seed``.
        """
        rng = np.random.default_rng(seed)
        self.exploration.reset(rng)
        self.experience.reset(rng)
        returns = np.zeros(episodes)
        for episode in range(episodes):
            state, _ = env.reset(seed=mk_seed(rng))
            returns[episode] = self._train_episode(env, state, callback)
            if self.update_strategy.hook == "on_episode_end":
                self._maybe_update()
        return returns

    def _train_episode(
        self, env: Env, state: npt.ArrayLike, callback: StepCallback | None
    ) -> float:
        total = 0.0
        done = False
        action, sol_v = self.state_value(state)
        while not done:
            sol_q = self.action_value(state, action)
            new_state, cost, truncated, terminated, info = env.step(action)
            new_action, sol_v = self.state_value(new_state)
            td_error = self._store_experience(info[AGENT_COSTS], sol_q, sol_v)
            state, action = new_state, new_action
            total += float(cost)
            done = truncated or terminated
            if self.update_strategy.hook == "on_timestep_end":
                self._maybe_update()
            if callback is not None:
                callback(td_error)
        return total

    def _store_experience(
        self, agent_costs: npt.ArrayLike, sol_q: AdmmResult, sol_v: AdmmResult
    ) -> float:
        """Every agent forms the global TD error by consensus and stores its own
        ``-td * dQ_i``; returns the TD error."""
        cost = self.consensus.sum(agent_costs)
        v_next = self.consensus.sum(sol_v.values)
        q = self.consensus.sum(sol_q.values)
        td = cost + self.discount * v_next - q  # every agent's own estimate
        gradients = tuple(
            -td[i] * mpc.gradient(sol_q.local[i]) for i, mpc in enumerate(self.local_mpcs)
        )
        self.experience.append(gradients)
        self.log.td_errors.append(float(td.mean()))
        return float(td.mean())

    def _maybe_update(self) -> None:
        if not self.update_strategy.can_update() or len(self.experience) == 0:
            return
        sample = list(self.experience.sample())
        for i, optimizer in enumerate(self.optimizers):
            gradient = np.mean([item[i] for item in sample], axis=0)
            status = optimizer.update(gradient)
            if status is not None:
                raise RuntimeError(f"update of agent {i} failed: {status}")
        self.exploration.step()
        for optimizer in self.optimizers:
            optimizer.step()
        self.log.record_parameters(self.parameter_values())


class CentralizedQLearning(LstdQLearningAgent):
    """mpcrl's LSTD Q-learning on the centralized MPC, with the same settings,
    exploration and records as :class:`DistributedQLearning`."""

    def __init__(
        self,
        definition: LocalMpcDefinition,
        network: Network,
        settings: QLearningSettings,
        *,
        solver: str,
    ) -> None:
        n = network.n_agents
        learnable: dict[str, npt.NDArray[np.floating]] = {}
        fixed: dict[str, npt.NDArray[np.floating]] = {}
        for i in range(n):
            learnable.update(definition.learnable_parameters(i, network))
            fixed.update(definition.fixed_parameters(i, network))
        super().__init__(
            mpc=build_centralized_mpc(definition, network, solver),
            update_strategy=settings.update_strategy(),
            discount_factor=definition.discount,
            optimizer=settings.optimizer(),
            learnable_parameters=_learnable_dict(learnable),
            fixed_parameters=fixed,
            exploration=settings.exploration(n, definition.nu),
            experience=settings.experience(),
            record_td_errors=True,
            name="centralized",
        )
        self.log = TrainingLog()
        self.log.record_parameters(self.parameter_values())
        self.callback: StepCallback | None = None

    def parameter_values(self) -> dict[str, npt.NDArray[np.floating]]:
        return dict(self.learnable_parameters.value_as_dict)

    def train(
        self,
        env: Env,
        episodes: int,
        seed: RngType = None,
        callback: StepCallback | None = None,
        **kwargs: Any,
    ) -> npt.NDArray[np.floating]:
        self.callback = callback
        try:
            return super().train(env, episodes, seed, **kwargs)
        finally:
            self.log.td_errors = [float(td) for td in self.td_errors or []]

    def on_update(self) -> None:
        super().on_update()
        self.log.record_parameters(self.parameter_values())

    def on_timestep_end(self, env: Env, episode: int, timestep: int) -> None:
        super().on_timestep_end(env, episode, timestep)
        if self.callback is not None and self.td_errors:
            self.callback(float(self.td_errors[-1]))
