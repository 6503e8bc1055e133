"""The settings of a training run, as plain frozen dataclasses.

This module is the bottom layer of the package: it imports nothing from the rest of it
but the solver names. :class:`AdmmSettings` holds the distributed MPC's ADMM settings
(given to :class:`~marl_dmpc.admm.AdmmCoordinator`), :class:`QLearningSettings` the
learners' hyperparameters (turned into mpcrl's parts by
:mod:`marl_dmpc.learning.settings`), and :class:`TrainingConfig` both of them plus what
every run has. Each example derives one config from :class:`TrainingConfig` that adds its
run length and gives every setting its default (``docs/reproduction.md``).

A field has one name from the command line to the code: the flag ``--admm-iters`` sets
``TrainingConfig.admm_iters``, which is ``AdmmSettings.admm_iters``. The ``Attributes``
section of each class's docstring is the field's help text on the command line
(:mod:`marl_dmpc.cli`), and :meth:`TrainingConfig.__post_init__` checks every value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from .solvers import DEFAULT_SOLVER, SOLVER_CHOICES

#: When updates are counted (mpcrl's hook names).
UPDATE_HOOKS = ("on_timestep_end", "on_episode_end")
#: The update directions (``QLearningSettings.optimizer``).
OPTIMIZERS = ("gradient", "newton")
#: The Newton step's scalings (``QLearningSettings.newton_variant``).
NEWTON_VARIANTS = ("exact", "follow_up")


class ConfigError(ValueError):
    """A setting has a value it cannot have; ``field`` names the setting, ``fields`` it
    and the settings its value conflicts with (``related``)."""

    def __init__(self, field: str, message: str, related: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.field = field
        self.fields = (field, *related)


def _check(field: str, ok: bool, expected: str, value: Any) -> None:
    if not ok:
        raise ConfigError(field, f"{field} must be {expected}; got {value!r}")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_all(settings: Any, rules: dict[str, tuple[str, Any]]) -> None:
    """Check every field named in ``rules``: ``name: (expected, predicate)``."""
    for name, (expected, predicate) in rules.items():
        value = getattr(settings, name)
        _check(name, predicate(value), expected, value)


def _positive_int(v: Any) -> bool:
    return _integer(v) and v > 0


def _nonnegative_int(v: Any) -> bool:
    return _integer(v) and v >= 0


def _nonnegative(v: Any) -> bool:
    return _finite(v) and v >= 0


def _positive(v: Any) -> bool:
    return _finite(v) and v > 0


def _unit_interval(v: Any) -> bool:
    return _finite(v) and 0 <= v <= 1


def _rate_factor(v: Any) -> bool:
    return _finite(v) and 0 < v <= 1


@dataclass(frozen=True, kw_only=True)
class AdmmSettings:
    """Settings of consensus ADMM (:class:`~marl_dmpc.admm.AdmmCoordinator`).

    Attributes
    ----------
    rho : float
        ADMM penalty (nominal: a solve that has not converged after 100 iterations
        balances it).
    admm_iters : int
        ADMM iteration cap.
    admm_tol : float
        ADMM primal-residual tolerance; 0 runs exactly admm_iters iterations of plain
        ADMM (the release: admm_iters 50, admm_tol 0).
    admm_dual_tol : float
        ADMM dual-residual tolerance.
    admm_memory : int
        Memory of the Anderson acceleration of ADMM; 0 is plain ADMM (used only with a
        tolerance).
    """

    flag_group: ClassVar[str] = "consensus ADMM (distributed runs)"

    rho: float
    admm_iters: int = 1000
    admm_tol: float = 0.0
    admm_dual_tol: float = 0.0
    admm_memory: int = 0

    def __post_init__(self) -> None:
        _check_all(
            self,
            {
                "rho": ("a finite number > 0", _positive),
                "admm_iters": ("an integer > 0", _positive_int),
                "admm_tol": ("a finite number >= 0", _nonnegative),
                "admm_dual_tol": ("a finite number >= 0", _nonnegative),
                "admm_memory": ("an integer >= 0", _nonnegative_int),
            },
        )

    @property
    def accelerated(self) -> bool:
        """Whether the iteration is Anderson-accelerated (a memory and a tolerance)."""
        return self.admm_memory > 0 and self.admm_tol > 0

    @property
    def convergence_cap(self) -> int | None:
        """The iteration cap at which a solve stops *without having converged*:
        ``admm_iters`` where a tolerance asks ADMM to converge, ``None`` with
        ``admm_tol`` 0, where ``admm_iters`` is the fixed number of iterations that every
        solve runs by design (the release's plain ADMM), not a sign of trouble."""
        return self.admm_iters if self.admm_tol > 0 else None

    def solves_at_cap(self, iterations: Iterable[int]) -> int:
        """How many solves, of ``iterations`` per solve, stopped at the cap without
        converging (none with ``admm_tol`` 0)."""
        cap = self.convergence_cap
        return 0 if cap is None else sum(int(it) >= cap for it in iterations)


@dataclass(frozen=True, kw_only=True)
class QLearningSettings:
    """Hyperparameters of the Q-learning (identical for both learners).

    Attributes
    ----------
    learning_rate : float
        Initial learning rate of gradient descent.
    learning_rate_decay : float
        Factor applied to the learning rate after every update.
    update_every : int
        Update after this many env steps (or episodes, with update_hook on_episode_end).
    update_hook : str
        When updates are counted: on_timestep_end or on_episode_end.
    replay_maxlen : int
        Capacity of the experience replay (transitions).
    replay_sample_size : int
        Transitions per update.
    replay_include_latest : int
        How many of the sampled transitions are the latest ones.
    epsilon : float
        Initial probability that an agent explores at a V(s) solve.
    epsilon_decay : float
        Factor applied to epsilon after every update.
    exploration_strength : float
        Scale of the exploration's cost perturbation (a standard normal draw times it).
    optimizer : str
        The update's direction: gradient (the paper's gradient descent) or newton (a
        regularized Newton step on the replay sample's mean squared TD error;
        docs/method.md).
    newton_tau : float
        With --optimizer newton, the regularization added to the Hessian's diagonal.
    newton_variant : str
        With --optimizer newton: exact (the Newton step of the sample's mean squared TD
        error) or follow_up (the follow-up's distributed scaling: every agent's curvature
        block and regularization divided by the sample size; docs/method.md).
    newton_definite : bool
        With --optimizer newton, make every agent's curvature block positive definite
        (mpcrl's added multiple of the identity) instead of adding only newton_tau, as
        the follow-up does (docs/method.md).
    """

    flag_group: ClassVar[str] = "Q-learning"

    learning_rate: float
    learning_rate_decay: float
    update_every: int
    update_hook: str = "on_timestep_end"
    replay_maxlen: int
    replay_sample_size: int
    replay_include_latest: int
    epsilon: float
    epsilon_decay: float
    exploration_strength: float
    optimizer: str = "gradient"
    newton_tau: float = 1e-3
    newton_variant: str = "exact"
    newton_definite: bool = False

    def __post_init__(self) -> None:
        _check_all(
            self,
            {
                "optimizer": (f"one of {', '.join(OPTIMIZERS)}", OPTIMIZERS.__contains__),
                "newton_tau": ("a finite number > 0", _positive),
                "newton_definite": ("true or false", lambda v: isinstance(v, bool)),
                "newton_variant": (
                    f"one of {', '.join(NEWTON_VARIANTS)}",
                    NEWTON_VARIANTS.__contains__,
                ),
                "learning_rate": ("a finite number >= 0", _nonnegative),
                "learning_rate_decay": ("a number in (0, 1]", _rate_factor),
                "update_every": ("an integer > 0", _positive_int),
                "update_hook": (f"one of {', '.join(UPDATE_HOOKS)}", UPDATE_HOOKS.__contains__),
                "replay_maxlen": ("an integer > 0", _positive_int),
                "replay_sample_size": ("an integer > 0", _positive_int),
                "replay_include_latest": ("an integer >= 0", _nonnegative_int),
                "epsilon": ("a number in [0, 1]", _unit_interval),
                "epsilon_decay": ("a number in (0, 1]", _rate_factor),
                "exploration_strength": ("a finite number >= 0", _nonnegative),
            },
        )
        if self.replay_include_latest > self.replay_sample_size:
            raise ConfigError(
                "replay_include_latest",
                f"replay_include_latest ({self.replay_include_latest}) must not exceed "
                f"replay_sample_size ({self.replay_sample_size})",
                related=("replay_sample_size",),
            )


@dataclass(frozen=True, kw_only=True)
class DivergenceSettings:
    """When a run's learning has diverged (:mod:`marl_dmpc.learning.divergence`): the run
    then stops at once with status ``"diverged"``. 0 turns a check off.

    Attributes
    ----------
    diverge_parameter_factor : float
        A learnable parameter has diverged when an entry's magnitude exceeds this
        multiple of its initial scale (its largest initial magnitude, at least 1).
    diverge_td_error : float
        The TD error's magnitude beyond which learning has diverged (a non-finite TD
        error or parameter always ends the run).
    diverge_state_factor : float
        A state is far outside its bounds when it is beyond them by more than this
        multiple of their width (of the bound's magnitude, at least 1, if one-sided).
    diverge_state_steps : int
        Consecutive steps with a state far outside its bounds that end the run.
    diverge_admm_cap_solves : int
        Consecutive distributed solves that reach the ADMM iteration cap that end the run.
    """

    flag_group: ClassVar[str] = "divergence detection"

    diverge_parameter_factor: float = 10.0
    diverge_td_error: float = 1e3
    diverge_state_factor: float = 10.0
    diverge_state_steps: int = 5
    diverge_admm_cap_solves: int = 3

    def __post_init__(self) -> None:
        _check_all(
            self,
            {
                "diverge_parameter_factor": ("a finite number >= 0", _nonnegative),
                "diverge_td_error": ("a finite number >= 0", _nonnegative),
                "diverge_state_factor": ("a finite number >= 0", _nonnegative),
                "diverge_state_steps": ("an integer > 0", _positive_int),
                "diverge_admm_cap_solves": ("an integer >= 0", _nonnegative_int),
            },
        )


#: What ``stabilized = True`` sets, unless the run's settings give the field a value
#: (docs/robustness.md: the combinations tried and why this one). The TD clip is in the
#: example's cost units: about twice the 99th percentile of |TD error| of a healthy run
#: (example 1: 0.96); an example whose TD errors are larger sets its own preset
#: (``TrainingConfig.stabilized_preset``).
STABILIZED_PRESET: dict[str, float] = {"td_clip": 2.0, "max_update": 0.03, "parameter_box": 0.15}


@dataclass(frozen=True, kw_only=True)
class StabilizationSettings:
    """Safeguards of the learning, each off by default (the paper's learning);
    ``stabilized`` switches on the preset of them that kept every seed learning
    (``STABILIZED_PRESET``; docs/robustness.md). Both learners apply them alike.

    Attributes
    ----------
    stabilized : bool
        Use the stabilized preset for every safeguard not given a value.
    td_clip : float
        Clip the TD error at +-td_clip in the stored gradients (a Huber loss); the
        recorded TD errors are not clipped. 0: off.
    max_update : float
        No entry of a learnable parameter moves more than this in one update (the step
        is clipped entry by entry). 0: off.
    parameter_box : float
        Keep every entry of a learnable parameter within +-parameter_box of its initial
        value (the update is projected onto that box). 0: off.
    """

    flag_group: ClassVar[str] = "stabilized learning (off by default)"
    #: the safeguards ``stabilized`` switches on (an example may set its own)
    stabilized_preset: ClassVar[Mapping[str, float]] = STABILIZED_PRESET

    stabilized: bool = False
    td_clip: float = 0.0
    max_update: float = 0.0
    parameter_box: float = 0.0

    def __post_init__(self) -> None:
        _check_all(
            self,
            {
                "stabilized": ("true or false", lambda v: isinstance(v, bool)),
                "td_clip": ("a finite number >= 0", _nonnegative),
                "max_update": ("a finite number >= 0", _nonnegative),
                "parameter_box": ("a finite number >= 0", _nonnegative),
            },
        )


def apply_presets(
    values: dict[str, Any], preset: Mapping[str, float] = STABILIZED_PRESET
) -> dict[str, Any]:
    """``values`` (settings by field name) with ``preset`` (an example's
    ``stabilized_preset``) filled in for the safeguards it does not give, when it sets
    ``stabilized``; so a config (and a result file's record of it) always holds the
    values a run used."""
    if values.get("stabilized") is True:
        return {**preset, **values}
    return dict(values)


def _subset(settings: Any, kind: type) -> Any:
    return kind(**{f.name: getattr(settings, f.name) for f in fields(kind)})


@dataclass(frozen=True, kw_only=True)
class TrainingConfig(StabilizationSettings, DivergenceSettings, QLearningSettings, AdmmSettings):
    """Settings of a training run: the Q-learning, ADMM, divergence and stabilization
    settings and these.

    Attributes
    ----------
    seed : int
        Seed of the run (env noise, exploration, replay).
    centralized : bool
        Learn with the centralized MPC (mpcrl's LSTD Q-learning) instead of the
        distributed one.
    solver : str
        Solver of the MPCs' QPs where the active-set steps from the last optimal active
        set fail (ipopt: every solve, as an NLP).
    consensus_iters : int
        Iterations of average consensus for the global scalars (stage cost, V, Q).
    check_centralized : bool
        Also solve the centralized MPC at every distributed solve and record the V, Q,
        multiplier and gradient gaps.
    horizon : int
        Prediction horizon of the MPCs.
    discount : float
        Discount factor of the MPCs' stage costs and of Q-learning.
    checkpoint_every : int
        Save the run's state every this many steps (example 1) or episodes (power
        system); 0 saves only on Ctrl-C. With --solver ipopt the centralized learner
        restarts its solvers at each checkpoint, so this changes such a run in its last
        bits.
    """

    flag_group: ClassVar[str] = "run"

    seed: int = 1
    centralized: bool = False
    solver: str = DEFAULT_SOLVER
    consensus_iters: int = 100
    check_centralized: bool = False
    horizon: int
    discount: float
    checkpoint_every: int

    def __post_init__(self) -> None:
        AdmmSettings.__post_init__(self)
        QLearningSettings.__post_init__(self)
        DivergenceSettings.__post_init__(self)
        StabilizationSettings.__post_init__(self)
        _check_all(
            self,
            {
                "seed": ("an integer >= 0", _nonnegative_int),
                "centralized": ("true or false", lambda v: isinstance(v, bool)),
                "solver": (f"one of {', '.join(SOLVER_CHOICES)}", SOLVER_CHOICES.__contains__),
                "consensus_iters": ("an integer >= 0", _nonnegative_int),
                "check_centralized": ("true or false", lambda v: isinstance(v, bool)),
                "horizon": ("an integer > 0", _positive_int),
                "discount": ("a number in (0, 1]", _rate_factor),
                "checkpoint_every": ("an integer >= 0", _nonnegative_int),
            },
        )
        if self.centralized and self.check_centralized:
            raise ConfigError(
                "check_centralized",
                "check_centralized applies to distributed runs only",
                related=("centralized",),
            )

    @property
    def mode(self) -> str:
        """``"centralized"`` or ``"distributed"``."""
        return "centralized" if self.centralized else "distributed"

    def q_learning(self) -> QLearningSettings:
        """The Q-learning settings alone."""
        return _subset(self, QLearningSettings)

    def admm(self) -> AdmmSettings:
        """The ADMM settings alone."""
        return _subset(self, AdmmSettings)

    def divergence(self) -> DivergenceSettings:
        """The divergence thresholds alone."""
        return _subset(self, DivergenceSettings)

    def stabilization(self) -> StabilizationSettings:
        """The safeguards alone."""
        return _subset(self, StabilizationSettings)


@dataclass(frozen=True, kw_only=True)
class OneEpisodeConfig(TrainingConfig):
    """A training config whose run is one episode of ``steps`` steps; an example's
    config derives from it and sets the default and the help of ``steps``."""

    steps: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check("steps", _positive_int(self.steps), "an integer > 0", self.steps)
