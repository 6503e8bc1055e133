"""What a sweep runs: the product of seeds and setting values, and its manifest.

A sweep of an example is a grid of settings (``--set learning_rate=6e-5,3e-5``, any
config field, over a base config) times a list of seeds. Every run has a
*configuration label* (``learning_rate=6e-05``; ``default`` for an empty grid), a seed,
its full config, and two files under the sweep folder:
``<label>/seed<seed>.pkl`` (the result) and ``<label>/seed<seed>.checkpoint.pkl``. The
manifest ``sweep.json`` records what was asked; a sweep folder holds one sweep.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import itertools
import json
import typing
from importlib import metadata
from pathlib import Path
from typing import Any

from ..cli import make_config
from ..driver import TrainingExample
from ..files import Outputs

#: The entry-point group of the examples a sweep can run (pyproject.toml): name -> the
#: module of the example's training script, which holds its ``EXAMPLE``.
EXAMPLES_GROUP = "marl_dmpc.examples"
#: The manifest's name in a sweep folder and the layout's version.
MANIFEST, SWEEP_FORMAT = "sweep.json", 1


class SweepError(ValueError):
    """A sweep cannot be planned or continued; the message is one line."""


def examples() -> dict[str, str]:
    """The examples a sweep can run, by name: the module of each one's training script,
    as the installed packages declare them (entry points of :data:`EXAMPLES_GROUP`; this
    repository's in its pyproject.toml, a researcher's own in theirs)."""
    found = sorted(metadata.entry_points(group=EXAMPLES_GROUP), key=lambda e: e.name)
    return {entry.name: entry.value for entry in found}


def load_example(name: str) -> TrainingExample:
    """The :class:`~marl_dmpc.driver.TrainingExample` of the example ``name``.

    Raises
    ------
    SweepError
        If no installed package declares an example of that name, or its module has no
        ``EXAMPLE``.
    """
    known = examples()
    if name not in known:
        hint = f"one of {', '.join(known)}" if known else "none is installed (pip install -e .)"
        raise SweepError(f"unknown example {name!r}; {hint}")
    example = getattr(importlib.import_module(known[name]), "EXAMPLE", None)
    if not isinstance(example, TrainingExample):
        raise SweepError(f"example {name!r}: module {known[name]} has no EXAMPLE")
    return example


def parse_seeds(text: str) -> list[int]:
    """``"1-20"``, ``"1,3,5-7"`` -> the seeds, in order, without repeats."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            span = range(int(first), int(last or first) + 1)
            seeds += [s for s in span if s not in seeds]
    except ValueError:
        raise SweepError(f"--seeds: expected e.g. 1-20 or 1,3,5-7; got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise SweepError(f"--seeds: expected seeds >= 0; got {text!r}")
    return seeds


def _value(text: str, kind: Any, name: str) -> Any:
    text = text.strip()
    try:
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        return kind(text)
    except ValueError:
        raise SweepError(f"--set {name}: {text!r} is not a {kind.__name__}") from None


def parse_set(text: str, config_type: type) -> tuple[str, list[Any]]:
    """``"learning_rate=6e-5,3e-5"`` -> ``("learning_rate", [6e-05, 3e-05])`` (values
    converted to the field's type)."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    types = typing.get_type_hints(config_type)
    if not sep or not values.strip():
        raise SweepError(f"--set: expected FIELD=V1,V2,...; got {text!r}")
    if name not in {f.name for f in dataclasses.fields(config_type)}:
        raise SweepError(f"--set: {name!r} is not a setting")
    if name == "seed":
        raise SweepError("--set: give seeds with --seeds")
    return name, [_value(v, types[name], name) for v in values.split(",")]


def label(combination: dict[str, Any]) -> str:
    """The configuration label of a grid point (``default`` for none)."""
    return ",".join(f"{k}={v}" for k, v in combination.items()) or "default"


def settings_label(example: str, config: dict[str, Any]) -> str:
    """The settings of a run's ``config`` that differ from the example's defaults, as a
    label (``default`` for none; the seed left out): what a report calls the run's
    configuration, whether a setting came from the sweep's grid or its base
    (``--stabilized``, ``--steps``)."""
    defaults = dataclasses.asdict(load_example(example).config_type())
    changed = {
        name: value
        for name, value in config.items()
        if name != "seed" and name in defaults and value != defaults[name]
    }
    return label(changed)


@dataclasses.dataclass(frozen=True, eq=True)
class PlannedRun:
    """One run of a sweep: its configuration label, seed, config (a dict) and files
    (relative to the sweep folder)."""

    label: str
    seed: int
    config: dict[str, Any]
    result: str
    checkpoint: str


def plan(
    example: str, base: dict[str, Any], grid: dict[str, list[Any]], seeds: list[int]
) -> list[PlannedRun]:
    """Every run of the sweep, grid point by grid point, seed by seed; each config is
    checked (:class:`SweepError` names the bad one)."""
    config_type = load_example(example).config_type
    runs = []
    for values in itertools.product(*grid.values()):
        combination = dict(zip(grid, values, strict=True))
        name = label(combination)
        for seed in seeds:
            settings = {**base, **combination, "seed": seed}
            try:
                config = make_config(config_type, settings, {})
            except ValueError as err:
                raise SweepError(f"{name}, seed {seed}: {err}") from None
            runs.append(
                PlannedRun(
                    name,
                    seed,
                    dataclasses.asdict(config),
                    f"{name}/seed{seed}.pkl",
                    f"{name}/seed{seed}.checkpoint.pkl",
                )
            )
    return runs


def manifest(
    example: str,
    base: dict[str, Any],
    grid: dict[str, list[Any]],
    seeds: list[int],
    eval_episodes: int,
    runs: list[PlannedRun],
) -> dict[str, Any]:
    """The manifest of a sweep (what was asked, and every run's config and files)."""
    return {
        "kind": "sweep",
        "format": SWEEP_FORMAT,
        "example": example,
        "base": base,
        "grid": grid,
        "seeds": seeds,
        "eval_episodes": eval_episodes,
        "runs": [dataclasses.asdict(run) for run in runs],
    }


def default_folder(example: str, runs: list[PlannedRun]) -> Path:
    """``runs/sweeps/<example>_<hash of every run's config>``: the same command gives the
    same folder (so rerunning it continues the sweep), another sweep another one."""
    text = json.dumps([dataclasses.asdict(run) for run in runs], sort_keys=True, default=str)
    return Path("runs") / "sweeps" / f"{example}_{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the sweep folder ``folder``.

    Raises
    ------
    SweepError
        If there is none or it is not a sweep's manifest.
    """
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text())
    except OSError:
        raise SweepError(f"{folder} is not a sweep folder (no {MANIFEST})") from None
    except json.JSONDecodeError:
        raise SweepError(f"{path} is not valid JSON") from None
    if not isinstance(data, dict) or data.get("kind") != "sweep":
        raise SweepError(f"{path} is not a sweep manifest")
    if data.get("format") != SWEEP_FORMAT:
        raise SweepError(f"{path}: sweep format {data.get('format')!r}; this version reads 1")
    if not isinstance(data.get("runs"), list) or not data["runs"]:
        raise SweepError(f"{path} lists no runs")
    try:
        data["runs"] = [PlannedRun(**run) for run in data["runs"]]
    except TypeError:
        raise SweepError(f"{path}: malformed run entries") from None
    return data


def write_or_check_manifest(folder: Path, asked: dict[str, Any]) -> None:
    """Write the manifest of a new sweep, or check that ``folder``'s is the same sweep
    (rerunning a command continues its sweep; another sweep needs another folder)."""
    path = folder / MANIFEST
    text = json.dumps(asked, indent=1, default=str)
    if not path.exists():
        if folder.exists() and any(folder.iterdir()):
            raise SweepError(f"--dir {folder} holds other files; give a new or a sweep folder")
        Outputs().write(path, text.encode())
        return
    existing = read_manifest(folder)
    if json.loads(text)["runs"] != [dataclasses.asdict(r) for r in existing["runs"]]:
        raise SweepError(
            f"--dir {folder} holds another sweep ({existing['example']}, "
            f"{len(existing['runs'])} runs); give another --dir"
        )
