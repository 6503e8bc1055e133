"""The follow-up's plant as a gymnasium environment."""

from __future__ import annotations

import functools

import numpy.typing as npt

from marl_dmpc.envs import LinearNetworkEnv
from reproduction.second_order import model


class ChainNetworkEnv(LinearNetworkEnv):
    """The follow-up's three coupled systems, true dynamics, ``U[-0.1, 0]`` noise on
    every agent's first state drawn per agent (:class:`~marl_dmpc.envs.LinearNetworkEnv`).

    Parameters
    ----------
    max_steps : int, optional
        Steps after which the episode is truncated; unlimited if ``None``.
    noise_sequence : array_like, optional
        The noise on every agent's first state at each step, shape ``(steps, 3)``,
        replayed instead of drawn (e.g. backed out of a published run).
    """

    def __init__(
        self, max_steps: int | None = None, noise_sequence: npt.ArrayLike | None = None
    ) -> None:
        self.network = model.network()
        n = self.network.n_agents
        A, B = model.network_matrices(model.TRUE, self.network)
        super().__init__(
            A,
            B,
            n,
            model.X0,
            (model.X_LB, model.X_UB),
            (model.U_LB, model.U_UB),
            functools.partial(model.stage_costs, n_agents=n),
            (model.NOISE_LOW, model.NOISE_HIGH),
            max_steps=max_steps,
            noise_sequence=noise_sequence,
        )
