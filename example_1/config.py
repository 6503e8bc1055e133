"""Every setting of an example-1 run in one place (printed into each result file)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from marl_dmpc.learning import QLearningSettings
from marl_dmpc.solvers import DEFAULT_SOLVER


@dataclass(frozen=True)
class Example1Config:
    """Settings of an example-1 training run; defaults are the release's
    hyperparameters (SPEC.md) except the ADMM stopping rule and the solver, and a short
    run length."""

    steps: int = 200
    seed: int = 1
    centralized: bool = False
    solver: str = DEFAULT_SOLVER
    # distributed MPC
    rho: float = 0.5
    admm_iters: int = 1000
    # primal and dual residual tolerances: V, Q within 1e-6 and duals within 1e-5 of the
    # centralized MPC (the dual one binds less: at 3e-8 or 1e-6 the errors are the same)
    admm_tol: float = 3e-8
    admm_dual_tol: float = 1e-6
    consensus_iters: int = 100
    check_centralized: bool = False
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

    @property
    def mode(self) -> str:
        return "centralized" if self.centralized else "distributed"

    def q_learning(self) -> QLearningSettings:
        """The Q-learning hyperparameters: every :class:`QLearningSettings` field that
        this config has (the others keep their defaults)."""
        own = {f.name for f in fields(self)}
        return QLearningSettings(
            **{f.name: getattr(self, f.name) for f in fields(QLearningSettings) if f.name in own}
        )
