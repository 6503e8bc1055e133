import numpy as np
import pytest

from marl_dmpc.consensus import AverageConsensus
from marl_dmpc.network import Network, NetworkError


def test_chain_neighbours_and_copies():
    net = Network.chain(4)
    assert net.n_agents == 4
    assert net.neighbours(0) == (1,)
    assert net.neighbours(1) == (0, 2)
    assert net.copies(2) == (2, 1, 3)
    assert net.holders(3) == (3, 2)
    np.testing.assert_array_equal(net.degrees, [1, 2, 2, 1])


@pytest.mark.parametrize(
    "adjacency, message",
    [
        (np.zeros((2, 3)), "square"),
        (np.array([[0, 2], [2, 0]]), "0 or 1"),
        (np.array([[1, 1], [1, 0]]), "diagonal"),
        (np.array([[0, 1], [0, 0]]), "symmetric"),
        (np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]), "connected"),
    ],
)
def test_invalid_adjacency_is_refused(adjacency, message):
    with pytest.raises(NetworkError, match=message):
        Network(adjacency)


def test_consensus_matrix_power_equals_iterating():
    net = Network.chain(4)
    cons = AverageConsensus(net, iterations=37)
    assert cons.step_size == pytest.approx(0.25)  # 0.5 / max degree
    x = np.random.default_rng(0).normal(size=4)
    y = x.copy()
    for _ in range(37):
        y = cons.matrix @ y
    np.testing.assert_allclose(cons.average(x), y, atol=1e-14)


def test_consensus_sum_converges_to_the_sum():
    net = Network.chain(3)
    x = np.array([1.0, -2.0, 4.5])
    np.testing.assert_allclose(AverageConsensus(net, 100).sum(x), x.sum(), atol=1e-9)
    # with few iterations the agents do not agree yet
    assert np.ptp(AverageConsensus(net, 2).sum(x)) > 1e-2
