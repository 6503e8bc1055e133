"""Every setting of a run of the follow-up's example in one place (printed into each
result file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from marl_dmpc.config import OneEpisodeConfig


@dataclass(frozen=True, kw_only=True)
class SecondOrderConfig(OneEpisodeConfig):
    """Settings of a training run of the follow-up's example (one episode of ``steps``
    steps); defaults are its release's second-order run (docs/second_order.md): Newton
    updates at learning rate 1e-4 every step, no exploration; its first-order runs are
    ``--optimizer gradient --learning-rate 1e-8``. The ADMM stops at a tolerance
    instead of after its 100 iterations.

    Attributes
    ----------
    steps : int
        Training steps (one episode); the follow-up's runs have 2,000.
    """

    flag_group: ClassVar[str] = "the follow-up's example"

    steps: int = 2000
    checkpoint_every: int = 500  # steps
    rho: float = 1.0
    admm_tol: float = 3e-8
    admm_dual_tol: float = 1e-6
    admm_memory: int = 10
    horizon: int = 10
    discount: float = 0.9
    optimizer: str = "newton"
    newton_tau: float = 1e-3
    learning_rate: float = 1e-4
    learning_rate_decay: float = 1.0
    update_every: int = 1
    replay_maxlen: int = 100
    replay_sample_size: int = 15
    replay_include_latest: int = 10
    epsilon: float = 0.0
    epsilon_decay: float = 1.0
    exploration_strength: float = 1.0
