"""Every setting of an example-1 run in one place (printed into each result file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from marl_dmpc.config import OneEpisodeConfig


@dataclass(frozen=True, kw_only=True)
class Example1Config(OneEpisodeConfig):
    """Settings of an example-1 training run (one episode of ``steps`` steps); defaults
    are the release's hyperparameters (``docs/reproduction.md``) except the ADMM
    algorithm (stopping rule, acceleration) and the solver, which do not change the
    MPC's solution, and a short run length.

    Attributes
    ----------
    steps : int
        Training steps (one episode); the release's runs are 10000 and 20000.
    """

    flag_group: ClassVar[str] = "example 1"

    steps: int = 200
    checkpoint_every: int = 1000  # steps
    # distributed MPC; primal and dual residual tolerances: V, Q within 1e-6 and duals
    # within 1e-5 of the centralized MPC (the dual one binds less: at 3e-8 or 1e-6 the
    # errors are the same)
    rho: float = 0.5
    admm_tol: float = 3e-8
    admm_dual_tol: float = 1e-6
    # Anderson acceleration: 79 -> 32 ADMM iterations per solve (300 steps, seed 1)
    admm_memory: int = 10
    # MPC
    horizon: int = 10
    discount: float = 0.9
    # Q-learning
    learning_rate: float = 6e-5
    learning_rate_decay: float = 0.9996
    update_every: int = 2
    replay_maxlen: int = 100
    replay_sample_size: int = 15
    replay_include_latest: int = 10
    epsilon: float = 0.7
    epsilon_decay: float = 0.99
    exploration_strength: float = 1.0  # 0.5 * (u_max - u_min)
