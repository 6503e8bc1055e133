"""Evaluate example 1's learned policy: the greedy policy of a training result with the
parameters learned after each listed number of updates, over 100-step episodes from the
paper's initial state (20 noise realizations by default, the same for every checkpoint;
the paper's evaluation is one episode, which ``--noise-from`` replays), and the table of their
costs. Given a sweep summary instead, it evaluates the final policy of each of the
study's completed runs; with ``--release-training``, a training file of the release.

    python example_1/evaluate.py runs/example_1_distributed_seed1.pkl
    python example_1/evaluate.py RESULT.pkl --updates 0,5,10,25,50,100,500,2500,5000,7500,10000
    python example_1/evaluate.py data/robustness/example_1_distributed_default.pkl
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

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
from marl_dmpc.legacy import load_release_file
from marl_dmpc.results import ResultFileError, load_result
from marl_dmpc.solvers import quiet_solvers
from reproduction.example_1 import model
from reproduction.example_1.config import Example1Config
from reproduction.example_1.example_1 import build_learner
from reproduction.example_1.noise import add_noise_flags, describe, make_env, noise_setting

#: Evaluation episodes by default (the paper's evaluation is one, replayed by --noise-from).
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


def checkpoints(
    result: dict[str, Any], updates: list[int] | None
) -> tuple[list[str], list[dict], list[dict], dict[str, Any]]:
    """The policies of a training result after each of ``updates`` (None: the paper's
    checkpoints up to its last update, and that one): their labels, configs, parameter
    values and the result's fields that say which they are."""
    config = dataclasses.asdict(training_config(result, Example1Config, "example 1"))
    if updates is None:
        last = int(result["updates"])
        updates = sorted({u for u in PAPER_UPDATES if u <= last} | {last})
    values = [parameters_after(result, u) for u in updates]
    fields = {"updates": np.array(updates), "config": config}
    return [f"after {u} updates" for u in updates], [config] * len(updates), values, fields


def final_policies(summary: dict[str, Any]) -> tuple[list[str], list[dict], list[dict], dict]:
    """The final policies of a sweep summary's completed runs of example 1 (as
    :func:`checkpoints`)."""
    if summary.get("example") != "example_1":
        raise ResultFileError(f"a sweep of {summary.get('example')!r}, not of example_1")
    runs = [run for run in summary.get("runs", []) if run.get("status") == "completed"]
    if not runs:
        raise ResultFileError("its study has no completed run")
    configs = [
        dataclasses.asdict(
            training_config({"kind": "training", **run}, Example1Config, "example 1")
        )
        for run in runs
    ]
    labels = [f"seed {run['seed']}" for run in runs]
    values = [dict(run["final_parameters"]) for run in runs]
    return labels, configs, values, {"seeds": np.array([run["seed"] for run in runs])}


def policies(
    args: argparse.Namespace,
) -> tuple[list[str], list[dict], list[dict], dict, dict | None]:
    """The policies to evaluate (as :func:`checkpoints`), from the file the command names:
    a training result, a sweep summary, or with ``--release-training`` a release training
    file (evaluated with this repository's default configuration); and the training
    result itself where it is one of this repository's (None otherwise)."""
    if args.release_training:
        return (
            *checkpoints(load_release_file(args.result, "example_1_training"), args.updates),
            None,
        )
    result = load_result(args.result)
    if result.get("kind") == "sweep_summary":
        if args.updates is not None:
            raise ResultFileError("a sweep summary holds final policies only; drop --updates")
        return (*final_policies(result), None)
    return (*checkpoints(result, args.updates), result)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "result",
        type=Path,
        help="an example-1 training result, or a sweep summary of example 1 (its completed "
        "runs' final policies)",
    )
    parser.add_argument(
        "--updates",
        type=nonnegative_int_list,
        default=None,
        help="numbers of updates to evaluate, comma-separated; default: the paper's "
        "checkpoints up to the file's last update, and that one",
    )
    parser.add_argument(
        "--release-training",
        action="store_true",
        help="RESULT is a training file of the release (its line_81/*.pkl): its learned "
        "parameters, with this repository's default configuration (needs --out)",
    )
    add_evaluation_flags(parser, 100, default_workers(), "RESULT_eval.pkl", EPISODES)
    add_noise_flags(parser)
    args = parser.parse_args(argv)
    noise = noise_setting(args)
    if args.release_training and args.out is None:
        fail(
            "--release-training needs --out (nothing is written beside the release's files)",
            driver.EXIT_CODES["bad input"],
        )
    try:
        labels, configs, values, fields, training = policies(args)
    except ResultFileError as err:
        fail(f"{args.result}: {err}", driver.EXIT_CODES["bad input"])
    default = args.result.with_name(f"{args.result.stem}_eval.pkl")
    outputs, out = driver.claim_output(args.out, default, args.overwrite, args.result)
    if training is not None:
        driver.check_finished(training, args.result)
    episodes, wall_time = driver.run_episodes(
        run_checkpoint,
        [
            lambda chunk, c=c, v=v: (c, v, chunk, args.eval_seed, args.steps, noise)
            for c, v in zip(configs, values, strict=True)
        ],
        args.episodes,
        args.workers,
    )
    evaluation = evaluation_result(
        "example_1_evaluation",
        labels,
        episodes,
        model.violations,
        wall_time,
        source=str(args.result),
        release_training=bool(args.release_training),
        eval_seed=args.eval_seed,
        noise=describe(noise),
        **fields,
    )
    first, keys = ("updates", fields["updates"]) if "updates" in fields else ("run", labels)
    return driver.write_evaluation(outputs, out, evaluation, first, list(keys))


if __name__ == "__main__":
    sys.exit(main())
