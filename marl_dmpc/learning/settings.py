"""mpcrl's parts of a learner, built from :class:`~marl_dmpc.config.QLearningSettings`.

Both learners get their optimizer, experience replay, update strategy and exploration
from these functions, so that with the same settings and seed they draw the same
numbers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from mpcrl import ExperienceReplay, LearnableParametersDict, UpdateStrategy
from mpcrl.optim import GradientDescent

from ..config import QLearningSettings, StabilizationSettings
from ..exploration import PerAgentExploration
from ..mpcrl_compat import ExponentialScheduler


def make_optimizer(
    settings: QLearningSettings, safeguards: StabilizationSettings | None = None
) -> GradientDescent:
    """Gradient descent with the scheduled learning rate: plain (the paper's), or with
    the update's safeguards (:class:`SafeguardedGradientDescent`) if any is on."""
    rate = ExponentialScheduler(settings.learning_rate, settings.learning_rate_decay)
    if safeguards is None or not (safeguards.max_update or safeguards.parameter_box):
        return GradientDescent(rate)
    return SafeguardedGradientDescent(rate, safeguards.max_update, safeguards.parameter_box)


def clip_td_error(td_error: npt.ArrayLike, limit: float) -> npt.ArrayLike:
    """The TD error as it scales a stored gradient: clipped at +-``limit`` (the
    gradient of a Huber loss), unchanged if ``limit`` is 0."""
    return np.clip(td_error, -limit, limit) if limit else td_error


class SafeguardedGradientDescent(GradientDescent):
    """Gradient descent whose step moves no entry more than ``max_update`` and whose
    result stays within ``+-box`` of the parameters' initial values.

    Both are projections of the plain step (clipping entry by entry), which is what
    mpcrl's constrained update (a QP with an identity Hessian and box bounds) computes,
    without a QP solver. 0 turns either off.
    """

    def __init__(self, learning_rate: ExponentialScheduler, max_update: float, box: float) -> None:
        super().__init__(learning_rate)
        self.max_update = max_update
        self.box = box

    def set_learnable_parameters(self, pars: LearnableParametersDict) -> None:
        super().set_learnable_parameters(pars)
        self._initial = np.array(pars.value, dtype=float)

    def _first_order_update(
        self, gradient: npt.NDArray[np.floating]
    ) -> tuple[npt.NDArray[np.floating], str | None]:
        theta = np.asarray(self.learnable_parameters.value, dtype=float)
        theta_new, status = super()._first_order_update(gradient)
        step = np.asarray(theta_new, dtype=float) - theta
        if self.max_update:
            step = np.clip(step, -self.max_update, self.max_update)
        theta_new = theta + step
        if self.box:
            theta_new = np.clip(theta_new, self._initial - self.box, self._initial + self.box)
        return theta_new, status


def make_experience(settings: QLearningSettings) -> ExperienceReplay:
    """The experience replay of the settings."""
    return ExperienceReplay(
        maxlen=settings.replay_maxlen,
        sample_size=settings.replay_sample_size,
        include_latest=settings.replay_include_latest,
    )


def make_update_strategy(settings: QLearningSettings) -> CountedUpdateStrategy:
    """The update strategy of the settings."""
    return CountedUpdateStrategy(settings.update_every, settings.update_hook)


def make_exploration(
    settings: QLearningSettings, n_agents: int, action_size: int
) -> PerAgentExploration:
    """One epsilon-greedy exploration stream per agent."""
    return PerAgentExploration(
        n_agents,
        action_size,
        settings.epsilon,
        settings.epsilon_decay,
        settings.exploration_strength,
    )


class CountedUpdateStrategy(UpdateStrategy):
    """mpcrl's update strategy, counting its checks so that a resumed run can put it
    back where it was (:meth:`advance`)."""

    def __init__(self, frequency: int, hook: str = "on_timestep_end") -> None:
        super().__init__(frequency, hook)  # type: ignore[arg-type]
        self.checks = 0

    def can_update(self) -> bool:
        self.checks += 1
        return super().can_update()

    def advance(self, checks: int) -> None:
        """Move a new strategy to where it is after ``checks`` checks."""
        if self.checks:
            raise RuntimeError("only a new update strategy can be advanced")
        for _ in range(checks):
            self.can_update()
