"""The noise of example 1's evaluation episodes: independent per agent (ours), one value per
step shared by the agents (the release's evaluations), or replayed from a release
evaluation file (:func:`release_episode_noise`), chosen by the evaluation and baseline
scripts' ``--shared-noise`` and ``--noise-from`` flags (:func:`add_noise_flags`).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from marl_dmpc import driver
from marl_dmpc.cli import fail
from marl_dmpc.legacy import backed_out_noise, load_release_file
from marl_dmpc.results import ResultFileError
from reproduction.example_1 import model
from reproduction.example_1.env import CoupledLinearSystemsEnv


def release_episode_noise(path: str | os.PathLike[str]) -> npt.NDArray[np.floating]:
    """The noise on every agent's first state at each step of a release evaluation file
    of example 1, shape ``(steps, agents)``, backed out of its states and actions with the
    true model (:func:`~marl_dmpc.legacy.backed_out_noise`, which refuses a file the true
    model did not make)."""
    release = load_release_file(path, "example_1_evaluation")
    A, B = model.network_matrices(model.TRUE, model.network())
    noisy = np.tile([True, False], model.N_AGENTS)
    return backed_out_noise(release["states"], release["actions"], A, B, noisy)[:, noisy]


def add_noise_flags(parser: argparse.ArgumentParser) -> None:
    """``--shared-noise`` and ``--noise-from`` (mutually exclusive)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--shared-noise",
        action="store_true",
        help="one noise value per step for every agent, as the release's evaluations drew "
        "it (default: one per agent)",
    )
    group.add_argument(
        "--noise-from",
        metavar="RELEASE_EVAL.pkl",
        default=None,
        help="replay the noise of a release evaluation file of example 1 (backed out of its "
        "states and actions with the true model) in one episode",
    )


def noise_setting(args: argparse.Namespace) -> dict[str, Any]:
    """The episodes' noise from the parsed flags, as plain data for the jobs: ``shared``
    and ``sequence`` (a list of rows, or ``None``) and ``source`` (the replayed file).
    A ``--noise-from`` file that cannot be replayed, or asked for more than its one
    episode, ends the script with one line (exit code 2)."""
    if args.noise_from is None:
        return {"shared": bool(args.shared_noise), "sequence": None, "source": None}
    try:
        return _replayed(args)
    except (ValueError, ResultFileError) as err:
        fail(f"{args.noise_from}: {err}", driver.EXIT_CODES["bad input"])


def _replayed(args: argparse.Namespace) -> dict[str, Any]:
    sequence = release_episode_noise(args.noise_from)
    if args.episodes != 1:
        raise ValueError(f"it replays one episode: add --episodes 1 (got {args.episodes})")
    if args.steps > len(sequence):
        raise ValueError(f"its episode has {len(sequence)} steps; got --steps {args.steps}")
    return {"shared": False, "sequence": sequence.tolist(), "source": str(args.noise_from)}


def make_env(steps: int, noise: dict[str, Any]) -> CoupledLinearSystemsEnv:
    """The plant of an evaluation episode of ``steps`` steps with ``noise`` (from
    :func:`noise_setting`)."""
    return CoupledLinearSystemsEnv(
        max_steps=steps, shared_noise=noise["shared"], noise_sequence=noise["sequence"]
    )


def describe(noise: dict[str, Any]) -> str:
    """The noise of the episodes in words, for the result file."""
    if noise["sequence"] is not None:
        return f"replayed from {noise['source']}"
    return "shared by the agents" if noise["shared"] else "independent per agent"
