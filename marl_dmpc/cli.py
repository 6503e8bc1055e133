"""Command lines generated from the config dataclasses.

Every field of an example's config (:class:`~marl_dmpc.config.TrainingConfig` and its
subclass) is a flag: ``--admm-iters`` sets ``admm_iters``, a ``bool`` field is
``--centralized`` / ``--no-centralized``, and the help text is the field's entry in the
``Attributes`` section of its class's docstring, with its default. A run's settings are,
from lowest to highest precedence: the config's defaults, a TOML file (``--config``) or a
result file's config (``--config-from``, to repeat a run), and the flags given.

Bad input ends with one line on stderr and exit code 2 (:class:`OneLineArgumentParser`);
a range check of the config (:class:`~marl_dmpc.config.ConfigError`) names the flag.
The plain validators (:func:`positive_int`, ...) serve the flags that are not config
fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import tomllib
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import numpy as np

from .config import UPDATE_HOOKS, ConfigError, TrainingConfig, apply_presets
from .results import ResultFileError, load_result
from .solvers import SOLVER_CHOICES

ConfigT = TypeVar("ConfigT", bound=TrainingConfig)

#: The allowed values of the config fields that have a fixed set of them.
CHOICES: dict[str, Sequence[str]] = {"solver": SOLVER_CHOICES, "update_hook": UPDATE_HOOKS}


class OneLineArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` to stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


# ----------------------------------------------------------------------- validators
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
        raise argparse.ArgumentTypeError("expected a finite number > 0, got 0")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


# ------------------------------------------------------ flags of the evaluation scripts
def add_evaluation_flags(
    parser: argparse.ArgumentParser, steps: int, workers: int, out: str, episodes: int
) -> None:
    """Add the flags of the evaluation and baseline scripts: ``--episodes`` (how many;
    episode ``e`` has the noise of seed ``eval_seed + e``), ``--eval-seed`` (the
    episodes' noise, the same for every controller), ``--steps`` (episode length),
    ``--workers`` (parallel processes) and those of :func:`add_output_flags`."""
    parser.add_argument(
        "--episodes",
        type=positive_int,
        default=episodes,
        help="evaluation episodes (episode e: the noise of seed eval_seed + e); "
        "default %(default)s",
    )
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
    add_output_flags(parser, out)


def add_output_flags(parser: argparse.ArgumentParser, out: str) -> None:
    """Add ``--out`` (the result file; ``out`` describes its default) and
    ``--overwrite``."""
    parser.add_argument(
        "--out",
        default=None,
        help=f"result file; default {out}, or with _2, _3, ... if that exists",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing file at --out (without it, nothing is replaced)",
    )


def add_baseline_flags(
    parser: argparse.ArgumentParser, scenarios: Sequence[int], solver: str
) -> None:
    """Add the flags of the baseline scripts (defaults given): ``--scenarios`` (the
    scenario MPC's scenario counts), ``--seed`` (its draws) and ``--solver``."""
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


def benchmark_parser(
    prog: str, doc: str, length: str, default: int, what: str
) -> OneLineArgumentParser:
    """The command line of a benchmark script: its run length (flag ``length``, a
    positive integer, ``what`` it counts) and ``--seed``."""
    parser = OneLineArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument(
        length, type=positive_int, default=default, help=f"{what}; default %(default)s"
    )
    parser.add_argument(
        "--seed", type=nonnegative_int, default=1, help="the runs' seed; default %(default)s"
    )
    return parser


# --------------------------------------------------------------- flags from a config
def flag_name(field: str) -> str:
    """The command-line flag of a config field (``admm_iters`` -> ``--admm-iters``)."""
    return "--" + field.replace("_", "-")


def field_docs(config_type: type) -> dict[str, str]:
    """Every field's description, from the ``Attributes`` sections of the NumPy-style
    docstrings of ``config_type`` and its bases (the most derived class wins)."""
    docs: dict[str, str] = {}
    for cls in reversed(config_type.__mro__):
        doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        match = re.search(r"^Attributes\n-+\n(.*?)(?:\n\S[^\n]*\n-+\n|\Z)", doc, re.S | re.M)
        if not match:
            continue
        names: list[str] = []
        for line in match.group(1).splitlines():
            if line and not line[0].isspace():
                names = [n.strip() for n in line.split(":")[0].split(",")]
                for name in names:
                    docs[name] = ""
            elif line.strip():
                for name in names:
                    docs[name] = f"{docs[name]} {line.strip()}".strip()
    return docs


def _field_types(config_type: type) -> dict[str, Any]:
    return typing.get_type_hints(config_type)


def add_config_flags(parser: argparse.ArgumentParser, config_type: type[TrainingConfig]) -> None:
    """Add one flag per field of ``config_type``, in one group per class that declares
    fields (the example's own first, titled by the first line of its docstring). Only
    given values are set: the defaults are applied by :func:`parse_config` and shown in
    the help."""
    docs = field_docs(config_type)
    preset = ", ".join(f"{k} {v:g}" for k, v in config_type.stabilized_preset.items())
    docs["stabilized"] = f"{docs.get('stabilized', '')} This example's preset: {preset}."
    types = _field_types(config_type)
    defaults = _defaults(config_type)
    owner: dict[str, type] = {}  # the base-most class declaring each field
    for cls in reversed(config_type.__mro__):
        for name in cls.__dict__.get("__annotations__", {}):
            owner.setdefault(name, cls)
    for cls in config_type.__mro__:
        own = [f.name for f in dataclasses.fields(config_type) if owner[f.name] is cls]
        if not own:
            continue
        group = parser.add_argument_group(cls.__dict__.get("flag_group", cls.__name__))
        for name in own:
            _add_field_flag(group, name, types[name], docs.get(name, ""), defaults)


def _add_field_flag(
    group: Any, name: str, kind: type, text: str, defaults: Mapping[str, Any]
) -> None:
    if name in defaults:
        text += f" (default: {defaults[name]})"
    common: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": text}
    if kind is bool:
        group.add_argument(flag_name(name), action=argparse.BooleanOptionalAction, **common)
        return
    convert = {int: _integer, float: _number, str: str}[kind]
    group.add_argument(
        flag_name(name),
        type=convert,
        choices=CHOICES.get(name),
        metavar=None if name in CHOICES else kind.__name__.upper(),
        **common,
    )


def _defaults(config_type: type) -> dict[str, Any]:
    return {
        f.name: f.default
        for f in dataclasses.fields(config_type)
        if f.default is not dataclasses.MISSING
    }


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML file (``field = value`` lines, at the top level or in a
    ``[config]`` table).

    Raises
    ------
    ValueError
        With a one-line reason, if the file cannot be read.
    """
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from None
    return dict(data.get("config", data))


def read_result_config(path: Path) -> dict[str, Any]:
    """The config recorded in a result or checkpoint file."""
    try:
        data = load_result(path)
    except ResultFileError as err:
        raise ValueError(str(err)) from None
    config = data.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{path} records no config")
    return dict(config)


def make_config(
    config_type: type[ConfigT], values: Mapping[str, Any], origin: Mapping[str, str]
) -> ConfigT:
    """``config_type(**values)``; a bad or unknown value raises :class:`ValueError` with
    one line naming where it came from (``origin``: field -> flag or file). With
    ``stabilized`` true, the example's stabilized preset fills the safeguards not given
    (:func:`~marl_dmpc.config.apply_presets`)."""
    values = apply_presets(dict(values), config_type.stabilized_preset)
    known = {f.name for f in dataclasses.fields(config_type)}
    unknown = sorted(set(values) - known)
    if unknown:
        where = origin.get(unknown[0], "the settings")
        raise ValueError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    types = _field_types(config_type)
    for name, value in values.items():
        kind = types[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ValueError(
                f"{origin.get(name, name)}: {name} must be a {kind.__name__}; got {value!r}"
            )
    try:
        return config_type(**{k: float(v) if types[k] is float else v for k, v in values.items()})
    except ConfigError as err:
        # name where the value came from: of the settings in conflict, one that was given
        where = next((origin[f] for f in err.fields if f in origin), err.field)
        raise ValueError(f"{where}: {err}") from None


def add_config_sources(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE`` (TOML) and ``--config-from RESULT`` (a result file's
    config)."""
    sources = parser.add_mutually_exclusive_group()
    sources.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="read settings from a TOML file (field = value); flags given override them",
    )
    sources.add_argument(
        "--config-from",
        type=Path,
        metavar="RESULT",
        help="repeat the run of a result file: its settings; flags given override them",
    )


def parse_config(
    parser: argparse.ArgumentParser, config_type: type[ConfigT], args: argparse.Namespace
) -> tuple[ConfigT, dict[str, Any]]:
    """The config of parsed ``args`` (defaults, then ``--config``/``--config-from``, then
    the flags given) and the settings given explicitly (by the file or a flag; the
    others are defaults). Errors end the program through ``parser.error``."""
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(config_type)
        if hasattr(args, f.name)
    }
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    try:
        if getattr(args, "config", None) is not None:
            values = read_config_file(args.config)
            origin = dict.fromkeys(values, f"--config {args.config}")
        elif getattr(args, "config_from", None) is not None:
            values = read_result_config(args.config_from)
            origin = dict.fromkeys(values, f"--config-from {args.config_from}")
    except ValueError as err:
        parser.error(str(err))
    values.update(given)
    origin.update({name: f"argument {flag_name(name)}" for name in given})
    try:
        return make_config(config_type, values, origin), values
    except ValueError as err:
        parser.error(str(err))
