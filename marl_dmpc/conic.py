"""The QP solvers behind :class:`~marl_dmpc.qp.ActiveSetQp` and the local MPCs: a
CasADi solver called with fixed bounds (:class:`DirectSolve`), a new qpOASES instance per
QP so that no answer depends on earlier calls (:class:`FreshConic`), and their common
answer (:class:`QpSolution`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import casadi as cs
import numpy as np
import numpy.typing as npt


@dataclass
class QpSolution:
    """Primal solution ``x``, constraint multipliers ``lam_g`` (CasADi's convention:
    positive at an active upper bound), the solver's verdict, and the bound multipliers
    ``lam_x`` when the solver returned them."""

    x: npt.NDArray[np.floating]
    lam_g: npt.NDArray[np.floating]
    success: bool
    status: str
    lam_x: npt.NDArray[np.floating] | None = None


def _solution(x: cs.DM, lam_g: cs.DM, lam_x: cs.DM, stats: dict[str, Any]) -> QpSolution:
    """A CasADi solver's outputs and stats as a :class:`QpSolution`."""
    return QpSolution(
        np.asarray(x).reshape(-1),
        np.asarray(lam_g).reshape(-1),
        bool(stats["success"]),
        str(stats["return_status"]),
        np.asarray(lam_x).reshape(-1),
    )


class _FixedBounds:
    """The constant bounds of a problem's constraints and variables, as flat arrays."""

    def __init__(
        self, lbg: npt.ArrayLike, ubg: npt.ArrayLike, lbx: npt.ArrayLike, ubx: npt.ArrayLike
    ) -> None:
        self.lbg = np.asarray(lbg, dtype=float).reshape(-1)
        self.ubg = np.asarray(ubg, dtype=float).reshape(-1)
        self.lbx = np.asarray(lbx, dtype=float).reshape(-1)
        self.ubx = np.asarray(ubx, dtype=float).reshape(-1)


class DirectSolve(_FixedBounds):
    """Calls a CasADi solver (``qpsol`` or ``nlpsol``) with fixed bounds, every time."""

    def __init__(
        self,
        solver: cs.Function,
        lbg: npt.ArrayLike,
        ubg: npt.ArrayLike,
        lbx: npt.ArrayLike,
        ubx: npt.ArrayLike,
    ) -> None:
        super().__init__(lbg, ubg, lbx, ubx)
        self.solver = solver

    def solve(self, p: npt.NDArray[np.floating]) -> QpSolution:
        out = self.solver(p=p, lbx=self.lbx, ubx=self.ubx, lbg=self.lbg, ubg=self.ubg)
        return _solution(out["x"], out["lam_g"], out["lam_x"], self.solver.stats())


class FreshConic(_FixedBounds):
    """A QP solver whose answer depends on the QP's data only: every call solves
    ``min 1/2 w'Hw + g'w`` s.t. ``lba <= A w <= uba``, ``lbx <= w <= ubx`` with a new
    CasADi ``conic`` instance.

    One solver instance is not history-free: qpOASES, for one, hot-starts every call
    from the end of the previous one, so the same QP can get answers that differ in the
    last bits, or (degenerate) another optimal active set, depending on what the
    instance solved before. A run resumed from a checkpoint cannot restore that hidden
    state, so it would drift from the uninterrupted run. Creating a ``conic`` takes
    about 0.15 ms, and :class:`ActiveSetQp` calls its solver for under 1 % of its
    solves.

    Parameters
    ----------
    plugin : str
        The CasADi conic plugin (e.g., ``"qpoases"``).
    options : dict
        Its options.
    lbg, ubg, lbx, ubx : array_like
        The (constant) bounds of the problem's constraints and variables.
    fallback : tuple of (str, dict), optional
        A second plugin and its options, tried when ``plugin`` fails; :attr:`fallbacks`
        counts the times it was.
    """

    def __init__(
        self,
        plugin: str,
        options: dict[str, Any],
        lbg: npt.ArrayLike,
        ubg: npt.ArrayLike,
        lbx: npt.ArrayLike,
        ubx: npt.ArrayLike,
        fallback: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(lbg, ubg, lbx, ubx)
        self.plugin = plugin
        self.options = dict(options)
        self.fallback = fallback
        self.fallbacks = 0

    def solve(
        self,
        H: npt.NDArray[np.floating],
        A: npt.NDArray[np.floating],
        g: npt.NDArray[np.floating],
        lba: npt.NDArray[np.floating],
        uba: npt.NDArray[np.floating],
    ) -> QpSolution:
        """The QP's optimum, from a solver instance that has solved nothing before (and,
        if that fails, from the fallback solver)."""
        solution = self._solve(self.plugin, self.options, H, A, g, lba, uba)
        if solution.success or self.fallback is None:
            return solution
        self.fallbacks += 1
        second = self._solve(*self.fallback, H, A, g, lba, uba)
        if not second.success:
            second.status = f"{solution.status}; fallback {self.fallback[0]}: {second.status}"
        return second

    def _solve(
        self,
        plugin: str,
        options: dict[str, Any],
        H: npt.NDArray[np.floating],
        A: npt.NDArray[np.floating],
        g: npt.NDArray[np.floating],
        lba: npt.NDArray[np.floating],
        uba: npt.NDArray[np.floating],
    ) -> QpSolution:
        h, a = cs.DM(H), cs.DM(A)
        solver = cs.conic("fresh_qp", plugin, {"h": h.sparsity(), "a": a.sparsity()}, options)
        out = solver(h=h, a=a, g=g, lba=lba, uba=uba, lbx=self.lbx, ubx=self.ubx)
        return _solution(out["x"], out["lam_a"], out["lam_x"], solver.stats())
