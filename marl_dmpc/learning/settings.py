"""mpcrl's parts of a learner, built from :class:`~marl_dmpc.config.QLearningSettings`.

Both learners get their optimizer, experience replay, update strategy and exploration
from these functions, so that with the same settings and seed they draw the same
numbers.
"""

from __future__ import annotations

from mpcrl import ExperienceReplay, UpdateStrategy
from mpcrl.optim import GradientDescent

from ..config import QLearningSettings
from ..exploration import PerAgentExploration
from ..mpcrl_compat import ExponentialScheduler


def make_optimizer(settings: QLearningSettings) -> GradientDescent:
    """Plain gradient descent with the scheduled learning rate."""
    return GradientDescent(
        ExponentialScheduler(settings.learning_rate, settings.learning_rate_decay)
    )


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
