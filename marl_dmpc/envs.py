"""Environment helpers shared by the examples.

An env whose MPC parameters vary in time (e.g., a measured load and its set points)
has a method ``mpc_parameters()`` returning their values at its current state by
global name (:func:`~marl_dmpc.blocks.parameter_name`); both learners read them with
:func:`mpc_parameters` after every reset and every step, so V(s) and Q(s, a) are always
solved with the values that belong to ``s``.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from .checkpoints import generator_from_state, generator_state

#: Key of the per-agent stage costs in the ``info`` dict returned by an env's ``step``.
AGENT_COSTS = "agent_costs"


class NetworkEnv(gym.Env[npt.NDArray[np.floating], npt.NDArray[np.floating]]):
    """The common part of a network's plant: ``step`` checks the action's size,
    advances the plant (:meth:`_advance`), counts the steps, truncates after
    ``max_steps`` (if not ``None``) and returns the network's stage cost with every
    agent's share in ``info[AGENT_COSTS]``. Subclasses set :attr:`action_space` and
    keep the state in ``_x``; ``reset`` must set ``_steps = 0``."""

    max_steps: int | None
    _x: npt.NDArray[np.floating]
    _steps: int = 0

    #: Attributes that with ``np_random`` make up the env's state (:meth:`state`).
    state_attributes: tuple[str, ...] = ("_x", "_steps")

    def state(self) -> dict[str, Any]:
        """The env's state as plain data: :attr:`state_attributes` and its generator's
        state (see :meth:`load_state`)."""
        state = {name: copy.deepcopy(getattr(self, name)) for name in self.state_attributes}
        state["np_random"] = generator_state(self.np_random)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Put the env back into :meth:`state` (e.g. to resume a training run)."""
        for name in self.state_attributes:
            value = state[name]
            setattr(self, name, np.array(value) if isinstance(value, np.ndarray) else value)
        self.np_random = generator_from_state(state["np_random"])

    def _advance(self, u: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        """Move ``_x`` one step under the input ``u``; returns every agent's stage cost
        of the state before the step and ``u``."""
        raise NotImplementedError

    def step(
        self, action: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.floating], float, bool, bool, dict[str, Any]]:
        u = np.asarray(action, dtype=float).reshape(-1)
        if u.shape != self.action_space.shape:
            raise ValueError(f"action must have {self.action_space.shape[0]} entries; got {u.size}")
        agent_costs = self._advance(u)
        self._steps += 1
        truncated = self.max_steps is not None and self._steps >= self.max_steps
        return (
            self._x.copy(),
            float(agent_costs.sum()),
            False,
            truncated,
            {AGENT_COSTS: agent_costs},
        )


def mpc_parameters(env: gym.Env) -> dict[str, npt.NDArray[np.floating]]:
    """The env's time-varying MPC parameters at its current state (through any
    wrappers); empty if it has none."""
    try:
        getter = env.get_wrapper_attr("mpc_parameters")
    except AttributeError:
        return {}
    return {name: np.asarray(value, dtype=float) for name, value in getter().items()}


class StepRecorder(gym.Wrapper):
    """Records every state, action and cost of the wrapped env, episode by episode.

    ``states[e]`` has one more row than ``actions[e]`` and ``costs[e]`` (the state the
    episode was reset to). Data of an unfinished episode is available too, so an
    interrupted run keeps what it has computed.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.states: list[list[npt.NDArray[np.floating]]] = []
        self.actions: list[list[npt.NDArray[np.floating]]] = []
        self.costs: list[list[float]] = []

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        state, info = self.env.reset(**kwargs)
        self.states.append([np.array(state, dtype=float)])
        self.actions.append([])
        self.costs.append([])
        return state, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=float).reshape(-1)
        state, cost, terminated, truncated, info = self.env.step(action)
        self.states[-1].append(np.array(state, dtype=float))
        self.actions[-1].append(action)
        self.costs[-1].append(float(cost))
        return state, cost, terminated, truncated, info

    def state(self) -> dict[str, Any]:
        """What was recorded and the wrapped env's state, as plain data."""
        return {
            "states": [np.array(states) for states in self.states],
            "actions": [np.array(actions) for actions in self.actions],
            "costs": [np.array(costs, dtype=float) for costs in self.costs],
            "env": self.env.get_wrapper_attr("state")(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the records and the wrapped env's state of :meth:`state`."""
        self.states = [list(np.asarray(s, dtype=float)) for s in state["states"]]
        self.actions = [list(np.asarray(a, dtype=float)) for a in state["actions"]]
        self.costs = [[float(c) for c in costs] for costs in state["costs"]]
        self.env.get_wrapper_attr("load_state")(state["env"])

    @property
    def steps(self) -> int:
        """Steps taken in all episodes."""
        return sum(len(c) for c in self.costs)

    @property
    def last_cost(self) -> float:
        return self.costs[-1][-1] if self.costs and self.costs[-1] else float("nan")

    def episode_arrays(self, episode: int) -> dict[str, npt.NDArray[np.floating]]:
        """``states`` (T+1, ns), ``actions`` (T, na) and ``costs`` (T,) of an episode;
        an unfinished one is cut to its completed steps."""
        actions = self.actions[episode]
        T = len(actions)
        na = self.env.action_space.shape[0]
        return {
            "states": np.array(self.states[episode][: T + 1]),
            "actions": np.array(actions).reshape(T, na),
            "costs": np.array(self.costs[episode][:T]),
        }
