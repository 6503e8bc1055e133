"""The scripts' driver: the top layer, where a command line becomes a run.

An example's training script describes its example as a :class:`TrainingExample` (its
name, config class and what a config trains) and calls :meth:`TrainingExample.main`:
the flags are generated from the config (:mod:`marl_dmpc.cli`), the run is trained and
saved by :func:`~marl_dmpc.runs.train_and_save`, and a one-line summary is printed.
:func:`claim_output`, :func:`check_finished`, :func:`check_scenario_sizes`,
:func:`run_evaluation` and :func:`write_evaluation` are the common steps of the evaluation
and baseline scripts. :data:`EXIT_CODES` are the exit codes of every script.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mpcrl import MpcSolverError

from .baselines import ProblemTooLarge, check_scenario_size
from .checkpoints import CheckpointError, config_fingerprint, validate_checkpoint
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
from .evaluation import episode_chunks, result_table, run_jobs
from .files import OutputError, Outputs, fresh_path
from .results import ResultFileError, load_result, save_result
from .runs import (
    TrainingRun,
    TrainingSetup,
    checkpoint_path,
    is_partial_result,
    train_and_save,
)
from .solvers import quiet_solvers

#: The exit codes of the scripts; an interrupted run exits with 128 + the signal's
#: number: 130 for Ctrl-C (SIGINT), 143 for SIGTERM.
EXIT_CODES = {"completed": 0, "failed": 1, "diverged": 1, "bad input": 2, "interrupted": 130}
#: Above this consensus error bound (see
#: :attr:`~marl_dmpc.consensus.AverageConsensus.error_bound`) a run ends with a warning.
CONSENSUS_WARNING = 1e-6


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
            help="result pickle; default runs/<example>_<mode>_seed<seed>.pkl, or with _2, "
            "_3, ... if that exists",
        )
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="replace existing files at --out and --checkpoint (without it, a run never "
            "replaces or deletes a file it did not create)",
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
        outputs = Outputs(args.overwrite)
        resume = None
        if args.resume is None:
            config, _ = parse_config(parser, self.config_type, args)
            default = fresh_path(f"runs/{self.name}_{config.mode}_seed{config.seed}.pkl")
            out = default if args.out is None else args.out
            own_checkpoint = None
        else:
            if args.config is not None or args.config_from is not None:
                parser.error("--resume continues a run with its own settings; drop --config")
            resume = self._read_checkpoint(parser, args.resume)
            config = resume["config"]
            _, given = parse_config(parser, self.config_type, args)
            for name, value in given.items():
                if value != getattr(config, name):
                    parser.error(
                        f"--resume continues the run with its own settings: {flag_name(name)} "
                        f"{value} differs from the checkpoint's {getattr(config, name)}"
                    )
            out = resume["out"] if args.out is None else args.out
            own_checkpoint = args.resume.resolve()
        try:
            out_path = outputs.claim(
                out,
                "--out",
                may_replace=lambda p: (
                    resume is not None and is_partial_result(p, dataclasses.asdict(config))
                ),
            )
            checkpoint = Path(args.checkpoint or args.resume or checkpoint_path(out_path))
            if checkpoint.resolve() == out_path.resolve():
                raise OutputError("--checkpoint must differ from --out")
            checkpoint = outputs.claim(
                checkpoint, "--checkpoint", may_replace=lambda p: p.resolve() == own_checkpoint
            )
        except OutputError as err:
            parser.error(str(err))
        return TrainingRun(config, out_path, not args.no_progress, checkpoint, resume, outputs)

    def _read_checkpoint(self, parser: argparse.ArgumentParser, path: Path) -> dict[str, Any]:
        """The checkpoint file ``path`` of this example, checked (its ``config`` as a
        config object); any fault ends the program with a one-line error."""
        try:
            data = load_result(path)
            validate_checkpoint(data, self.name)
            config = make_config(
                self.config_type, data["config"], dict.fromkeys(data["config"], str(path))
            )
            if data["fingerprint"] != config_fingerprint(config):
                raise CheckpointError("its settings do not match its fingerprint")
        except (ResultFileError, CheckpointError, ValueError) as err:
            parser.error(f"--resume: {path}: {err}")
        return {**data, "config": config}

    def run(self, run: TrainingRun) -> int:
        """Build what ``run`` trains (solver banners silenced), train (or resume) and save,
        print a one-line summary; returns the exit code (:data:`EXIT_CODES`)."""
        config = run.config
        for warning in config_warnings(config):
            print(f"warning: {warning}", file=sys.stderr)
        try:
            with quiet_solvers():
                setup = self.setup(config)
        except KeyboardInterrupt:
            print("interrupted before training started; nothing was written", file=sys.stderr)
            return EXIT_CODES["interrupted"]
        consensus = getattr(setup.learner, "consensus", None)
        if consensus is not None and consensus.error_bound > CONSENSUS_WARNING:
            print(
                f"warning: --consensus-iters {config.consensus_iters} leaves the agents' "
                f"estimates of the network's sums (stage cost, V, Q) up to "
                f"{consensus.error_bound:.2g} times their initial disagreement apart",
                file=sys.stderr,
            )
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
        capped, solves = int(result["admm_at_cap"]), len(result["admm_iterations"])
        if capped and outcome.status not in ("diverged", "failed"):
            print(
                f"warning: ADMM stopped at its iteration cap ({config.admm_iters}) in {capped} "
                f"of {solves} solves ({100 * capped / solves:.2g} %) without converging",
                file=sys.stderr,
            )
        if outcome.status == "interrupted" and run.checkpoint.exists():
            print(f"resume with --resume {run.checkpoint}")
        if outcome.status == "diverged" and run.checkpoint.exists():
            print(f"its state at divergence: {run.checkpoint}")
        if outcome.status in ("failed", "diverged"):
            fail(outcome.message)
        if outcome.status == "interrupted":
            return 128 + outcome.signal
        return EXIT_CODES["completed"]

    def main(self, argv: Sequence[str] | None = None) -> int:
        """The training script: parse ``argv``, run, return the exit code."""
        return self.run(self.parse_args(argv))


def config_warnings(config: TrainingConfig) -> list[str]:
    """Settings that are valid but probably not what the user meant."""
    warnings = []
    if not config.centralized and config.admm_tol == 0 and config.admm_iters < 10:
        warnings.append(
            f"--admm-iters {config.admm_iters} with --admm-tol 0: every solve stops after "
            f"{config.admm_iters} ADMM iteration(s), far from the MPC's solution"
        )
    return warnings


# ------------------------------------------------------------------ evaluation steps
def claim_output(
    out: str | None, default: str | Path, overwrite: bool, source: Path | None = None
) -> tuple[Outputs, Path]:
    """The :class:`~marl_dmpc.files.Outputs` of a script that writes one result (an
    evaluation, a baseline, a study) and its checked result path: ``out``, or a new path
    made from ``default``. It never is the ``source`` being evaluated; an existing file
    needs ``overwrite``. A bad path ends the script with a one-line error and exit
    code 2."""
    outputs = Outputs(overwrite)
    path = Path(out) if out is not None else fresh_path(default)
    try:
        if source is not None and path.resolve() == Path(source).resolve():
            raise OutputError(f"--out {path} is the result being evaluated; give another path")
        return outputs, outputs.claim(path, "--out")
    except OutputError as err:
        fail(str(err), EXIT_CODES["bad input"])


def check_finished(result: dict[str, Any], path: Path) -> None:
    """Warn (stderr) when a training result did not complete."""
    status = result.get("status", "completed")
    if status != "completed":
        print(
            f"warning: {path} is a run that did not finish (status {status!r}, "
            f"{result.get('steps_completed', '?')} steps); evaluating its last parameters",
            file=sys.stderr,
        )


def check_scenario_sizes(
    scenarios: Sequence[int], nx: int, nu: int, horizon: int, rows: int, workers: int
) -> None:
    """End a baseline script with a one-line error (exit code 2) if its largest scenario
    MPC, built by ``workers`` processes at once, would not fit in memory (see
    :func:`~marl_dmpc.baselines.check_scenario_size`)."""
    if not scenarios:
        return
    try:
        check_scenario_size(max(scenarios), nx, nu, horizon, rows, copies=workers)
    except ProblemTooLarge as err:
        fail(f"--scenarios: {err}", EXIT_CODES["bad input"])


def run_evaluation(
    function: Callable[[Any], Any], jobs: Sequence[Any], workers: int
) -> tuple[list[Any], float]:
    """:func:`~marl_dmpc.evaluation.run_jobs` and its wall time (s); an MPC that cannot be
    solved ends the script with a one-line error (exit code 1), Ctrl-C with one line and
    130 (nothing is written)."""
    start = time.perf_counter()
    try:
        outcomes = run_jobs(function, jobs, workers)
    except MpcSolverError as err:
        fail(str(err))
    except KeyboardInterrupt:
        fail("interrupted; nothing was written", EXIT_CODES["interrupted"])
    return outcomes, time.perf_counter() - start


def run_episodes(
    function: Callable[[Any], list[Any]],
    jobs_of: Sequence[Callable[[list[int]], Any]],
    episodes: int,
    workers: int,
) -> tuple[list[list[Any]], float]:
    """Every controller's ``episodes`` evaluation episodes, split into chunks over the
    workers (:func:`~marl_dmpc.evaluation.episode_chunks`): ``jobs_of[c](chunk)`` is
    controller ``c``'s job for the episode indices ``chunk`` and ``function(job)``
    returns their episodes. The episodes of each controller in order, and the wall time
    (s), as :func:`run_evaluation`."""
    chunks = episode_chunks(episodes, workers)
    jobs = [make(chunk) for make in jobs_of for chunk in chunks]
    outcomes, wall_time = run_evaluation(function, jobs, workers)
    n = len(chunks)
    per_controller = [
        [episode for outcome in outcomes[c * n : (c + 1) * n] for episode in outcome]
        for c in range(len(jobs_of))
    ]
    return per_controller, wall_time


def write_evaluation(
    outputs: Outputs, out: Path, result: dict[str, Any], first: str, keys: Sequence[Any]
) -> int:
    """Save an evaluation result, print its table (see
    :func:`~marl_dmpc.evaluation.result_table`) and where it went; the exit code (0)."""
    save_result(out, result, outputs)
    print(result_table(result, first, keys))
    print(f"result written to {out}")
    return 0
