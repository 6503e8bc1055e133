"""The training loop both learners share (:class:`TrainingLoop`), resumable between
two steps."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from gymnasium import Env
from mpcrl import Agent
from mpcrl.optim import GradientDescent

from ..checkpoints import Checkpointer, Position, generator_state, set_generator_state
from ..mpcrl_compat import RngType, load_optimizer_state, mk_seed, optimizer_state
from ..threads import single_threaded_blas
from .divergence import DivergenceMonitor, LearningDiverged

StepCallback = Callable[[float], None]
"""Called at the end of every training step with the step's TD error."""


class TrainingLoop:
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
        monitor: DivergenceMonitor | None = None,
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
        monitor : DivergenceMonitor, optional
            Checks every step for divergence; when it raises
            :class:`~.divergence.LearningDiverged`, the ``checkpointer`` (if any) saves
            the run's state first.
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
                if monitor is not None:
                    try:
                        monitor.check(
                            position.steps,
                            new_state,
                            td_error,
                            self.log.parameters,
                            self.log.admm_iterations,
                        )
                    except LearningDiverged:
                        if checkpointer is not None:
                            checkpointer.save_now(state)
                        raise
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
            "optimizers": [optimizer_state(o) for o in self._optimizers()],
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
            load_optimizer_state(optimizer, saved)
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


def refresh_solvers(agent: Agent) -> None:
    """Rebuild an mpcrl agent's V and Q solvers (csnlp's ``refresh_solver``, about
    10 ms): qpOASES hot-starts each call from the previous one, a state no checkpoint
    can hold."""
    agent.V.refresh_solver()
    agent.Q.refresh_solver()
