"""Multi-agent reinforcement learning with distributed MPC as the function approximator.

A reproduction of Mallick, Airaldi, Dabiri and De Schutter, "Multi-agent reinforcement
learning via distributed MPC as a function approximator", Automatica 2024.

The package holds everything the examples share; ``docs/architecture.md`` draws its
layers. From the bottom up: :mod:`~marl_dmpc.config` (the settings of a run),
:mod:`~marl_dmpc.network` (the graph), :mod:`~marl_dmpc.mpc` (learnable local and
centralized MPCs from one definition), :mod:`~marl_dmpc.local_mpc` (an agent's ADMM
problem), :mod:`~marl_dmpc.qp` (active-set re-solves), :mod:`~marl_dmpc.admm` (consensus
ADMM), :mod:`~marl_dmpc.consensus` (average consensus), :mod:`~marl_dmpc.exploration`,
:mod:`~marl_dmpc.learning` (distributed and centralized Q-learning),
:mod:`~marl_dmpc.envs`, :mod:`~marl_dmpc.results`, :mod:`~marl_dmpc.runs`,
:mod:`~marl_dmpc.evaluation`, :mod:`~marl_dmpc.cli` and :mod:`~marl_dmpc.driver`.
"""

__version__ = "0.1.0"
