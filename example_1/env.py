"""Example 1's plant as a gymnasium environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from marl_dmpc.envs import NetworkEnv
from reproduction.example_1 import model


class CoupledLinearSystemsEnv(NetworkEnv):
    """Three coupled linear systems with the true dynamics and uniform noise.

    Observation: the agents' states concatenated, shape ``(6,)``. Action: their inputs
    concatenated, shape ``(3,)``, in ``[-1, 1]``. ``step`` returns the network's stage
    cost of the current state and action (a cost, to be minimized) and, in ``info``, every
    agent's share under ``"agent_costs"``. The noise on each agent's first state,
    ``U[-0.1, 0]``, comes from the generator seeded by ``reset(seed=...)``: one draw per
    agent and step, or with ``shared_noise`` one per step for every agent (the release's
    evaluations: its env draws one value from bounds of shape (2, 1) and broadcasts it).
    ``noise_sequence`` replays given noise instead (e.g. backed out of a release
    evaluation file, :func:`marl_dmpc.legacy.backed_out_noise`).

    Parameters
    ----------
    max_steps : int, optional
        Steps after which the episode is truncated; unlimited if ``None``.
    model_ : LinearModel, optional
        The plant's model; the true one by default.
    noise : bool, optional
        Whether to disturb the plant (``True`` by default).
    shared_noise : bool, optional
        One noise value per step for every agent instead of one per agent.
    noise_sequence : array_like, optional
        The noise on every agent's first state at each step of an episode, shape
        ``(steps, agents)``; an episode may not run longer.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        max_steps: int | None = None,
        model_: model.LinearModel = model.TRUE,
        noise: bool = True,
        shared_noise: bool = False,
        noise_sequence: npt.ArrayLike | None = None,
    ) -> None:
        super().__init__()
        self.network = model.network()
        n = self.network.n_agents
        self.n_agents = n
        self.A, self.B = model.network_matrices(model_, self.network)
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
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n * model.NX,), np.float64)
        self.action_space = gym.spaces.Box(
            np.tile(model.U_LB, n), np.tile(model.U_UB, n), (n * model.NU,), np.float64
        )
        self._x = np.tile(model.X0, n)
        self._steps = 0

    def state_bounds(self) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
        """Every agent's soft state bounds ``[X_LB, X_UB]``."""
        return np.tile(model.X_LB, self.n_agents), np.tile(model.X_UB, self.n_agents)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.floating], dict[str, Any]]:
        super().reset(seed=seed)
        self._x = np.tile(model.X0, self.n_agents)
        self._steps = 0
        return self._x.copy(), {}

    def _advance(self, u: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        agent_costs = model.stage_costs(self._x, u, self.n_agents)
        w = np.zeros((self.n_agents, model.NX))
        if self.noise_sequence is not None:
            if self._steps >= len(self.noise_sequence):
                steps = len(self.noise_sequence)
                raise ValueError(f"the replayed noise has {steps} steps; the episode ran longer")
            w[:, 0] = self.noise_sequence[self._steps]
        elif self.noise:
            draws = 1 if self.shared_noise else self.n_agents
            w[:, 0] = self.np_random.uniform(model.NOISE_LOW, model.NOISE_HIGH, draws)
        self._x = self.A @ self._x + self.B @ u + w.reshape(-1)
        return agent_costs
