"""Property-based tests (hypothesis) of what guards the user's input and files: the config
validation against an oracle written from docs/cli.md, the flags' parsing, the
checkpoint validation, and the data-safety rule of :mod:`marl_dmpc.files`."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marl_dmpc.checkpoints import CHECKPOINT_FORMAT, CheckpointError, validate_checkpoint
from marl_dmpc.cli import flag_name, parse_config
from marl_dmpc.config import NEWTON_VARIANTS, OPTIMIZERS, UPDATE_HOOKS, ConfigError
from marl_dmpc.files import OutputError, Outputs
from marl_dmpc.solvers import SOLVER_CHOICES
from reproduction.example_1 import example_1
from reproduction.example_1.config import Example1Config


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v):
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


#: The oracle: what each setting may be (docs/cli.md, written apart from the code).
VALID = {
    **dict.fromkeys(
        ["steps", "admm_iters", "update_every", "replay_maxlen", "replay_sample_size", "horizon"],
        lambda v: _int(v) and v > 0,
    ),
    **dict.fromkeys(
        [
            "admm_memory",
            "replay_include_latest",
            "seed",
            "consensus_iters",
            "checkpoint_every",
            "diverge_admm_cap_solves",
        ],
        lambda v: _int(v) and v >= 0,
    ),
    "diverge_state_steps": lambda v: _int(v) and v > 0,
    "rho": lambda v: _number(v) and v > 0,
    **dict.fromkeys(
        [
            "admm_tol",
            "admm_dual_tol",
            "learning_rate",
            "exploration_strength",
            "diverge_parameter_factor",
            "diverge_td_error",
            "diverge_state_factor",
            "td_clip",
            "max_update",
            "parameter_box",
        ],
        lambda v: _number(v) and v >= 0,
    ),
    **dict.fromkeys(
        ["learning_rate_decay", "epsilon_decay", "discount"], lambda v: _number(v) and 0 < v <= 1
    ),
    "epsilon": lambda v: _number(v) and 0 <= v <= 1,
    "centralized": lambda v: isinstance(v, bool),
    "check_centralized": lambda v: isinstance(v, bool),
    "stabilized": lambda v: isinstance(v, bool),
    "solver": lambda v: v in SOLVER_CHOICES,
    "update_hook": lambda v: v in UPDATE_HOOKS,
    "optimizer": lambda v: v in OPTIMIZERS,
    "newton_tau": lambda v: _number(v) and v > 0,
    "newton_variant": lambda v: v in NEWTON_VARIANTS,
    "newton_definite": lambda v: isinstance(v, bool),
}

VALUES = st.one_of(
    st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1),
    st.booleans(),
    st.sampled_from([*SOLVER_CHOICES, *UPDATE_HOOKS, *OPTIMIZERS, *NEWTON_VARIANTS, "", "x"]),
    st.none(),
)


def test_the_oracle_covers_every_setting():
    assert set(VALID) == {f.name for f in dataclasses.fields(Example1Config)}


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(VALID)), VALUES, max_size=4))
def test_config_accepts_exactly_the_valid_values(changes):
    values = {**dataclasses.asdict(Example1Config()), **changes}
    bad = {name for name, value in values.items() if not VALID[name](value)}
    # a relation between two valid values may be reported before another bad value
    replay = ("replay_include_latest", "replay_sample_size")
    if not bad & set(replay) and values[replay[0]] > values[replay[1]]:
        bad.add("replay_include_latest")
    if not bad & {"centralized", "check_centralized"}:
        if values["centralized"] and values["check_centralized"]:
            bad.add("check_centralized")
    if bad:
        with pytest.raises(ConfigError) as info:
            Example1Config(**values)
        assert info.value.field in bad and str(info.value).startswith(info.value.field)
    else:
        config = Example1Config(**values)
        assert dataclasses.asdict(config) == values


def _parse(argv):
    """The config of ``argv`` (no files touched), or the exit code and stderr."""
    parser = example_1.EXAMPLE.parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parse_config(parser, Example1Config, parser.parse_args(argv))[0], None
    except SystemExit as exit_:
        return exit_.code, err.getvalue()


NUMERIC = [
    f.name for f in dataclasses.fields(Example1Config) if f.type in ("int", "float", int, float)
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(NUMERIC),
    st.one_of(
        st.integers(-5, 10**6).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(max_size=6),
    ),
)
def test_a_flag_accepts_exactly_the_valid_values(name, text):
    kind = {f.name: f.type for f in dataclasses.fields(Example1Config)}[name]
    try:
        value = int(text) if kind in ("int", int) else float(text)
    except ValueError:
        value = None
    config, err = _parse([flag_name(name), text])
    default = dataclasses.asdict(Example1Config())
    valid = value is not None and VALID[name](value)
    if valid and name == "replay_include_latest":
        valid = value <= default["replay_sample_size"]
    if valid and name == "replay_sample_size":
        valid = value >= default["replay_include_latest"]
    if valid:
        assert err is None and getattr(config, name) == value
    else:
        assert config == 2, config
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err
        assert flag_name(name) in lines[0] or "--replay" in lines[0], lines[0]


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--replay-sample-size", "1"], "--replay-sample-size"),
        (["--replay-include-latest", "16"], "--replay-include-latest"),
    ],
)
def test_a_conflict_between_settings_names_the_flag_that_was_given(argv, flag):
    """The replay's latest transitions must fit its sample: whichever of the two flags
    breaks that with the other's default, the one line names it (a case Hypothesis found
    in a fresh-clone CI run)."""
    config, err = _parse(argv)
    assert config == 2
    assert err.strip().splitlines()[-1].startswith(f"example_1.py: error: argument {flag}: "), err


def _checkpoint() -> dict:
    config = dataclasses.asdict(Example1Config())
    position = {"episode": 0, "timestep": 4, "steps": 4}
    learner = dict.fromkeys(["parameters", "optimizers", "exploration", "experience", "log"], {})
    return {
        "kind": "checkpoint",
        "format": CHECKPOINT_FORMAT,
        "example": "example_1",
        "fingerprint": "0" * 16,
        "config": config,
        "out": "r.pkl",
        "steps_completed": 4,
        "wall_time_s": 1.5,
        "training": {"position": position, "rng": {}, "env": {}, "learner": learner},
    }


ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
PLACES = [
    ("kind",),
    ("format",),
    ("example",),
    ("fingerprint",),
    ("config",),
    ("out",),
    ("steps_completed",),
    ("wall_time_s",),
    ("training",),
    ("training", "position"),
    ("training", "learner"),
    ("training", "position", "steps"),
    ("training", "position", "episode"),
    ("training", "learner", "experience"),
]


def test_a_valid_checkpoint_passes():
    validate_checkpoint(_checkpoint(), "example_1")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PLACES), ANY, st.booleans()), min_size=1, max_size=3))
def test_checkpoint_validation_raises_only_its_one_line_error(changes):
    data = _checkpoint()
    for place, value, delete in changes:
        target = data
        for key in place[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        if delete:
            target.pop(place[-1], None)
        else:
            target[place[-1]] = value
    try:
        validate_checkpoint(data, "example_1")
    except CheckpointError as err:
        assert "\n" not in str(err) and str(err)


NAMES = st.sampled_from(["a.pkl", "b.pkl", "sub/c.pkl", "d.txt"])
ACTIONS = st.lists(
    st.tuples(st.sampled_from(["claim", "write", "remove"]), NAMES, st.binary(max_size=8)),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(st.sets(NAMES), ACTIONS, st.booleans())
def test_outputs_never_touch_a_file_they_did_not_create(existing, actions, overwrite):
    """Claims, writes and removals in any order: a file the outputs never wrote keeps its
    bytes (it is never deleted, even with overwrite); one they wrote holds what they
    wrote last, or is gone if they removed it; a write is refused only on a file that
    was there before and without overwrite."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name in existing:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(name.encode())
        outputs = Outputs(overwrite)
        last: dict[str, bytes | None] = {}  # what the outputs wrote last (None: removed)
        for action, name, data in actions:
            path = root / name
            refusable = name in existing and not overwrite and name not in last
            try:
                if action == "claim":
                    outputs.claim(path)
                elif action == "write":
                    outputs.write(path, data)
                    last[name] = data
                elif outputs.remove(path):
                    last[name] = None
                else:
                    assert name not in last or last[name] is None
            except OutputError:
                assert refusable
        for name in existing - set(last):
            assert (root / name).read_bytes() == name.encode(), name
        for name, data in last.items():
            assert (
                (root / name).read_bytes() == data
                if data is not None
                else not (root / name).exists()
            )
