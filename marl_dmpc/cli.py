"""Command-line plumbing shared by the training scripts.

* :class:`OneLineArgumentParser` reports a bad flag value in one line and exits with 2;
* validators for the common flag types, and :func:`check_writable` for output paths;
* :func:`add_training_flags` and :func:`parse_training_args`: the flags every training
  script has, each setting the field of the example's
  :class:`~marl_dmpc.config.TrainingConfig` of the same name;
* :func:`quiet_solvers` keeps solver banners (qpOASES prints its licence at every solver
  construction) out of the terminal;
* :class:`TrainingProgress` is the progress bar with the running cost and TD error;
* :func:`fail` ends a run with a one-line message.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import numpy as np
from tqdm import tqdm

from .results import ResultFileError, load_result
from .solvers import SOLVER_CHOICES

if TYPE_CHECKING:
    from .config import TrainingConfig

    ConfigT = TypeVar("ConfigT", bound=TrainingConfig)


class OneLineArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` to stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer > 0."""
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def _int_list(text: str, item: Callable[[str], int], what: str) -> list[int]:
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}")
    return [item(part) for part in parts]


def positive_int_list(text: str) -> list[int]:
    """Comma-separated integers > 0 (``"10,25"``)."""
    return _int_list(text, positive_int, "positive integers")


def nonnegative_int_list(text: str) -> list[int]:
    """Comma-separated integers >= 0 (``"0,5,10"``)."""
    return _int_list(text, nonnegative_int, "integers >= 0")


def nonnegative_float(text: str) -> float:
    """A finite float >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0."""
    value = nonnegative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got 0")
    return value


