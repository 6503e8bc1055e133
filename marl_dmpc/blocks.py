"""The building blocks of a local MPC definition, and what they let the package assume.

A :class:`~marl_dmpc.mpc.LocalMpcDefinition` writes its constraints with the helpers
here, so that every MPC (local or centralized, any example) names and shapes them the
same way:

* :func:`add_dynamics` -- ``x[:, 1:] == x_next``, named :func:`dynamics_name`;
* :func:`add_soft_bounds` -- ``lower - s <= x[rows, 1:] <= upper + s`` with a slack
  ``s >= 0`` shared by the two sides, named by :func:`soft_bound_names`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import casadi as cs
from csnlp.wrappers import Mpc


def parameter_name(base: str, agent: int, neighbour: int | None = None) -> str:
    """The global name of a parameter of ``agent``.

    ``parameter_name("A", 2)`` is ``"A_2"``; a coupling parameter of agent ``i`` to
    neighbour ``j`` is ``parameter_name("A_c", i, j) == "A_c_i_j"``.
    """
    return f"{base}_{agent}" if neighbour is None else f"{base}_{agent}_{neighbour}"


def state_name(agent: int) -> str:
    """Name of agent ``agent``'s state trajectory in every MPC."""
    return f"x{agent}"


def action_name(agent: int) -> str:
    """Name of agent ``agent``'s input trajectory in every MPC."""
    return f"u{agent}"


def dynamics_name(agent: int) -> str:
    """Name of agent ``agent``'s dynamics constraint (:func:`add_dynamics`)."""
    return f"dyn_{agent}"


@dataclass(frozen=True)
class SoftBoundNames:
    """Names of the constraints and the slack of one soft bound of one agent."""

    lower: str
    upper: str
    slack: str


def soft_bound_names(label: str, agent: int) -> SoftBoundNames:
    """The names :func:`add_soft_bounds` gives soft bound ``label`` of ``agent``:
    ``{label}_lower_{i}``, ``{label}_upper_{i}`` and the slack ``{label}_slack_{i}``."""
    return SoftBoundNames(
        f"{label}_lower_{agent}", f"{label}_upper_{agent}", f"{label}_slack_{agent}"
    )


def add_dynamics(mpc: Mpc, agent: int, x: cs.SX, x_next: cs.SX) -> None:
    """Constrain ``x[:, 1:] == x_next`` (``x_next`` of shape ``(nx, N)``: the predicted
    state of every step from the previous state, input and neighbours' states)."""
    mpc.constraint(dynamics_name(agent), x[:, 1:], "==", x_next)


def add_soft_bounds(
    mpc: Mpc,
    label: str,
    agent: int,
    x: cs.SX,
    rows: Sequence[int],
    lower: cs.SX,
    upper: cs.SX,
    first: int = 1,
) -> cs.SX:
    """Soften ``lower <= x[rows, first:] <= upper`` with one slack per bounded entry
    (``first`` 1: the predicted states ``x_1..x_N``; 0: the measured one too).

    Adds the slack ``s >= 0`` of shape ``(len(rows), N + 1 - first)`` and the
    constraints ``lower - s <= x[rows, first:]`` and ``x[rows, first:] <= upper + s``
    (``lower`` and ``upper`` broadcast to that shape), and returns ``s`` for the caller
    to penalize.
    """
    names = soft_bound_names(label, agent)
    states = x[list(rows), first:]
    s, _, _ = mpc.variable(names.slack, states.shape, lb=0)
    mpc.constraint(names.lower, lower - s, "<=", states)
    mpc.constraint(names.upper, states, "<=", upper + s)
    return s
