"""One run of a sweep, as a backend runs it: plain data in, plain data out.

:func:`run_task` trains a run (resuming from its checkpoint if one with the run's header
is on disk, which it then owns), evaluates the final policy of a completed run, and
returns the result dict. It writes only the run's checkpoint; the sweep's driver writes
the result, so a task on another machine sends it back as plain data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.wrappers import TimeLimit

from ..checkpoints import CheckpointError, config_fingerprint, validate_checkpoint
from ..cli import make_config
from ..evaluation import LearnedPolicy, run_episode
from ..files import Outputs
from ..results import ResultFileError, load_result
from ..runs import TrainingRun, train
from ..solvers import quiet_solvers
from ..threads import single_threaded_blas
from .plan import load_example

#: Steps of an evaluation episode (both examples' evaluations in the paper).
EVALUATION_STEPS = 100


def own_checkpoint(path: Path, example: str, config: Any) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it is one of this run (header, example and config
    fingerprint match), else None."""
    if not path.exists():
        return None
    try:
        data = load_result(path)
        validate_checkpoint(data, example)
    except (ResultFileError, CheckpointError):
        return None
    return data if data["fingerprint"] == config_fingerprint(config) else None


def evaluate_final_policy(
    example: str, config: Any, params: dict[str, np.ndarray], episodes: int, eval_seed: int
) -> dict[str, Any]:
    """The greedy policy with the final parameters of ``params`` (histories by name)
    over ``episodes`` episodes of :data:`EVALUATION_STEPS` steps (fewer if the example's
    episodes are shorter), episode ``e`` with the noise of seed ``eval_seed + e``: their
    total costs."""
    setup = load_example(example).setup(config)
    policy = LearnedPolicy(setup.learner, {name: h[-1] for name, h in params.items()})
    env = TimeLimit(setup.env, EVALUATION_STEPS)
    costs = [np.sum(run_episode(env, policy, eval_seed + e)["costs"]) for e in range(episodes)]
    return {
        "episode_costs": np.array(costs, dtype=float),
        "eval_seed": eval_seed,
        "steps": EVALUATION_STEPS,
    }


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Train one run of a sweep and evaluate its final policy.

    Parameters
    ----------
    task : dict
        ``example``, ``config`` (a dict), ``result`` and ``checkpoint`` (paths),
        ``eval_episodes`` and ``eval_seed``.

    Returns
    -------
    dict
        The training result (docs/results.md), with ``final_evaluation`` when the run
        completed and ``eval_episodes`` > 0.
    """
    name = task["example"]
    example = load_example(name)
    config = make_config(example.config_type, task["config"], {})
    checkpoint = Path(task["checkpoint"])
    saved = own_checkpoint(checkpoint, name, config)
    outputs = Outputs()
    outputs.claim(checkpoint, "checkpoint", may_replace=lambda _: saved is not None)
    resume = None if saved is None else {**saved, "config": config}
    run = TrainingRun(config, Path(task["result"]), False, checkpoint, resume, outputs)
    with quiet_solvers(), single_threaded_blas():
        result = train(example.setup(config), run, name).result
        if result["status"] == "completed" and task["eval_episodes"] > 0:
            result["final_evaluation"] = evaluate_final_policy(
                name, config, result["params"], task["eval_episodes"], task["eval_seed"]
            )
    return result
