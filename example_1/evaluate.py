"""Evaluate example 1's learned policy: the greedy policy of a training result with the
parameters learned after each listed number of updates, over 100-step episodes from the
paper's initial state (20 noise realizations by default; the paper's evaluation is one
episode, the first here; the same noise for every checkpoint), and the table of their
costs.

    python example_1/evaluate.py runs/example_1_distributed_seed1.pkl
    python example_1/evaluate.py RESULT.pkl --updates 0,5,10,25,50,100,500,2500,5000,7500,10000
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from marl_dmpc import driver
from marl_dmpc.cli import (
    OneLineArgumentParser,
    add_evaluation_flags,
    fail,
    nonnegative_int_list,
)
from marl_dmpc.evaluation import (
    LearnedPolicy,
    default_workers,
    evaluation_result,
    parameters_after,
    run_episode,
    training_config,
)
from marl_dmpc.results import ResultFileError, load_result
from marl_dmpc.solvers import quiet_solvers
from reproduction.example_1 import model
from reproduction.example_1.config import Example1Config
from reproduction.example_1.example_1 import build_learner
from reproduction.example_1.noise import add_noise_flags, describe, make_env, noise_setting

#: Evaluation episodes by default (the paper's evaluation is one, the first of these).
EPISODES = 20
#: The paper's checkpoints (numbers of updates).
PAPER_UPDATES = (0, 5, 10, 25, 50, 100, 500, 2500, 5000, 7500, 10000)


def run_checkpoint(
    job: tuple[dict, dict, list[int], int, int, dict],
) -> list[dict[str, np.ndarray]]:
    """Some episodes of one checkpoint: ``(training config as a dict, parameter values,
    episode indices, evaluation seed, steps, noise)``; episode ``e`` has the noise of
    seed ``eval_seed + e`` (or the replayed noise, :mod:`example_1.noise`)."""
    config, values, episodes, eval_seed, steps, noise = job
    with quiet_solvers():
        policy = LearnedPolicy(build_learner(Example1Config(**config)), values)
        env = make_env(steps, noise)
        return [run_episode(env, policy, eval_seed + e) for e in episodes]


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path, help="an example-1 training result file")
    parser.add_argument(
        "--updates",
        type=nonnegative_int_list,
        default=None,
        help="numbers of updates to evaluate, comma-separated; default: the paper's "
        "checkpoints up to the file's last update, and that one",
    )
    add_evaluation_flags(parser, 100, default_workers(), "RESULT_eval.pkl", EPISODES)
    add_noise_flags(parser)
    args = parser.parse_args(argv)
    noise = noise_setting(args)
    try:
        result = load_result(args.result)
        config = training_config(result, Example1Config, "example 1")
        updates = args.updates
        if updates is None:
            last = int(result["updates"])
            updates = sorted({u for u in PAPER_UPDATES if u <= last} | {last})
        values = [parameters_after(result, u) for u in updates]
    except ResultFileError as err:
        fail(f"{args.result}: {err}", driver.EXIT_CODES["bad input"])
    default = args.result.with_name(f"{args.result.stem}_eval.pkl")
    outputs, out = driver.claim_output(args.out, default, args.overwrite, args.result)
    driver.check_finished(result, args.result)
    settings = dataclasses.asdict(config)
    episodes, wall_time = driver.run_episodes(
        run_checkpoint,
        [
            lambda chunk, v=v: (settings, v, chunk, args.eval_seed, args.steps, noise)
            for v in values
        ],
        args.episodes,
        args.workers,
    )
    evaluation = evaluation_result(
        "example_1_evaluation",
        [f"after {u} updates" for u in updates],
        episodes,
        model.violations,
        wall_time,
        updates=np.array(updates),
        source=str(args.result),
        config=dataclasses.asdict(config),
        eval_seed=args.eval_seed,
        noise=describe(noise),
    )
    return driver.write_evaluation(outputs, out, evaluation, "updates", updates)


if __name__ == "__main__":
    sys.exit(main())
