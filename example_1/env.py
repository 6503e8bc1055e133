"""Example 1's plant as a gymnasium environment."""

from __future__ import annotations

import functools

import numpy.typing as npt

from marl_dmpc.envs import LinearNetworkEnv
from reproduction.example_1 import model


class CoupledLinearSystemsEnv(LinearNetworkEnv):
    """Three coupled linear systems with the true dynamics and uniform noise
    (:class:`~marl_dmpc.envs.LinearNetworkEnv`).

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

    def __init__(
        self,
        max_steps: int | None = None,
        model_: model.LinearModel = model.TRUE,
        noise: bool = True,
        shared_noise: bool = False,
        noise_sequence: npt.ArrayLike | None = None,
    ) -> None:
        self.network = model.network()
        n = self.network.n_agents
        A, B = model.network_matrices(model_, self.network)
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
            noise=noise,
            shared_noise=shared_noise,
            noise_sequence=noise_sequence,
        )
