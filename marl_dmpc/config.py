"""The settings every training run has, whatever the example.

Each example defines one frozen dataclass deriving from :class:`TrainingConfig` that
adds its run length (steps or episodes) and gives every hyperparameter its default
(SPEC.md). The config is printed into every result file (``dataclasses.asdict``), the
training scripts' flags set its fields by name (:mod:`marl_dmpc.cli`), and
:func:`marl_dmpc.runs.make_learner` builds the learner it describes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .learning import QLearningSettings
from .solvers import DEFAULT_SOLVER


@dataclass(frozen=True, kw_only=True)
class TrainingConfig(QLearningSettings):
    """Settings of a training run: the Q-learning settings (inherited from
    :class:`~marl_dmpc.learning.QLearningSettings`) and these.

    Attributes
    ----------
    seed : int
        Seed of the run (env noise, exploration, replay).
    centralized : bool
        Learn with the centralized MPC instead of the distributed one.
    solver : str
        Solver of the MPCs (:data:`marl_dmpc.solvers.SOLVER_CHOICES`).
    rho : float
        ADMM penalty.
    admm_iters : int
        ADMM iteration cap.
    admm_tol, admm_dual_tol : float
        ADMM tolerances on the primal and the dual residual; ``admm_tol = 0`` runs
        exactly ``admm_iters`` iterations (the release's plain ADMM).
    admm_memory : int
        Memory of the Anderson acceleration of ADMM (0: plain ADMM; used only with a
        tolerance).
    consensus_iters : int
        Iterations of average consensus for the global scalars.
    check_centralized : bool
        Also solve the centralized MPC at every distributed solve and log the gaps.
    horizon : int
        Prediction horizon of the MPCs.
    discount : float
        Discount factor of the MPC's stage costs and of Q-learning.
    checkpoint_every : int
        Save the run's state every this many steps or episodes (the example's unit; 0:
        only on Ctrl-C). The centralized learner restarts its solvers at each checkpoint
        (:meth:`~marl_dmpc.learning.CentralizedQLearning._restart_solvers`), so for it
        this setting changes the result in the last bits; the distributed learner's
        result does not depend on it.
    """

    seed: int = 1
    centralized: bool = False
    solver: str = DEFAULT_SOLVER
    rho: float
    admm_iters: int = 1000
    admm_tol: float
    admm_dual_tol: float
    admm_memory: int
    consensus_iters: int = 100
    check_centralized: bool = False
    horizon: int
    discount: float
    checkpoint_every: int

    @property
    def mode(self) -> str:
        return "centralized" if self.centralized else "distributed"

    def q_learning(self) -> QLearningSettings:
        """The Q-learning settings alone."""
        return QLearningSettings(
            **{f.name: getattr(self, f.name) for f in fields(QLearningSettings)}
        )
