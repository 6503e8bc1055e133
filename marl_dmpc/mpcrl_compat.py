"""Every use of mpcrl's (and csnlp's) internals, in one place.

The learners build on mpcrl (pinned in ``requirements.txt``): the centralized learner
*is* mpcrl's :class:`~mpcrl.LstdQLearningAgent`, and both learners use its optimizer,
replay, update strategy and epsilon-greedy exploration. To stop and resume a run, and to
step mpcrl's agent one step at a time, they read and write a few attributes that are
not part of mpcrl's documented interface. Each such access is a function here, and
:func:`check_mpcrl` verifies on the installed mpcrl that every one of them still exists
(``tests/test_structure.py``), so an mpcrl release that changed them fails with a
message naming what changed instead of a wrong result. One is csnlp's: the centralized
learner's active-set solver stands in for an NLP's private ``_solver``
(:func:`set_nlp_solver`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import casadi as cs
import mpcrl
import numpy as np
from mpcrl import LstdQLearningAgent
from mpcrl.core.exploration import EpsilonGreedyExploration
from mpcrl.core.schedulers import ExponentialScheduler
from mpcrl.optim import GradientDescent
from mpcrl.util.seeding import RngType, mk_seed

__all__ = [
    "ExponentialScheduler",
    "RngType",
    "check_mpcrl",
    "exploration_state",
    "load_exploration_state",
    "load_optimizer_state",
    "mk_seed",
    "optimizer_state",
]

#: The mpcrl version these accesses were written for.
TESTED_VERSION = "1.4.1"


# ---------------------------------------------------------------------- optimizer
def optimizer_state(optimizer: GradientDescent) -> dict[str, Any]:
    """Gradient descent's learning rate and momentum buffer, as plain data."""
    return {
        "learning_rate": float(optimizer.lr_scheduler.value),
        "momentum_buffer": optimizer._momentum_buffer,
    }


def load_optimizer_state(optimizer: GradientDescent, state: dict[str, Any]) -> None:
    """Restore :func:`optimizer_state`."""
    optimizer.lr_scheduler.value = state["learning_rate"]
    optimizer._momentum_buffer = state["momentum_buffer"]


# -------------------------------------------------------------------- exploration
def exploration_state(exploration: EpsilonGreedyExploration) -> dict[str, Any]:
    """An epsilon-greedy strategy's generator and schedules (the generator as an
    object: the caller turns it into plain data)."""
    return {
        "np_random": exploration.np_random,
        "epsilon": float(exploration.epsilon_scheduler.value),
        "strength": float(exploration.strength_scheduler.value),
    }


def load_exploration_state(
    exploration: EpsilonGreedyExploration, np_random: Any, epsilon: float, strength: float
) -> None:
    """Restore an epsilon-greedy strategy's generator and schedules."""
    exploration.np_random = np_random
    exploration.epsilon_scheduler.value = epsilon
    exploration.strength_scheduler.value = strength


# ------------------------------------------------------------- the LSTD Q agent
def learnable_names(agent: LstdQLearningAgent) -> list[str]:
    """The names of the agent's learnable parameters, in its gradient's order."""
    return list(agent._learnable_pars)


def value_mpcs(agent: LstdQLearningAgent) -> tuple[Any, Any]:
    """The agent's V and Q MPCs (csnlp wrappers) as it solves them."""
    return agent._V, agent._Q


def set_nlp_solver(mpc: Any, solver: Any) -> None:
    """Make ``solver`` a csnlp MPC's (or NLP's) solver: csnlp calls its private
    ``_solver`` with CasADi's keyword arguments and reads ``func.stats()``; its
    ``refresh_solver`` replaces it, so it is set again after every refresh."""
    mpc.unwrapped._solver = solver


def set_sensitivity(agent: LstdQLearningAgent, function: Callable[[Any], Any]) -> None:
    """Replace the agent's dQ/dtheta (a function of a Q solution)."""
    agent._sensitivity = function


def start_training(agent: LstdQLearningAgent) -> None:
    """Put the agent in the state its ``train`` puts it in before the first episode:
    training, and raising on an MPC failure."""
    agent._is_training = True
    agent._raises = True


