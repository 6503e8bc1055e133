"""Telling that a run's learning has diverged (:class:`DivergenceMonitor`).

Learning with the paper's hyperparameters diverges on some seeds (docs/robustness.md),
in one of two ways: a *spike*, where a few outlying TD errors drive model parameters to
1e3-1e7 within ten updates, and a *drift*, where the parameters move steadily, the
inputs saturate and the plant's states leave the region that bounded inputs can hold.
Either way the MPCs then become degenerate: every ADMM solve runs to its cap (seconds
each) until a QP solver gives up. The monitor watches, after every step, the signs of
both (parameters far beyond their initial scale, non-finite or huge TD errors, states
far outside their bounds for several steps, runs of solves at the ADMM cap) and raises
:class:`LearningDiverged` at the first, with one line naming the step, the update, and
the parameter (and its agent) that moved most, before the next solve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from ..config import DivergenceSettings


class LearningDiverged(RuntimeError):
    """The run's learning has diverged; the message (one line) says how."""


def _scale(initial: npt.NDArray[np.floating]) -> float:
    return max(1.0, float(np.max(np.abs(initial), initial=0.0)))


def _entry(name: str, shape: tuple[int, ...], flat: int) -> str:
    if not shape or int(np.prod(shape)) == 1:
        return name
    index = np.unravel_index(flat, shape)
    return f"{name}[{', '.join(str(int(i)) for i in index)}]"


class DivergenceMonitor:
    """Checks a training run for divergence after every step.

    Parameters
    ----------
    settings : DivergenceSettings
        The thresholds (0 turns a check off).
    initial : dict of str to array
        Every learnable parameter's initial value, by global name.
    agents : dict of str to int
        The agent that owns each learnable parameter.
    state_bounds : tuple of arrays, optional
        Lower and upper bounds of the plant's state (infinite where unbounded).
    admm_cap : int, optional
        The ADMM iteration cap of a distributed learner (``None``: centralized).
    """

    def __init__(
        self,
        settings: DivergenceSettings,
        initial: Mapping[str, npt.ArrayLike],
        agents: Mapping[str, int],
        state_bounds: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
        admm_cap: int | None = None,
    ) -> None:
        self.settings = settings
        self.initial = {name: np.asarray(v, dtype=float) for name, v in initial.items()}
        self.agents = dict(agents)
        self._limits = {
            name: settings.diverge_parameter_factor * _scale(v) for name, v in self.initial.items()
        }
        self._far: tuple[npt.NDArray, npt.NDArray] | None = None
        if state_bounds is not None and settings.diverge_state_factor > 0:
            lb, ub = (np.asarray(b, dtype=float).reshape(-1) for b in state_bounds)
            width = np.where(
                np.isfinite(lb) & np.isfinite(ub),
                ub - lb,
                np.maximum(1.0, np.where(np.isfinite(lb), np.abs(lb), np.abs(ub))),
            )
            margin = settings.diverge_state_factor * np.where(np.isfinite(width), width, 0.0)
            self._far = (lb - margin, ub + margin)
        self.admm_cap = admm_cap
        self._steps_far = 0
        self._checked_updates = 0

    # ------------------------------------------------------------------ checks
    def check(
        self,
        step: int,
        state: npt.ArrayLike | None,
        td_error: float,
        parameters: Mapping[str, Sequence[npt.NDArray[np.floating]]],
        admm_iterations: Sequence[int] = (),
    ) -> None:
        """Raise :class:`LearningDiverged` if step ``step`` shows divergence.

        Parameters
        ----------
        step : int
            Steps done (this one included).
        state : array, optional
            The plant's state after the step (``None`` at an episode's end).
        td_error : float
            The step's TD error.
        parameters : dict of str to list of arrays
            Every parameter's history (initial value, then one per update).
        admm_iterations : list of int
            ADMM iterations of every distributed solve so far.
        """
        updates = len(next(iter(parameters.values()), [None])) - 1
        where = f"at step {step} (update {updates})"
        s = self.settings
        for update in range(self._checked_updates + 1, updates + 1):
            self._check_parameters(update, step, {n: h[update] for n, h in parameters.items()})
        self._checked_updates = updates
        current = {n: h[-1] for n, h in parameters.items()}
        if not np.isfinite(td_error):
            self._diverged(f"{where}: the TD error is {td_error}", current)
        if s.diverge_td_error and abs(td_error) > s.diverge_td_error:
            self._diverged(
                f"{where}: |TD error| {abs(td_error):.3g} > {s.diverge_td_error:g}", current
            )
        if self._far is not None and state is not None:
            x = np.asarray(state, dtype=float).reshape(-1)
            far = (x < self._far[0]) | (x > self._far[1]) | ~np.isfinite(x)
            self._steps_far = self._steps_far + 1 if far.any() else 0
            if self._steps_far >= s.diverge_state_steps:
                k = int(np.flatnonzero(far)[0])
                self._diverged(
                    f"{where}: state {k} far outside its bounds for {self._steps_far} steps "
                    f"(now {x[k]:.3g})",
                    current,
                )
        n = s.diverge_admm_cap_solves
        if self.admm_cap is not None and n and len(admm_iterations) >= n:
            if all(it >= self.admm_cap for it in admm_iterations[-n:]):
                self._diverged(f"{where}: {n} ADMM solves in a row reached the cap", current)

    def _check_parameters(
        self, update: int, step: int, values: Mapping[str, npt.NDArray[np.floating]]
    ) -> None:
        factor = self.settings.diverge_parameter_factor
        for name, value in values.items():
            v = np.asarray(value, dtype=float)
            bad = ~np.isfinite(v)
            if factor:
                bad |= np.abs(v) > self._limits[name]
            if bad.any():
                k = int(np.flatnonzero(bad.reshape(-1))[0])
                entry = _entry(name, v.shape, k)
                what = (
                    f"{v.reshape(-1)[k]:.3g}, beyond {factor:g} x its initial scale "
                    f"{_scale(self.initial[name]):g}"
                    if np.isfinite(v.reshape(-1)[k])
                    else "not finite"
                )
                raise LearningDiverged(
                    f"learning diverged at update {update} (step {step}): agent "
                    f"{self.agents.get(name, '?')}'s parameter {entry} is {what}"
                )

    def most_moved(self, values: Mapping[str, npt.NDArray[np.floating]]) -> str:
        """The parameter entry that moved most from its initial value, relative to its
        initial scale, and its agent (e.g. ``"agent 1's b_1[0] (+1.24)"``)."""
        best, text = -1.0, "no parameter"
        for name, value in values.items():
            change = np.asarray(value, dtype=float) - self.initial[name]
            if not change.size:
                continue
            relative = np.abs(np.nan_to_num(change, nan=np.inf)).reshape(-1) / _scale(
                self.initial[name]
            )
            k = int(np.argmax(relative))
            if relative[k] > best:
                best = relative[k]
                text = (
                    f"agent {self.agents.get(name, '?')}'s "
                    f"{_entry(name, change.shape, k)} ({change.reshape(-1)[k]:+.3g})"
                )
        return text

    def _diverged(self, what: str, values: Mapping[str, npt.NDArray[np.floating]]) -> None:
        raise LearningDiverged(
            f"learning diverged {what}; the parameter that moved most: {self.most_moved(values)}"
        )
