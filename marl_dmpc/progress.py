"""The progress bar of a training run, with the running cost and TD error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tqdm import tqdm


class TrainingProgress:
    """A progress bar over training steps showing the running mean cost and TD error.

    Parameters
    ----------
    total : int
        Number of steps.
    cost_of_last_step : callable
        Returns the cost of the step just taken.
    enabled : bool
        ``False`` shows nothing.
    initial : int
        Steps already done (a resumed run).
    """

    def __init__(
        self,
        total: int,
        cost_of_last_step: Callable[[], float],
        enabled: bool = True,
        initial: int = 0,
    ) -> None:
        self._bar = tqdm(
            total=total,
            initial=initial,
            unit="step",
            disable=not enabled,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        self._cost = cost_of_last_step
        self._cost_sum = 0.0
        self._abs_td_sum = 0.0
        self._n = 0

    def __call__(self, td_error: float) -> None:
        self._n += 1
        self._cost_sum += self._cost()
        self._abs_td_sum += abs(td_error)
        self._bar.set_postfix(
            cost=f"{self._cost_sum / self._n:.3g}",
            td=f"{td_error:+.3g}",
            mean_abs_td=f"{self._abs_td_sum / self._n:.3g}",
            refresh=False,
        )
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
