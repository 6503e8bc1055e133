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

Q(s, a) at V's own action. Exploration perturbs V's cost, so the action a taken in s is
always V(s)'s first input; if no update came between V(s) and Q(s, a), Q's problem has
V's primal solution, and both learners read Q(s, a) and dQ/dtheta off V(s)'s solution
(the value without the perturbation; V's multipliers, the perturbation taking the place
of the first-action constraint's). That is not only one solve saved: fixing u_0 pins
x_1, so wherever V's solution puts x_1 on a soft bound with zero slack (often: the
penalty is linear) Q's multipliers are not unique -- solvers, ADMM included, then return
different points of an interval (seen: 0.04 against 11.6) -- while V's are (u_0 is free).
Both learners make this choice, so their gradients stay equal. After an update, Q(s, a)
is solved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import casadi as cs
import numpy as np
import numpy.typing as npt
from csnlp.wrappers import Mpc
from gymnasium import Env
from gymnasium.spaces import Box
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
from .blocks import dynamics_name
from .checkpoints import (
    Checkpointer,
    Position,
    generator_state,
    set_generator_state,
)
from .consensus import AverageConsensus
from .envs import AGENT_COSTS, mpc_parameters
from .exploration import PerAgentExploration
from .mpc import (
    INIT_ACTION,
    PERTURBATION,
    LocalMpc,
    LocalMpcDefinition,
    build_centralized_mpc,
    dual_function,
    lagrangian_gradient,
    state_name,
)
from .network import Network
from .threads import single_threaded_blas

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

    def update_strategy(self) -> CountedUpdateStrategy:
        return CountedUpdateStrategy(self.update_every, self.update_hook)

    def exploration(self, n_agents: int, action_size: int) -> PerAgentExploration:
        return PerAgentExploration(
            n_agents, action_size, self.epsilon, self.epsilon_decay, self.exploration_strength
        )


