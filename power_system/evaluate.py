"""Evaluate the power system's learned policy: the greedy policy of a training result
(its final parameters, or those after ``--update K``) over the evaluation episodes (the
same load noise as the baselines'), and the table of their costs.

    python power_system/evaluate.py runs/power_system_distributed_seed1.pkl
    python power_system/evaluate.py RESULT.pkl --update 50 --episodes 20
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
    nonnegative_int,
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
from reproduction.power_system import model
from reproduction.power_system.config import PowerSystemConfig
from reproduction.power_system.env import PowerSystemEnv
from reproduction.power_system.noise import add_noise_flag, describe, episode_options, noise_setting
from reproduction.power_system.q_learning_power import build_learner


def run_policy(job: tuple[dict, dict, list[int], int, int, dict]) -> list[dict[str, np.ndarray]]:
    """Some episodes of the learned policy: ``(training config as a dict, parameter
    values, episode indices, evaluation seed, steps, noise)``; episode ``e`` has the noise
    of seed ``eval_seed + e`` (or the replayed noise, :mod:`power_system.noise`)."""
    config, values, episodes, eval_seed, steps, noise = job
    with quiet_solvers():
        policy = LearnedPolicy(build_learner(PowerSystemConfig(**config)), values)
        env = PowerSystemEnv(max_steps=steps)
        return [
            run_episode(env, policy, eval_seed + e, options=episode_options(noise, e))
            for e in episodes
        ]


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path, help="a power-system training result file")
    parser.add_argument(
        "--update",
        type=nonnegative_int,
        default=None,
        help="evaluate the parameters after this many updates; default: the last",
    )
    add_evaluation_flags(parser, model.EPISODE_STEPS, default_workers(), "RESULT_eval.pkl", 100)
    add_noise_flag(parser)
    args = parser.parse_args(argv)
    noise = noise_setting(args)
    try:
        result = load_result(args.result)
        config = training_config(result, PowerSystemConfig, "the power system")
        update = int(result["updates"]) if args.update is None else args.update
        values = parameters_after(result, update)
    except ResultFileError as err:
        fail(f"{args.result}: {err}", driver.EXIT_CODES["bad input"])
    default = args.result.with_name(f"{args.result.stem}_eval.pkl")
    outputs, out = driver.claim_output(args.out, default, args.overwrite, args.result)
    driver.check_finished(result, args.result)
    episodes, wall_time = driver.run_episodes(
        run_policy,
        [
            lambda chunk: (
                dataclasses.asdict(config),
                values,
                chunk,
                args.eval_seed,
                args.steps,
                noise,
            )
        ],
        args.episodes,
        args.workers,
    )
    label = f"learned ({config.mode}), after {update} updates"
    evaluation = evaluation_result(
        "power_system_evaluation",
        [label],
        episodes,
        model.angle_violations,
        wall_time,
        updates=np.array([update]),
        source=str(args.result),
        config=dataclasses.asdict(config),
        eval_seed=args.eval_seed,
        noise=describe(noise),
    )
    return driver.write_evaluation(outputs, out, evaluation, "controller", [label])


if __name__ == "__main__":
    sys.exit(main())
