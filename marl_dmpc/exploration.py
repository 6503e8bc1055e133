"""Per-agent epsilon-greedy exploration, shared by the distributed and centralized learners.

Every agent explores with its own random stream: at each V(s) solve it decides with
probability epsilon whether to perturb, and if so draws a perturbation of the cost on its
own first input (mpcrl's gradient-based exploration). :class:`PerAgentExploration` is an
mpcrl exploration strategy that concatenates the agents' perturbations, so mpcrl's
centralized agent draws exactly what the distributed agents draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from mpcrl.core.exploration import EpsilonGreedyExploration, ExplorationStrategy

from .checkpoints import generator_from_state, generator_state
from .mpcrl_compat import (
    ExponentialScheduler,
    RngType,
    exploration_state,
    load_exploration_state,
    mk_seed,
)


class PerAgentExploration(ExplorationStrategy):
    """Independent epsilon-greedy cost perturbations, one stream per agent.

    Parameters
    ----------
    n_agents : int
        Number of agents.
    action_sizes : int or sequence of int
        Size of every agent's input.
    epsilon : float
        Initial probability that an agent explores at a V(s) solve.
    epsilon_decay : float
        Factor applied to epsilon after every update.
    strength : float
        Scale of the perturbation (a standard normal draw times ``strength``).
    hook : str, optional
        When to decay epsilon (mpcrl's hook name); ``"on_update"`` by default.
    """

    method = "normal"
    """The :class:`numpy.random.Generator` method drawing the perturbation (mpcrl's
    default cost-perturbation method)."""

    def __init__(
        self,
        n_agents: int,
        action_sizes: int | Sequence[int],
        epsilon: float,
        epsilon_decay: float,
        strength: float,
        hook: str = "on_update",
    ) -> None:
        super().__init__(hook=hook, mode="gradient-based")
        if isinstance(action_sizes, int):
            action_sizes = [action_sizes] * n_agents
        self.action_sizes = tuple(action_sizes)
        self.agents = [
            EpsilonGreedyExploration(
                epsilon=ExponentialScheduler(epsilon, epsilon_decay),
                strength=strength,
                hook=hook,
                mode="gradient-based",
            )
            for _ in range(n_agents)
        ]
        self._exploring = [False] * n_agents

    def reset(self, seed: RngType = None) -> None:
        """Give every agent's stream its own seed, drawn from ``seed``."""
        rng = np.random.default_rng(seed)
        for agent in self.agents:
            agent.reset(mk_seed(rng))

    def can_explore(self) -> bool:
        """Every agent decides whether it explores now; ``True`` if any does."""
        self._exploring = [agent.can_explore() for agent in self.agents]
        return any(self._exploring)

    def perturbation(self, method: str = method, *_: Any, **__: Any) -> npt.NDArray[np.floating]:
        """The agents' perturbations stacked, shape ``(sum of input sizes, 1)``; zero for
        the agents that did not decide to explore in the last :meth:`can_explore`."""
        blocks = [
            agent.perturbation(method, size=(na, 1)) if exploring else np.zeros((na, 1))
            for agent, na, exploring in zip(
                self.agents, self.action_sizes, self._exploring, strict=True
            )
        ]
        return np.concatenate(blocks, axis=0)

    def draw(self) -> npt.NDArray[np.floating] | None:
        """One V(s) solve's perturbation as mpcrl's agent draws it: ``None`` when no
        agent explores, else :meth:`perturbation`."""
        return self.perturbation(self.method) if self.can_explore() else None

    def step(self, *_: Any, **__: Any) -> None:
        """Decay every agent's epsilon."""
        for agent in self.agents:
            agent.step()

    def state(self) -> list[dict[str, Any]]:
        """Every agent's generator state and schedule, as plain data."""
        states = [exploration_state(agent) for agent in self.agents]
        return [
            {
                "rng": generator_state(s["np_random"]),
                "epsilon": s["epsilon"],
                "strength": s["strength"],
            }
            for s in states
        ]

    def load_state(self, state: Sequence[Mapping[str, Any]]) -> None:
        """Put every agent back into :meth:`state`."""
        if len(state) != len(self.agents):
            raise ValueError(f"exploration state of {len(state)} agents, not {len(self.agents)}")
        for agent, saved in zip(self.agents, state, strict=True):
            load_exploration_state(
                agent, generator_from_state(saved["rng"]), saved["epsilon"], saved["strength"]
            )

    @property
    def epsilon(self) -> float:
        """The current exploration probability (the same for every agent)."""
        return float(exploration_state(self.agents[0])["epsilon"])