class CountedUpdateStrategy(UpdateStrategy):
    """mpcrl's update strategy, counting its checks so that a resumed run can put it
    back where it was (:meth:`advance`)."""

    def __init__(self, frequency: int, hook: str = "on_timestep_end") -> None:
        super().__init__(frequency, hook)  # type: ignore[arg-type]
        self.checks = 0

    def can_update(self) -> bool:
        self.checks += 1
        return super().can_update()

    def advance(self, checks: int) -> None:
        """Move a new strategy to where it is after ``checks`` checks."""
        if self.checks:
            raise RuntimeError("only a new update strategy can be advanced")
        for _ in range(checks):
            self.can_update()


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
        With the centralized check, per solve: ``"v_error"``, ``"q_error"`` (absolute
        errors of the ADMM values), ``"dual_error"`` (max abs error of the dynamics
        multipliers) and ``"gradient_error"`` (max abs error of the Lagrangian's gradient).
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

    def state(self) -> dict[str, Any]:
        """The records as plain data (see :meth:`load_state`)."""
        return {
            "td_errors": np.asarray(self.td_errors, dtype=float),
            "parameters": self.parameter_history(),
            "admm_iterations": np.asarray(self.admm_iterations, dtype=np.int64),
            "check": {name: np.asarray(v, dtype=float) for name, v in self.check.items()},
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace the records by those of :meth:`state`."""
        self.td_errors = [float(v) for v in state["td_errors"]]
        self.parameters = {name: list(np.asarray(h)) for name, h in state["parameters"].items()}
        self.admm_iterations = [int(v) for v in state["admm_iterations"]]
        self.check = {name: [float(v) for v in values] for name, values in state["check"].items()}


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
    """

    values: npt.NDArray[np.floating]
    gradients: tuple[npt.NDArray[np.floating], ...]
    from_value: bool


def _learnable_dict(values: Mapping[str, npt.ArrayLike]) -> LearnableParametersDict:
    return LearnableParametersDict(
        LearnableParameter(name, np.shape(v), np.asarray(v, dtype=float))
        for name, v in values.items()
    )


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
        self.values = self._split(theta)

    def _split(self, theta: npt.NDArray[np.floating]) -> dict[str, npt.NDArray[np.floating]]:
        return {
            name: theta[self._slices[name]].reshape(shape, order="F")
            for name, shape in self.shapes.items()
        }

    def refresh(self) -> None:
        """Re-read :attr:`values` (by name) after an update of :attr:`parameters`."""
        self.values = self._split(self.parameters.value.copy())


def _multipliers(mpc: Mpc) -> cs.SX:
    """The multiplier vector of ``mpc`` as csnlp lays it out (equalities, inequalities)."""
    return cs.vertcat(mpc.nlp.lam_g, mpc.nlp.lam_h)


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
        names = [name for m in local_mpcs for name in m.learnable_names]
        self._gradients = {}
        self._dynamics_duals = {}
        for kind in ("V", "Q"):
            mpc = self._agent.V if kind == "V" else self._agent.Q
            lam = _multipliers(mpc)
            self._gradients[kind] = lagrangian_gradient(mpc, names, mpc.nlp.p, lam, "check_d")
            self._dynamics_duals[kind] = [
                dual_function(mpc, lam, dynamics_name(i)) for i in range(self.n_agents)
            ]

    def restart_solvers(self) -> None:
        """Rebuild the centralized solvers (see :meth:`_TrainingLoop._restart_solvers`)."""
        _refresh_solvers(self._agent)

    def compare(
        self,
        kind: str,
        result: AdmmResult,
        parameters: Mapping[str, Any],
        state: npt.ArrayLike,
        first: npt.ArrayLike,
    ) -> dict[str, float]:
        """The gaps between ``result`` and the centralized solution, by name:
        ``"v_error"`` or ``"q_error"`` (absolute value gap), ``"dual_error"`` (max abs gap
        of the dynamics multipliers), ``"dual_error_norms"`` (the sum over agents of the
        2-norms of those gaps, the paper's measure) and ``"gradient_error"`` (max abs gap
        between the agents' local Lagrangian gradients and the centralized one).

        ``first`` is the perturbation (V) or the first action (Q).
        """
        mpc = self._agent.V if kind == "V" else self._agent.Q
        pars = dict(parameters)
        for i, x in enumerate(_split(state, self.n_agents)):
            pars[f"{state_name(i)}_0"] = x
        extra = PERTURBATION if kind == "V" else INIT_ACTION
        pars[extra] = np.asarray(first, dtype=float).reshape(-1, 1)
        sol = mpc.nlp.solve(pars)
        if not sol.success:
            raise MpcSolverError(f"centralized check: the centralized {kind} failed ({sol.status})")
        errors = {f"{kind.lower()}_error": abs(float(result.values.sum()) - float(sol.f))}
        lam = sol.lam_g_and_h
        local = np.concatenate(
            [m.gradient(s, kind) for m, s in zip(self.local_mpcs, result.local, strict=True)]
        )
        central = np.asarray(self._gradients[kind](sol.x, sol.p, lam)).reshape(-1)
        errors["gradient_error"] = float(np.abs(local - central).max())
        dual_error = dual_norms = 0.0
        for i, (local_mpc, local_sol) in enumerate(zip(self.local_mpcs, result.local, strict=True)):
            central = np.asarray(self._dynamics_duals[kind][i](lam))
            diff = local_mpc.dual(kind, dynamics_name(i), local_sol) - central
            dual_error = max(dual_error, float(np.abs(diff).max()))
            dual_norms += float(np.linalg.norm(diff))
        errors["dual_error"] = dual_error
        errors["dual_error_norms"] = dual_norms
        return errors


class _TrainingLoop:
    """The training loop both learners share: mpcrl's ``LearningAgent.train`` and
    ``LstdQLearningAgent.train_one_episode``, step for step (so both draw the same
    seeds), written so that it can stop and resume between two steps
    (:mod:`marl_dmpc.checkpoints`). A learner implements the hooks ``_begin``,
    ``_begin_episode``, ``_step``, ``_end_episode``, ``_end``, ``_in_flight``,
    ``_optimizers``, ``_solver_state`` / ``_load_solver_state``, ``_restart_solvers`` and
    ``read_env_parameters``; saving and restoring the rest of its state is shared
    (``_learner_state`` / ``_load_learner_state``)."""

    def train(
        self,
        env: Env,
        episodes: int,
        seed: RngType = None,
        callback: StepCallback | None = None,
        checkpointer: Checkpointer | None = None,
        resume: Mapping[str, Any] | None = None,
    ) -> npt.NDArray[np.floating]:
        """Train for ``episodes`` episodes; returns each episode's total cost.

        Seeds are drawn as in mpcrl's ``LearningAgent.train``: the exploration streams,
        then the replay sampling and every episode's env seed come from ``seed``.

        Parameters
        ----------
        env : Env
            The env; with a ``checkpointer`` or ``resume``, one with ``state`` and
            ``load_state`` (:class:`~marl_dmpc.envs.StepRecorder`).
        episodes : int
            Number of episodes (in all, when resuming).
        seed : int or Generator, optional
            The run's seed.
        callback : callable, optional
            Called after every step with its TD error.
        checkpointer : Checkpointer, optional
            Saves the run's state when due (see :mod:`marl_dmpc.checkpoints`).
        resume : dict, optional
            A state saved by ``checkpointer`` (``"training"`` of a checkpoint file):
            training continues from there with the same ``seed``, as the uninterrupted
            run did (see :mod:`marl_dmpc.checkpoints`).
        """
        rng = np.random.default_rng(seed)
        with single_threaded_blas():
            if resume is None:
                self._begin(env, rng)
                position = Position()
            else:
                position = self._resume(env, rng, resume)

            def state() -> dict[str, Any]:
                return {
                    "position": position.to_dict(),
                    "rng": generator_state(rng),
                    "env": env.state(),  # type: ignore[attr-defined]
                    "learner": self._learner_state(),
                }

            while position.episode < episodes:
                if position.state is None:
                    position.state, _ = env.reset(seed=mk_seed(rng))
                    position.action = self._begin_episode(env, position.episode, position.state)
                    position.timestep, position.total = 0, 0.0
                new_state, new_action, cost, done, td_error = self._step(
                    env, position.episode, position.timestep, position.state, position.action
                )
                position.state, position.action = new_state, new_action
                position.timestep += 1
                position.steps += 1
                position.total += float(cost)
                if callback is not None:
                    callback(td_error)
                if done:
                    self._end_episode(env, position.episode, position.total)
                    position.returns.append(position.total)
                    position.episode += 1
                    position.state = position.action = None
                if checkpointer is not None and (position.state is None or not self._in_flight()):
                    if checkpointer.at_boundary(position, state):
                        self._restart_solvers()  # as a run resumed from here starts them
            returns = np.array(position.returns)
            self._end(env, returns)
        return returns

    def _resume(self, env: Env, rng: np.random.Generator, saved: Mapping[str, Any]) -> Position:
        self._begin(env, rng)  # builds what a start builds; the state then overwrites it
        set_generator_state(rng, saved["rng"])
        env.load_state(saved["env"])  # type: ignore[attr-defined]
        self._load_learner_state(saved["learner"])
        self.read_env_parameters(env)
        return Position.from_dict(dict(saved["position"]))

    def _learner_state(self) -> dict[str, Any]:
        """What the learner must remember to continue, as plain data."""
        return {
            "parameters": self.parameter_values(),
            "optimizers": [_optimizer_state(o) for o in self._optimizers()],
            "exploration": self.exploration.state(),
            "experience": [
                list(item) if isinstance(item, tuple) else item for item in self.experience
            ],
            "update_checks": self.update_strategy.checks,
            "log": self.log.state(),
            **self._solver_state(),
        }

    def _load_learner_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`_learner_state` into a learner that :meth:`_begin` has just
        started (its experience already draws from the run's generator)."""
        self.set_parameter_values(state["parameters"])
        for optimizer, saved in zip(self._optimizers(), state["optimizers"], strict=True):
            optimizer.lr_scheduler.value = saved["learning_rate"]
            optimizer._momentum_buffer = saved["momentum_buffer"]
        self.exploration.load_state(state["exploration"])
        self.experience.clear()
        self.experience.extend(
            tuple(item) if isinstance(item, list) else item for item in state["experience"]
        )
        self.update_strategy.advance(state["update_checks"])
        self.log.load_state(state["log"])
        self._load_solver_state(state)

    # hooks
    def _begin(self, env: Env, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _begin_episode(self, env: Env, episode: int, state: npt.ArrayLike) -> npt.NDArray:
        raise NotImplementedError

    def _step(
        self, env: Env, episode: int, timestep: int, state: npt.ArrayLike, action: npt.ArrayLike
    ) -> tuple[npt.NDArray, npt.NDArray, float, bool, float]:
        raise NotImplementedError

    def _end_episode(self, env: Env, episode: int, total: float) -> None:
        raise NotImplementedError

    def _end(self, env: Env, returns: npt.NDArray[np.floating]) -> None:
        """Called once the last episode has ended."""

    def _in_flight(self) -> bool:
        raise NotImplementedError

    def _optimizers(self) -> list[GradientDescent]:
        raise NotImplementedError

    def _solver_state(self) -> dict[str, Any]:
        """The warm start of the learner's solvers (part of :meth:`_learner_state`)."""
        raise NotImplementedError

    def _load_solver_state(self, state: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _restart_solvers(self) -> None:
        """Put every solver whose answers depend on its earlier calls back in its new
        state, as a learner built to resume from a checkpoint has it: called after each
        scheduled checkpoint, so that a resumed run repeats the uninterrupted one."""
        raise NotImplementedError

    def read_env_parameters(self, env: Env) -> None:
        raise NotImplementedError


def _refresh_solvers(agent: Agent) -> None:
    """Rebuild an mpcrl agent's V and Q solvers (csnlp's ``refresh_solver``, about
    10 ms): qpOASES hot-starts each call from the previous one, a state no checkpoint
    can hold."""
    agent.V.refresh_solver()
    agent.Q.refresh_solver()


def _optimizer_state(optimizer: GradientDescent) -> dict[str, Any]:
    return {
        "learning_rate": float(optimizer.lr_scheduler.value),
        "momentum_buffer": optimizer._momentum_buffer,
    }


class DistributedQLearning(_TrainingLoop):
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
        ADMM primal-residual tolerance (0: always run ``admm_iterations``).
    admm_dual_tolerance : float, optional
        ADMM dual-residual tolerance; ``admm_tolerance`` by default.
    admm_memory : int
        Memory of the Anderson acceleration of ADMM (0: plain ADMM).
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
        admm_dual_tolerance: float | None = None,
        admm_memory: int = 0,
        consensus_iterations: int,
        solver: str,
        check_centralized: bool = False,
    ) -> None:
        n = network.n_agents
        self.definition = definition
        self.network = network
        self.discount = definition.discount
        self.local_mpcs = [LocalMpc(definition, network, i, rho, solver) for i in range(n)]
        self.admm = AdmmCoordinator(
            network,
            self.local_mpcs,
            admm_iterations,
            admm_tolerance,
            admm_dual_tolerance,
            memory=admm_memory,
        )
        self.consensus = AverageConsensus(network, consensus_iterations)
        self.learnable = [
            _StackedParameters(i, definition.learnable_parameters(i, network)) for i in range(n)
        ]
        self.optimizers = []
        for pars in self.learnable:
            optimizer = settings.optimizer()
            optimizer.set_learnable_parameters(pars.parameters)
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
            values.update(pars.values)
        return values

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
        states = _split(state, n)
        firsts = _split(np.zeros(n * self.definition.nu) if first is None else first, n)
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
            return ActionValue(
                np.array([s.cost for s in local]),
                tuple(m.gradient(s, "V") for m, s in zip(self.local_mpcs, local, strict=True)),
                from_value=True,
            )
        result = self._solve("Q", state, action)
        return ActionValue(
            result.values,
            tuple(m.gradient(s) for m, s in zip(self.local_mpcs, result.local, strict=True)),
            from_value=False,
        )

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
        for name, value in mpc_parameters(env).items():
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
        gradients = tuple(-td[i] * dq for i, dq in enumerate(q.gradients))
        self.experience.append(gradients)
        self.log.td_errors.append(float(td.mean()))
        return float(td.mean())

    def _maybe_update(self) -> bool:
        """Update if the strategy says so; returns whether it did."""
        if not self.update_strategy.can_update() or len(self.experience) == 0:
            return False
        sample = list(self.experience.sample())
        for i, optimizer in enumerate(self.optimizers):
            gradient = np.mean([item[i] for item in sample], axis=0)
            status = optimizer.update(gradient)
            if status is not None:
                raise RuntimeError(f"update of agent {i} failed: {status}")
            self.learnable[i].refresh()
        self.exploration.step()
        for optimizer in self.optimizers:
            optimizer.step()
        self.log.record_parameters(self.parameter_values())
        return True


class CentralizedQLearning(_TrainingLoop, LstdQLearningAgent):
    """mpcrl's LSTD Q-learning on the centralized MPC, with the same settings,
    exploration and records as :class:`DistributedQLearning`.

    The one change to mpcrl's agent: Q(s, a) at V(s)'s own action, with no update in
    between, is read off V(s)'s solution, as the distributed learner does (see the
    module's notes).
    """

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
        if self.optimizer.order != 1:
            raise ValueError("CentralizedQLearning supports first-order optimizers only")
        names = list(self._learnable_pars)
        self._gradients = {
            kind: lagrangian_gradient(mpc, names, mpc.nlp.p, _multipliers(mpc), f"d{kind}")
            for kind, mpc in (("V", self._V), ("Q", self._Q))
        }
        v = self._V.nlp
        unperturbed = v.f
        if PERTURBATION in v.parameters:
            unperturbed = cs.substitute(v.f, v.parameters[PERTURBATION], 0)
        self._unperturbed_value = cs.Function("unperturbed_V", [v.x, v.p], [unperturbed])
        self._sensitivity = self._dq  # replaces mpcrl's dQ/dtheta (same input and output)
        self._last_value: tuple[npt.NDArray, npt.NDArray, Any] | None = None
        self.log = TrainingLog()
        self.log.record_parameters(self.parameter_values())

    def parameter_values(self) -> dict[str, npt.NDArray[np.floating]]:
        return dict(self.learnable_parameters.value_as_dict)

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
        self._is_training = True
        self._raises = True
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
        if not self._try_store_experience(cost, solution_q, solution_v):
            self.on_mpc_failure(
                episode, timestep, f"{solution_q.status} (Q); {solution_v.status} (V)", True
            )
        td_error = float(self.td_errors[-1])
        self.log.td_errors.append(td_error)
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
        last = self._last_solution  # its primal values are the next solve's initial guess
        return {
            "warm_start": None
            if last is None
            else {name: np.asarray(value, dtype=float) for name, value in last.vals.items()}
        }

    def _load_solver_state(self, state: Mapping[str, Any]) -> None:
        warm = state["warm_start"]
        self._last_solution = None if warm is None else _WarmStart(dict(warm))
        self.td_errors.clear()  # mpcrl's own record, kept beside the log
        self.td_errors.extend(self.log.td_errors)

    def _restart_solvers(self) -> None:
        _refresh_solvers(self)


@dataclass(frozen=True)
class _WarmStart:
    """A saved solution's primal values, which is all the agent reads of its last
    solution (the next solve's initial guess)."""

    vals: dict[str, npt.NDArray[np.floating]]
