"""The load noise of the power system's evaluation episodes: drawn from each episode's seed
(ours), or replayed from a release evaluation file (:func:`release_load_noise`), chosen by
the evaluation and baseline scripts' ``--noise-from`` flag (:func:`add_noise_flag`).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from marl_dmpc import driver
from marl_dmpc.cli import fail
from marl_dmpc.discretization import zero_order_hold
from marl_dmpc.legacy import backed_out_disturbance, load_release_file
from marl_dmpc.results import ResultFileError
from reproduction.power_system import model
from reproduction.power_system.env import network_matrices

#: The plant's integration tolerance leaves the backed-out states this far off the exact
#: discretization, relative to the largest state (measured on the release's files: 8e-8).
TOLERANCE = 1e-6


def release_load_noise(path: str | os.PathLike[str]) -> npt.NDArray[np.floating]:
    """The load noise of every area at each step of each episode of a release evaluation
    file of the power system, shape ``(episodes, steps, areas)``: the loads that the true
    model's exact discretization needs to go from each state to the next
    (:func:`~marl_dmpc.legacy.backed_out_disturbance`, which refuses a file the true model
    did not make), less the scheduled load."""
    release = load_release_file(path, "power_system_evaluation")
    A, B, L = network_matrices()
    Ad, held = zero_order_hold(A, np.hstack((B, L)), model.TS)
    Bd, Ld = held[:, : B.shape[1]], held[:, B.shape[1] :]
    steps = release["actions"].shape[1]
    scheduled = np.array([model.scheduled_load(k + 1) for k in range(steps)])
    return np.array(
        [
            backed_out_disturbance(x, u, Ad, Bd, Ld, TOLERANCE) - scheduled
            for x, u in zip(release["states"], release["actions"], strict=True)
        ]
    )


def add_noise_flag(parser: argparse.ArgumentParser) -> None:
    """``--noise-from``."""
    parser.add_argument(
        "--noise-from",
        metavar="RELEASE_EVAL.pkl",
        default=None,
        help="replay the load noise of a release evaluation file of the power system "
        "(backed out of its states and actions with the true model), episode e that of "
        "its episode e",
    )


def noise_setting(args: argparse.Namespace) -> dict[str, Any]:
    """The episodes' noise from the parsed flags, as plain data for the jobs:
    ``sequences`` (one (steps, areas) list per episode, or ``None``: each episode's seed
    draws it) and ``source`` (the replayed file). A ``--noise-from`` file that cannot be
    replayed, or holds fewer episodes or steps than asked for, ends the script with one
    line (exit code 2)."""
    if args.noise_from is None:
        return {"sequences": None, "source": None}
    try:
        sequences = release_load_noise(args.noise_from)
        if args.episodes > len(sequences) or args.steps > sequences.shape[1]:
            raise ValueError(
                f"it holds {len(sequences)} episodes of {sequences.shape[1]} steps; got "
                f"--episodes {args.episodes} --steps {args.steps}"
            )
    except (ValueError, ResultFileError) as err:
        fail(f"{args.noise_from}: {err}", driver.EXIT_CODES["bad input"])
    return {"sequences": sequences[: args.episodes].tolist(), "source": str(args.noise_from)}


def episode_options(noise: dict[str, Any], episode: int) -> dict[str, Any] | None:
    """The env's reset options of episode ``episode`` (its replayed noise), or None."""
    if noise["sequences"] is None:
        return None
    return {"load_noise": noise["sequences"][episode]}


def describe(noise: dict[str, Any]) -> str:
    """The noise of the episodes in words, for the result file."""
    if noise["sequences"] is not None:
        return f"replayed from {noise['source']}"
    return "drawn from each episode's seed"
