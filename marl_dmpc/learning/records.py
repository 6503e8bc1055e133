"""What a learner records while training (:class:`TrainingLog`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass
class TrainingLog:
    """What a learner records while training.

    Attributes
    ----------
    td_errors : list of float
        One TD error per training step.
    parameters : dict of str to list of ndarray
        Every learnable parameter's value initially and after every update.
    admm_iterations : list of int
        ADMM iterations of every distributed solve (empty when centralized).
    check : dict of str to list of float
        With the centralized check, per solve: ``"v_error"``, ``"q_error"`` (absolute
        errors of the ADMM values), ``"dual_error"`` (max abs error of the dynamics
        multipliers), ``"dual_error_norms"`` and ``"inequality_dual_error_norms"`` (sums
        over the agents of the 2-norms of the errors of the dynamics and the inequality
        multipliers) and ``"gradient_error"`` (max abs error of the Lagrangian's gradient).
    fallbacks : int
        Solves that failed with the MPCs' solver and were tried again with the fallback
        solver (:data:`~marl_dmpc.solvers.FALLBACK_SOLVERS`).
    """

    td_errors: list[float] = field(default_factory=list)
    parameters: dict[str, list[npt.NDArray[np.floating]]] = field(default_factory=dict)
    admm_iterations: list[int] = field(default_factory=list)
    check: dict[str, list[float]] = field(default_factory=dict)
    fallbacks: int = 0

    def record_parameters(self, values: Mapping[str, npt.ArrayLike]) -> None:
        for name, value in values.items():
            self.parameters.setdefault(name, []).append(np.array(value, dtype=float))

    def parameter_history(self) -> dict[str, npt.NDArray[np.floating]]:
        """Every parameter's history as one array ``(updates + 1, *shape)``."""
        return {name: np.stack(values) for name, values in self.parameters.items()}

    def state(self) -> dict[str, Any]:
        """The records as plain data (see :meth:`load_state`)."""
        return {
            "td_errors": np.asarray(self.td_errors, dtype=float),
            "parameters": self.parameter_history(),
            "admm_iterations": np.asarray(self.admm_iterations, dtype=np.int64),
            "check": {name: np.asarray(v, dtype=float) for name, v in self.check.items()},
            "fallbacks": self.fallbacks,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace the records by those of :meth:`state`."""
        self.td_errors = [float(v) for v in state["td_errors"]]
        self.parameters = {name: list(np.asarray(h)) for name, h in state["parameters"].items()}
        self.admm_iterations = [int(v) for v in state["admm_iterations"]]
        self.check = {name: [float(v) for v in values] for name, values in state["check"].items()}
        self.fallbacks = int(state.get("fallbacks", 0))
