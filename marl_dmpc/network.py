"""The communication graph of a network of agents.

Agent ``i`` is coupled to its neighbours ``N_i``: its dynamics depend on their states,
and in the distributed MPC it keeps a local copy of each neighbour's predicted state
trajectory. This module holds the graph and everything derived from it: neighbour
lists, which agents hold a copy of whose trajectory, and the Laplacian used by
average consensus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


class NetworkError(ValueError):
    """Raised for an adjacency matrix that does not describe a valid network."""


@dataclass(frozen=True)
class Network:
    """An undirected, connected graph of ``n`` agents without self-loops.

    Parameters
    ----------
    adjacency : array_like
        Square, symmetric 0/1 matrix with a zero diagonal; entry ``(i, j)`` is 1 when
        agents ``i`` and ``j`` are neighbours. The graph must be connected.

    Raises
    ------
    NetworkError
        If the matrix is not square, not symmetric, has entries other than 0 and 1, has
        self-loops or describes a disconnected graph.
    """

    adjacency: npt.NDArray[np.int_]
    _neighbours: tuple[tuple[int, ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        adj = np.asarray(self.adjacency)
        if adj.ndim != 2 or adj.shape[0] != adj.shape[1] or adj.shape[0] == 0:
            raise NetworkError(
                f"adjacency must be a non-empty square matrix; got shape {adj.shape}"
            )
        if not np.all((adj == 0) | (adj == 1)):
            raise NetworkError("adjacency entries must be 0 or 1")
        if np.any(np.diag(adj) != 0):
            raise NetworkError("adjacency must have a zero diagonal (no self-loops)")
        if not np.array_equal(adj, adj.T):
            raise NetworkError("adjacency must be symmetric (the graph is undirected)")
        adj = adj.astype(int)
        adj.setflags(write=False)
        object.__setattr__(self, "adjacency", adj)
        neighbours = tuple(tuple(int(j) for j in np.flatnonzero(row)) for row in adj)
        object.__setattr__(self, "_neighbours", neighbours)
        if not self._is_connected():
            raise NetworkError("the graph described by adjacency is not connected")

    @classmethod
    def chain(cls, n: int) -> Network:
        """A chain ``0 - 1 - ... - (n-1)`` of ``n`` agents."""
        if n < 1:
            raise NetworkError(f"a chain needs at least one agent; got {n}")
        adj = np.zeros((n, n), dtype=int)
        idx = np.arange(n - 1)
        adj[idx, idx + 1] = adj[idx + 1, idx] = 1
        return cls(adj)

    @property
    def n_agents(self) -> int:
        """Number of agents."""
        return self.adjacency.shape[0]

    def neighbours(self, i: int) -> tuple[int, ...]:
        """The neighbours of agent ``i``, in increasing order."""
        return self._neighbours[i]

    def copies(self, i: int) -> tuple[int, ...]:
        """Whose trajectories agent ``i`` holds, in the order of its augmented state:
        its own first, then each neighbour's copy."""
        return (i, *self._neighbours[i])

    def holders(self, j: int) -> tuple[int, ...]:
        """The agents that hold a trajectory of agent ``j``: ``j`` itself and the
        neighbours keeping a copy of it (the graph is undirected)."""
        return (j, *self._neighbours[j])

    @property
    def degrees(self) -> npt.NDArray[np.int_]:
        """Number of neighbours of every agent."""
        return self.adjacency.sum(axis=1)

    @property
    def laplacian(self) -> npt.NDArray[np.floating]:
        """The graph Laplacian ``D - A``."""
        return np.diag(self.degrees).astype(float) - self.adjacency

    def _is_connected(self) -> bool:
        seen = {0}
        frontier = [0]
        while frontier:
            i = frontier.pop()
            for j in self._neighbours[i]:
                if j not in seen:
                    seen.add(j)
                    frontier.append(j)
        return len(seen) == self.n_agents