def store_experience(
    agent: LstdQLearningAgent,
    cost: float,
    q: Any,
    v: Any,
    td_clip: float = 0.0,
    curvature: Any = None,
) -> bool:
    """Store one transition's TD error and gradient as the agent's
    ``train_one_episode`` does; ``False`` if a solution failed. With ``td_clip``, the
    TD error that scales the stored gradient is clipped at +-td_clip (first-order
    agents only; the recorded TD error is not clipped). With ``curvature`` (Q's
    second derivative in the parameters), the parts of a second-order update are stored
    instead: the (clipped) TD error, dQ and the curvature."""
    if not td_clip and curvature is None:
        return bool(agent._try_store_experience(cost, q, v))
    if curvature is None and agent.optimizer.order != 1:
        raise ValueError("TD-error clipping supports first-order optimizers only")
    success = bool(q.success and v.success)
    td_error = cost + agent.discount_factor * v.f - q.f if success else np.nan
    if success:
        clipped = float(np.clip(td_error, -td_clip, td_clip)) if td_clip else float(td_error)
        dq = agent._sensitivity(q)
        if curvature is None:
            agent.store_experience(-clipped * dq)
        else:
            agent.store_experience((clipped, dq, np.asarray(curvature)))
    if agent.td_errors is not None:
        agent.td_errors.append(td_error)
    return success


def last_solution(agent: LstdQLearningAgent) -> Any:
    """The agent's last solution (whose primal values warm-start the next solve)."""
    return agent._last_solution


def set_last_solution(agent: LstdQLearningAgent, solution: Any) -> None:
    agent._last_solution = solution


# -------------------------------------------------------------------------- check
#: Attributes that :func:`start_training` sets as ``LstdQLearningAgent.train`` does
#: (mpcrl reads them later; they need not exist before).
SET_BY_TRAIN = ("_is_training", "_raises")

#: What each object must have once built, by the class that builds it.
REQUIRED = {
    "GradientDescent": ("_momentum_buffer", "lr_scheduler"),
    "EpsilonGreedyExploration": ("np_random", "epsilon_scheduler", "strength_scheduler"),
    "LstdQLearningAgent": (
        "_learnable_pars",
        "_V",
        "_Q",
        "_sensitivity",
        "_is_training",
        "_try_store_experience",
        "_last_solution",
    ),
    "Nlp": ("_solver",),
}


def _tiny_agent() -> LstdQLearningAgent:
    """An LSTD Q-learning agent on a one-state MPC (built in a few milliseconds)."""
    import numpy as np
    from csnlp import Nlp
    from csnlp.wrappers import Mpc
    from mpcrl import LearnableParameter, LearnableParametersDict

    mpc = Mpc[cs.SX](Nlp[cs.SX](sym_type="SX"), prediction_horizon=1)
    x, _ = mpc.state("x", 1)
    u, _ = mpc.action("u", 1, lb=-1, ub=1)
    a = mpc.parameter("a", (1, 1))
    mpc.set_affine_dynamics(a, cs.DM(1.0))
    mpc.minimize(cs.sumsqr(x) + cs.sumsqr(u))
    mpc.init_solver({"print_time": False, "ipopt": {"print_level": 0, "sb": "yes"}})
    pars = LearnableParametersDict([LearnableParameter("a", 1, np.ones(1))])
    return LstdQLearningAgent(
        mpc=mpc,
        update_strategy=1,
        discount_factor=0.9,
        optimizer=GradientDescent(0.1),
        learnable_parameters=pars,
    )


def check_mpcrl() -> list[str]:
    """What of mpcrl's internals this package uses the installed mpcrl lacks, as
    ``Class.attribute`` (empty when everything is there), checked on built objects."""
    built = {
        "GradientDescent": GradientDescent(0.1),
        "EpsilonGreedyExploration": EpsilonGreedyExploration(0.5, 1.0),
        "LstdQLearningAgent": (agent := _tiny_agent()),
        "Nlp": agent.V.unwrapped,
    }
    missing = [
        f"{name}.{attribute}"
        for name, attributes in REQUIRED.items()
        for attribute in attributes
        if not hasattr(built[name], attribute)
    ]
    train = inspect.getsource(LstdQLearningAgent.train)
    missing += [
        f"LstdQLearningAgent.train setting {attribute}"
        for attribute in SET_BY_TRAIN
        if f"self.{attribute} =" not in train
    ]
    return missing


def mpcrl_version() -> str:
    """The installed mpcrl's version."""
    return str(mpcrl.__version__)
