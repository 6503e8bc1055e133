"""The scripts' driver: the top layer, where a command line becomes a run.

An example's training script describes its example as a :class:`TrainingExample` (its
name, config class and what a config trains) and calls :meth:`TrainingExample.main`:
the flags are generated from the config (:mod:`marl_dmpc.cli`), the run is trained and
saved by :func:`~marl_dmpc.runs.train_and_save`, and a one-line summary is printed.
:func:`evaluation_out`, :func:`run_evaluation` and :func:`write_evaluation` are the
common steps of the evaluation and baseline scripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mpcrl import MpcSolverError

from .cli import (
    OneLineArgumentParser,
    add_config_flags,
    add_config_sources,
    fail,
    flag_name,
    make_config,
    parse_config,
)
from .config import TrainingConfig
from .evaluation import result_table, run_jobs
from .results import ResultFileError, check_writable, load_result, save_result
from .runs import TrainingRun, TrainingSetup, checkpoint_path, train_and_save
from .solvers import quiet_solvers


@dataclasses.dataclass(frozen=True)
class TrainingExample:
    """What a training script is about.

    Attributes
    ----------
    name : str
        The example's name (``"example_1"``), recorded in checkpoints and used in the
        default result path ``runs/<name>_<mode>_seed<seed>.pkl``.
    config_type : type
        Its config (a :class:`~marl_dmpc.config.TrainingConfig`); every field is a flag.
    setup : callable
        ``config -> TrainingSetup``: the learner and env a config trains.
    prog, description : str
        The script's name and one-line description (``--help``).
    """

    name: str
    config_type: type[TrainingConfig]
    setup: Callable[[Any], TrainingSetup]
    prog: str
    description: str

    def parser(self) -> OneLineArgumentParser:
        """The script's argument parser."""
        parser = OneLineArgumentParser(prog=self.prog, description=self.description)
        parser.add_argument(
            "--out",
            default=None,
            help="result pickle; default runs/<example>_<mode>_seed<seed>.pkl",
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        parser.add_argument(
            "--checkpoint",
            default=None,
            help="checkpoint file; default OUT with the suffix .checkpoint.pkl (removed when "
            "the run completes)",
        )
        parser.add_argument(
            "--resume",
            type=Path,
            default=None,
            metavar="CHECKPOINT",
            help="continue the run saved in CHECKPOINT, with its settings, to the result the "
            "uninterrupted run would have had",
        )
        add_config_sources(parser)
        add_config_flags(parser, self.config_type)
        return parser

    def parse_args(self, argv: Sequence[str] | None = None) -> TrainingRun:
        """What the command line ``argv`` asks for (errors end the program with 2)."""
        parser = self.parser()
        args = parser.parse_args(argv)
        resume = None
        if args.resume is None:
            config, _ = parse_config(parser, self.config_type, args)
            out = args.out or f"runs/{self.name}_{config.mode}_seed{config.seed}.pkl"
        else:
            if args.config is not None or args.config_from is not None:
                parser.error("--resume continues a run with its own settings; drop --config")
            resume = self._read_checkpoint(parser, args.resume)
            try:
                config = make_config(
                    self.config_type,
                    resume["config"],
                    dict.fromkeys(resume["config"], f"--resume {args.resume}"),
                )
            except ValueError as err:
                parser.error(str(err))
            _, given = parse_config(parser, self.config_type, args)
            for name, value in given.items():
                if value != getattr(config, name):
                    parser.error(
                        f"--resume continues the run with its own settings: {flag_name(name)} "
                        f"{value} differs from the checkpoint's {getattr(config, name)}"
                    )
            out = args.out or resume["out"]
        try:
            out_path = check_writable(out)
            checkpoint = check_writable(
                args.checkpoint or args.resume or checkpoint_path(out_path), "--checkpoint"
            )
        except ValueError as err:
            parser.error(str(err))
        return TrainingRun(config, out_path, not args.no_progress, checkpoint, resume)

    def _read_checkpoint(self, parser: argparse.ArgumentParser, path: Path) -> dict[str, Any]:
        try:
            data = load_result(path)
        except ResultFileError as err:
            parser.error(f"--resume: {err}")
        if data.get("kind") != "checkpoint":
            parser.error(f"--resume: {path} is not a checkpoint (its kind is {data.get('kind')!r})")
        if data.get("example") != self.name:
            parser.error(
                f"--resume: {path} is a checkpoint of {data.get('example')!r}, not {self.name!r}"
            )
        missing = [k for k in ("config", "out", "training") if k not in data]
        if missing:
            parser.error(f"--resume: {path} lacks {', '.join(missing)}")
        return data

    def run(self, run: TrainingRun) -> int:
        """Build what ``run`` trains (solver banners silenced), train (or resume) and save,
        print a one-line summary; returns the exit code (0, or 130 if interrupted; a
        failed MPC ends with a one-line error and 1)."""
        config = run.config
        with quiet_solvers():
            setup = self.setup(config)
        resumed = f" (resumed at step {run.resume['steps_completed']})" if run.resume else ""
        print(f"{setup.label}, {config.mode}, seed {config.seed}{resumed} -> {run.out}", flush=True)
        with quiet_solvers():
            outcome = train_and_save(setup, run, self.name)
        result = outcome.result
        costs = result["episode_costs"]
        episodes_text = f", last episode {costs[-1]:.4g}" if len(costs) > 1 else ""
        print(
            f"{outcome.status}: {result['steps_completed']} steps, {result['updates']} updates, "
            f"total cost {costs.sum():.4g}{episodes_text}, {result['ms_per_step']:.1f} ms/step; "
            f"result written to {run.out}"
        )
        if outcome.status == "interrupted" and run.checkpoint.exists():
            print(f"resume with --resume {run.checkpoint}")
        if outcome.status == "failed":
            fail(outcome.message)
        return 130 if outcome.status == "interrupted" else 0

    def main(self, argv: Sequence[str] | None = None) -> int:
        """The training script: parse ``argv``, run, return the exit code."""
        return self.run(self.parse_args(argv))


# ------------------------------------------------------------------ evaluation steps
def evaluation_out(out: Path | None, source: Path) -> Path:
    """``out``, or by default ``source``'s name with ``_eval`` (checked writable; if not,
    the script ends with a one-line error)."""
    if out is not None:
        return out
    try:
        return check_writable(source.with_name(source.stem + "_eval.pkl"))
    except ValueError as err:
        fail(str(err))


def run_evaluation(
    function: Callable[[Any], Any], jobs: Sequence[Any], workers: int
) -> tuple[list[Any], float]:
    """:func:`~marl_dmpc.evaluation.run_jobs` and its wall time (s); an MPC that cannot be
    solved ends the script with a one-line error."""
    start = time.perf_counter()
    try:
        outcomes = run_jobs(function, jobs, workers)
    except MpcSolverError as err:
        fail(str(err))
    return outcomes, time.perf_counter() - start


def write_evaluation(out: Path, result: dict[str, Any], first: str, keys: Sequence[Any]) -> int:
    """Save an evaluation result, print its table (see
    :func:`~marl_dmpc.evaluation.result_table`) and where it went; the exit code (0)."""
    save_result(out, result)
    print(result_table(result, first, keys))
    print(f"result written to {out}")
    return 0
