"""Environment helpers shared by the examples.

An env whose MPC parameters vary in time (e.g., a measured load and its set points)
has a method ``mpc_parameters()`` returning their values at its current state by
global name (:func:`~marl_dmpc.blocks.parameter_name`); both learners read them with
:func:`mpc_parameters` after every reset and every step, so V(s) and Q(s, a) are always
solved with the values that belong to ``s``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from mpcrl.wrappers.envs import MonitorEpisodes

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

    def state_bounds(self) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
        """Lower and upper bounds of the state that the MPCs are asked to keep
        (infinite where there is none); divergence detection watches them."""
        shape = self.observation_space.shape
        return np.full(shape, -np.inf), np.full(shape, np.inf)

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


def soft_bound_stage_costs(
    x: npt.ArrayLike,
    u: npt.ArrayLike,
    n_agents: int,
    x_bounds: tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]],
    weight: npt.NDArray[np.floating],
) -> npt.NDArray[np.floating]:
    """Every agent's stage cost ``0.5 (||x_i||^2 + 0.5 ||u_i||^2 + weight^T viol(x_i))``,
    ``viol`` the violation of its soft state bounds ``x_bounds = (lower, upper)``."""
    lb, ub = x_bounds
    x = np.reshape(x, (n_agents, lb.size))
    u = np.reshape(u, (n_agents, -1))
    viol = np.maximum(0.0, lb - x) + np.maximum(0.0, x - ub)
    return 0.5 * ((x**2).sum(1) + 0.5 * (u**2).sum(1) + viol @ weight)


class LinearNetworkEnv(NetworkEnv):
    """A network of linear systems ``x+ = A x + B u + w``: every agent's state ``x_i``
    (size ``nx``) starts at ``x0``; the noise ``w`` disturbs every agent's state
    ``noisy_state`` by ``U[noise_low, noise_high]``, drawn from the generator seeded by
    ``reset(seed=...)``: one draw per agent and step, or with ``shared_noise`` one per
    step for every agent. ``noise_sequence`` replays given noise instead. ``step``
    returns the stage cost ``stage_costs(x, u)`` (every agent's) of the state before
    the step.

    Parameters
    ----------
    A, B : ndarray
        The network's dynamics (all agents' states and inputs stacked).
    n_agents : int
        Number of agents.
    x0 : ndarray
        Every agent's initial state.
    x_bounds, u_bounds : tuple of ndarray
        Every agent's soft state bounds (what divergence detection watches) and input
        bounds, each ``(lower, upper)``.
    stage_costs : callable
        ``(x, u) -> every agent's stage cost``.
    noise_bounds : tuple of float
        ``(noise_low, noise_high)``.
    noisy_state : int, optional
        The disturbed entry of every agent's state (0: the first).
    max_steps : int, optional
        Steps after which the episode is truncated; unlimited if ``None``.
    noise : bool, optional
        Whether to disturb the plant (``True`` by default).
    shared_noise : bool, optional
        One noise value per step for every agent instead of one per agent.
    noise_sequence : array_like, optional
        The noise on every agent's disturbed state at each step of an episode, shape
        ``(steps, agents)``; an episode may not run longer.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        A: npt.NDArray[np.floating],
        B: npt.NDArray[np.floating],
        n_agents: int,
        x0: npt.NDArray[np.floating],
        x_bounds: tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]],
        u_bounds: tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]],
        stage_costs: Callable[[npt.NDArray, npt.NDArray], npt.NDArray[np.floating]],
        noise_bounds: tuple[float, float],
        noisy_state: int = 0,
        max_steps: int | None = None,
        noise: bool = True,
        shared_noise: bool = False,
        noise_sequence: npt.ArrayLike | None = None,
    ) -> None:
        super().__init__()
        n = self.n_agents = n_agents
        self.A, self.B = A, B
        self.x0 = np.asarray(x0, dtype=float)
        self.nx = self.x0.size
        self.x_bounds = x_bounds
        self.stage_costs = stage_costs
        self.noise_bounds = noise_bounds
        self.noisy_state = noisy_state
        self.max_steps = max_steps
        self.noise = noise
        self.shared_noise = shared_noise
        self.noise_sequence = None
        if noise_sequence is not None:
            sequence = np.asarray(noise_sequence, dtype=float)
            if sequence.ndim != 2 or sequence.shape[1] != n:
                raise ValueError(
                    f"noise_sequence must have shape (steps, {n}); got {sequence.shape}"
                )
            self.noise_sequence = sequence
        u_lb, u_ub = (np.asarray(bound, dtype=float) for bound in u_bounds)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n * self.nx,), np.float64)
        self.action_space = gym.spaces.Box(
            np.tile(u_lb, n), np.tile(u_ub, n), (n * u_lb.size,), np.float64
        )
        self._x = np.tile(self.x0, n)
        self._steps = 0

    def state_bounds(self) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
        """Every agent's soft state bounds."""
        lb, ub = self.x_bounds
        return np.tile(lb, self.n_agents), np.tile(ub, self.n_agents)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.floating], dict[str, Any]]:
        super().reset(seed=seed)
        self._x = np.tile(self.x0, self.n_agents)
        self._steps = 0
        return self._x.copy(), {}

    def _advance(self, u: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        agent_costs = self.stage_costs(self._x, u)
        w = np.zeros((self.n_agents, self.nx))
        if self.noise_sequence is not None:
            if self._steps >= len(self.noise_sequence):
                steps = len(self.noise_sequence)
                raise ValueError(f"the replayed noise has {steps} steps; the episode ran longer")
            w[:, self.noisy_state] = self.noise_sequence[self._steps]
        elif self.noise:
            draws = 1 if self.shared_noise else self.n_agents
            w[:, self.noisy_state] = self.np_random.uniform(*self.noise_bounds, draws)
        self._x = self.A @ self._x + self.B @ u + w.reshape(-1)
        return agent_costs


def mpc_parameters(env: gym.Env) -> dict[str, npt.NDArray[np.floating]]:
    """The env's time-varying MPC parameters at its current state (through any
    wrappers); empty if it has none."""
    try:
        getter = env.get_wrapper_attr("mpc_parameters")
    except AttributeError:
        return {}
    return {name: np.asarray(value, dtype=float) for name, value in getter().items()}


class StepRecorder(MonitorEpisodes):
    """mpcrl's :class:`~mpcrl.wrappers.envs.MonitorEpisodes` (every state, action and cost
    of the wrapped env, episode by episode), with what a resumable training needs: the
    unfinished episode's data alongside the finished ones (:meth:`episode_arrays`), and
    the records and the wrapped env's state as plain data (:meth:`state`,
    :meth:`load_state`). Actions are recorded, and passed on, as flat float arrays.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return super().step(np.asarray(action, dtype=float).reshape(-1))

    def _episodes(self) -> list[tuple[Any, Any, Any]]:
        """Every episode's (states, actions, costs): the finished ones, then the current
        one if it has begun."""
        episodes = list(zip(self.observations, self.actions, self.rewards, strict=True))
        if self.ep_observations:
            episodes.append((self.ep_observations, self.ep_actions, self.ep_rewards))
        return episodes

    @property
    def costs(self) -> list[list[float]]:
        """Every episode's stage costs (the current one's so far)."""
        return [[float(c) for c in costs] for _, _, costs in self._episodes()]

    def state(self) -> dict[str, Any]:
        """What was recorded and the wrapped env's state, as plain data."""
        episodes = self._episodes()
        return {
            "states": [np.array(states, dtype=float) for states, _, _ in episodes],
            "actions": [np.array(actions, dtype=float) for _, actions, _ in episodes],
            "costs": [np.array(costs, dtype=float) for _, _, costs in episodes],
            "current": bool(self.ep_observations),
            "env": self.env.get_wrapper_attr("state")(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the records and the wrapped env's state of :meth:`state`."""
        episodes = list(zip(state["states"], state["actions"], state["costs"], strict=True))
        current = episodes.pop() if state.get("current", True) and episodes else None
        for deque_ in (self.observations, self.actions, self.rewards, self.episode_lengths):
            deque_.clear()
        self._clear_ep_data()
        for states, actions, costs in episodes:
            self.observations.append(np.asarray(states, dtype=float))
            self.actions.append(np.asarray(actions, dtype=float))
            self.rewards.append(np.asarray(costs, dtype=float))
            self.episode_lengths.append(len(costs))
        if current is not None:
            states, actions, costs = current
            self.ep_observations.extend(np.asarray(states, dtype=float))
            self.ep_actions.extend(np.asarray(actions, dtype=float))
            self.ep_rewards.extend(float(c) for c in costs)
            self.ep_length = len(self.ep_rewards)
        self.env.get_wrapper_attr("load_state")(state["env"])

    @property
    def steps(self) -> int:
        """Steps taken in all episodes."""
        return sum(len(costs) for _, _, costs in self._episodes())

    @property
    def last_cost(self) -> float:
        """The cost of the last step (NaN before the first)."""
        if self.ep_rewards:
            return float(self.ep_rewards[-1])
        if self.rewards and len(self.rewards[-1]):
            return float(self.rewards[-1][-1])
        return float("nan")

    def episode_arrays(self, episode: int) -> dict[str, npt.NDArray[np.floating]]:
        """``states`` (T+1, ns), ``actions`` (T, na) and ``costs`` (T,) of an episode;
        an unfinished one is cut to its completed steps."""
        states, actions, costs = self._episodes()[episode]
        T = len(actions)
        na = self.env.action_space.shape[0]
        return {
            "states": np.array(states[: T + 1], dtype=float),
            "actions": np.array(actions, dtype=float).reshape(T, na),
            "costs": np.array(costs[:T], dtype=float),
        }
