"""Global average consensus: how agents agree on network-wide scalars.

Each agent knows a local value (its share of V, Q or the stage cost); the network needs
their sum. Average consensus iterates ``x <- P x`` with ``P = I - eps * Lap`` and
``eps = 0.5 / max degree``; after ``K`` iterations every entry approximates the average,
so ``n * x_i`` approximates the sum. The ``K`` iterations are applied as one
precomputed matrix ``P^K``, which is the same linear map.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .network import Network


class AverageConsensus:
    """Runs ``iterations`` steps of average consensus on a network.

    Parameters
    ----------
    network : Network
        The communication graph.
    iterations : int, optional
        Number of consensus iterations ``K``; by default 100.
    """

    def __init__(self, network: Network, iterations: int = 100) -> None:
        if iterations < 0:
            raise ValueError(f"consensus iterations must be >= 0; got {iterations}")
        self.network = network
        self.iterations = iterations
        n = network.n_agents
        max_degree = max(int(network.degrees.max()), 1)
        self.step_size = 0.5 / max_degree
        self.matrix = np.eye(n) - self.step_size * network.laplacian
        self._power = np.linalg.matrix_power(self.matrix, iterations)

    @property
    def error_bound(self) -> float:
        """How far the ``K`` iterations leave the agents from agreement: the spectral norm
        of ``P^K - 1 1^T / n``, so that ``||x_K - mean 1|| <= bound ||x_0 - mean 1||``
        (1 with ``K = 0``; it falls as the iterations mix the graph)."""
        n = self.network.n_agents
        return float(np.linalg.norm(self._power - np.full((n, n), 1.0 / n), 2))

    def average(self, values: npt.ArrayLike) -> npt.NDArray[np.floating]:
        """Every agent's estimate of the average of ``values`` (one entry, or one row,
        per agent)."""
        return self._power @ np.asarray(values, dtype=float)

    def sum(self, values: npt.ArrayLike) -> npt.NDArray[np.floating]:
        """Every agent's estimate of the sum of ``values``."""
        return self.network.n_agents * self.average(values)
