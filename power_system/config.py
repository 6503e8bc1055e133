"""Every setting of a power-system run in one place (printed into each result file)."""

from __future__ import annotations

from dataclasses import dataclass

from marl_dmpc.config import TrainingConfig

from . import model


@dataclass(frozen=True, kw_only=True)
class PowerSystemConfig(TrainingConfig):
    """Settings of a power-system training run (``episodes`` episodes of
    ``episode_steps`` steps); defaults are the release's hyperparameters (SPEC.md)
    except the ADMM stopping rule and the solver, and a short run length
    (``episodes=100`` is the paper's run)."""

    episodes: int = 5
    episode_steps: int = model.EPISODE_STEPS
    # distributed MPC
    rho: float = 50.0
    admm_tol: float = 1e-8
    admm_dual_tol: float = 1e-8
    # MPC
    horizon: int = 5
    discount: float = 0.9
    # Q-learning: an update at the end of every episode
    learning_rate: float = 7e-7
    learning_rate_decay: float = 0.98
    update_every: int = 1
    update_hook: str = "on_episode_end"
    replay_maxlen: int = 3 * model.EPISODE_STEPS
    replay_sample_size: int = 3 * model.EPISODE_STEPS // 2
    replay_include_latest: int = model.EPISODE_STEPS
    epsilon: float = 0.5
    epsilon_decay: float = 0.8
    exploration_strength: float = 0.04  # 0.1 * 2 * 0.2