def check_writable(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """Make sure a result can be written at ``path`` (its folder is created if needed).

    Raises
    ------
    ValueError
        With a one-line reason, if it cannot.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a directory; give a file name")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the folder of {flag} {path}: {err.strerror}") from None
    try:  # the only reliable test (root passes os.access on read-only mounts)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write {flag} {path}: {err.strerror}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"cannot write {flag} {path}: permission denied")
    return path


def output_path(text: str) -> Path:
    """A result file that can be written (see :func:`check_writable`)."""
    try:
        return check_writable(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_evaluation_flags(parser: argparse.ArgumentParser, steps: int, workers: int) -> None:
    """Add the flags of the evaluation scripts: ``--eval-seed`` (the episodes' noise, the
    same for every controller), ``--steps`` (episode length) and ``--workers``
    (parallel processes)."""
    parser.add_argument(
        "--eval-seed",
        type=nonnegative_int,
        default=0,
        help="seed of the evaluation episodes' noise (the same for every controller); default 0",
    )
    parser.add_argument(
        "--steps", type=positive_int, default=steps, help="episode length; default %(default)s"
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=workers,
        help="parallel processes; default %(default)s (the number of cores)",
    )


def add_baseline_flags(
    parser: argparse.ArgumentParser, scenarios: Sequence[int], solver: str, out: str
) -> None:
    """Add the flags of the baseline scripts (defaults given): ``--scenarios`` (the
    scenario MPC's scenario counts), ``--seed`` (its draws), ``--solver`` and ``--out``."""
    default = ",".join(str(k) for k in scenarios)
    parser.add_argument(
        "--scenarios",
        type=positive_int_list,
        default=list(scenarios),
        help=f"scenario counts K of the scenario MPC, comma-separated; default {default}",
    )
    parser.add_argument(
        "--seed", type=nonnegative_int, default=1, help="seed of the scenario draws; default 1"
    )
    parser.add_argument(
        "--solver",
        choices=SOLVER_CHOICES,
        default=solver,
        help="solver of the MPCs' QPs; default %(default)s",
    )
    parser.add_argument(
        "--out", type=output_path, default=out, help="result file; default %(default)s"
    )


#: The valued flags of :func:`add_training_flags`: flag, type, help (the default is the
#: config field's of the same name).
_TRAINING_FLAGS: tuple[tuple[str, Callable[[str], Any], str], ...] = (
    ("--seed", nonnegative_int, "seed of the run (env noise, exploration, replay)"),
    ("--admm-iters", positive_int, "ADMM iteration cap"),
    (
        "--admm-tol",
        nonnegative_float,
        "ADMM primal-residual tolerance, 0 runs exactly --admm-iters "
        "(the release: --admm-iters 50 --admm-tol 0)",
    ),
    ("--admm-dual-tol", nonnegative_float, "ADMM dual-residual tolerance"),
    (
        "--admm-memory",
        nonnegative_int,
        "memory of the Anderson acceleration of ADMM, 0 is plain ADMM (only with a tolerance)",
    ),
    ("--consensus-iters", nonnegative_int, "average-consensus iterations"),
)


def add_training_flags(
    parser: argparse.ArgumentParser,
    defaults: TrainingConfig,
    checkpoint_unit: str,
) -> None:
    """Add the flags every training script has (defaults from ``defaults``): ``--seed``,
    ``--centralized``, ``--out``, ``--solver``, ``--admm-iters``, ``--admm-tol``,
    ``--admm-dual-tol``, ``--admm-memory``, ``--consensus-iters``, ``--check-centralized``,
    ``--no-progress``, and ``--checkpoint-every`` (in ``checkpoint_unit``),
    ``--checkpoint`` and ``--resume``."""
    for flag, kind, text in _TRAINING_FLAGS:
        default = getattr(defaults, flag[2:].replace("-", "_"))
        parser.add_argument(flag, type=kind, default=default, help=f"{text}; default {default}")
    parser.add_argument(
        "--solver",
        choices=SOLVER_CHOICES,
        default=defaults.solver,
        help=f"solver of the MPCs; default {defaults.solver}",
    )
    parser.add_argument(
        "--out", default=None, help="result pickle; default runs/<example>_<mode>_seed<seed>.pkl"
    )
    parser.add_argument(
        "--centralized",
        action="store_true",
        help="learn with the centralized MPC (mpcrl's LSTD Q-learning)",
    )
    parser.add_argument(
        "--check-centralized",
        action="store_true",
        help="also solve the centralized MPC at every distributed solve and "
        "record the V, Q and multiplier gaps",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--checkpoint-every",
        type=nonnegative_int,
        default=defaults.checkpoint_every,
        help=f"save the run's state every this many {checkpoint_unit} (0: only on Ctrl-C); "
        f"default {defaults.checkpoint_every}",
    )
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


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """What a training script was asked to do.

    Attributes
    ----------
    config : TrainingConfig
        The run's settings (a resumed run's are its checkpoint's).
    out : Path
        The result file.
    progress : bool
        Whether to show the progress bar.
    checkpoint : Path
        The checkpoint file.
    resume : dict or None
        The checkpoint to continue from (a checkpoint file's contents).
    """

    config: Any
    out: Path
    progress: bool
    checkpoint: Path
    resume: dict[str, Any] | None = None


def checkpoint_path(out: Path) -> Path:
    """The default checkpoint file of the result file ``out``."""
    return out.with_name(out.name.removesuffix(".pkl") + ".checkpoint.pkl")


def parse_training_args(
    parser: argparse.ArgumentParser,
    config_type: type[ConfigT],
    example: str,
    argv: Sequence[str] | None = None,
) -> TrainingRun:
    """Parse ``argv`` with a parser of :func:`add_training_flags`: the config (every flag
    named like a field sets it, or with ``--resume`` the checkpoint's), the checked output
    path (default ``runs/<example>_<mode>_seed<seed>.pkl``, or the checkpoint's) and the
    checkpoint settings."""
    args = parser.parse_args(argv)
    if args.centralized and args.check_centralized:
        parser.error("--check-centralized applies to distributed runs only")
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(config_type)
        if hasattr(args, f.name)
    }
    resume = None
    if args.resume is None:
        config = config_type(**given)
        out = args.out or f"runs/{example}_{config.mode}_seed{config.seed}.pkl"
    else:
        resume = _read_checkpoint(parser, args.resume, example)
        try:
            config = config_type(**resume["config"])
        except TypeError as err:
            parser.error(f"{args.resume} holds settings this version does not know ({err})")
        defaults = parser.parse_args([])
        for name, value in given.items():
            if value != getattr(defaults, name) and value != getattr(config, name):
                flag = "--" + name.replace("_", "-")
                parser.error(
                    f"--resume continues the run with its own settings: {flag} {value} "
                    f"differs from the checkpoint's {getattr(config, name)}"
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


def _read_checkpoint(parser: argparse.ArgumentParser, path: Path, example: str) -> dict[str, Any]:
    try:
        data = load_result(path)
    except ResultFileError as err:
        parser.error(f"--resume: {err}")
    if data.get("kind") != "checkpoint":
        parser.error(f"--resume: {path} is not a checkpoint (its kind is {data.get('kind')!r})")
    if data.get("example") != example:
        parser.error(
            f"--resume: {path} is a checkpoint of {data.get('example')!r}, not {example!r}"
        )
    missing = [k for k in ("config", "out", "training") if k not in data]
    if missing:
        parser.error(f"--resume: {path} lacks {', '.join(missing)}")
    return data


@contextlib.contextmanager
def quiet_solvers() -> Iterator[None]:
    """Discard what is printed to ``sys.stdout`` inside the block.

    CasADi routes its plugins' output through ``sys.stdout``; qpOASES prints its licence
    at every solver construction and first solve. Scripts build and train inside this
    block (their progress bar writes to stderr) and print their summary after it.
    """
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


class TrainingProgress:
    """A progress bar over training steps showing the running mean cost and TD error.

    Parameters
    ----------
    total : int
        Number of steps.
    cost_of_last_step : callable
        Returns the cost of the step just taken.
    enabled : bool
        ``False`` shows nothing.
    initial : int
        Steps already done (a resumed run).
    """

    def __init__(
        self,
        total: int,
        cost_of_last_step: Callable[[], float],
        enabled: bool = True,
        initial: int = 0,
    ) -> None:
        self._bar = tqdm(
            total=total,
            initial=initial,
            unit="step",
            disable=not enabled,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        self._cost = cost_of_last_step
        self._cost_sum = 0.0
        self._abs_td_sum = 0.0
        self._n = 0

    def __call__(self, td_error: float) -> None:
        self._n += 1
        self._cost_sum += self._cost()
        self._abs_td_sum += abs(td_error)
        self._bar.set_postfix(
            cost=f"{self._cost_sum / self._n:.3g}",
            td=f"{td_error:+.3g}",
            mean_abs_td=f"{self._abs_td_sum / self._n:.3g}",
            refresh=False,
        )
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
