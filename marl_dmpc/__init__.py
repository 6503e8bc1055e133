"""Multi-agent reinforcement learning with distributed MPC as the function approximator.

A reproduction of Mallick, Airaldi, Dabiri and De Schutter, "Multi-agent reinforcement
learning via distributed MPC as a function approximator", Automatica 2024.

Modules: :mod:`~marl_dmpc.network` (the graph), :mod:`~marl_dmpc.mpc` (learnable local
and centralized MPCs from one definition), :mod:`~marl_dmpc.admm` (consensus ADMM),
:mod:`~marl_dmpc.consensus` (average consensus), :mod:`~marl_dmpc.exploration`,
:mod:`~marl_dmpc.learning` (distributed and centralized Q-learning),
:mod:`~marl_dmpc.envs`, :mod:`~marl_dmpc.results` and :mod:`~marl_dmpc.cli`.
"""

__version__ = "0.1.0"
