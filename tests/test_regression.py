"""Seed-1 short runs of both examples and both learners against the committed reference
(:mod:`tests.regression`): to the measured cross-kernel tolerance on any CPU, to the
last bit under the reference's own OpenBLAS kernel, and the same run twice on one
machine identical to the last bit (docs/reproducibility.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from marl_dmpc.results import blas_kernel, load_result
from tests.helpers import ROOT
from tests.regression import (
    ADMM_ITERATIONS_RTOL,
    FIELDS,
    RUNS,
    differences,
    read_reference,
    run,
    tolerance,
)


@pytest.fixture(scope="module")
def reference():
    return read_reference()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every reference run, once per test session."""
    folder = tmp_path_factory.mktemp("regression")
    return {name: run(name, folder) for name in RUNS}


@pytest.mark.parametrize("name", list(RUNS))
def test_run_matches_the_reference_within_the_cross_kernel_tolerance(name, reference, runs):
    expected, arrays = reference[1][name], runs[name]
    assert sorted(arrays) == sorted(expected)
    for key, gap in differences(arrays, expected).items():
        assert arrays[key].shape == expected[key].shape, key
        assert arrays[key].dtype == expected[key].dtype, key
        limit = ADMM_ITERATIONS_RTOL if key == "admm_iterations" else tolerance(key)
        assert gap <= limit, f"{name}: {key} is {gap:.3g} from the reference (tolerance {limit:g})"


@pytest.mark.parametrize("name", list(RUNS))
def test_run_matches_the_reference_bit_for_bit_under_its_kernel(name, reference, runs):
    kernel, expected = reference[0], reference[1][name]
    if blas_kernel() != kernel:
        pytest.skip(f"OpenBLAS runs the {blas_kernel()} kernel; the reference's is {kernel}")
    for key, value in expected.items():
        np.testing.assert_array_equal(runs[name][key], value, err_msg=f"{name}: {key}")


def test_the_tolerances_catch_a_one_percent_change_of_the_learning_rate(reference, tmp_path):
    """The tolerances are loose enough for any kernel, yet a change of the method as
    small as a learning rate 1 % higher moves the run far outside them."""
    from reproduction.example_1.example_1 import main

    out = tmp_path / "lr.pkl"
    argv = ["--steps", "60", "--seed", "1", "--learning-rate", "6.06e-5", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    result = load_result(out)
    arrays = {field: np.asarray(result[field]) for field in FIELDS}
    arrays.update({f"params/{k}": np.asarray(v) for k, v in result["params"].items()})
    gaps = differences(arrays, reference[1]["example_1_distributed"])
    ratios = {k: gap / tolerance(k) for k, gap in gaps.items() if k != "admm_iterations"}
    assert max(ratios.values()) > 1000, ratios


@pytest.mark.parametrize("name", ["example_1_distributed", "power_system_distributed"])
def test_the_same_run_twice_is_identical_to_the_last_bit(name, runs, tmp_path):
    """The documented command, in a fresh process, repeats this process's run exactly."""
    example, flags = RUNS[name]
    script = {"example_1": "example_1/example_1.py"}.get(
        example, "power_system/q_learning_power.py"
    )
    out = tmp_path / "again.pkl"
    command = [sys.executable, script, *flags, "--seed", "1", "--no-progress", "--out", str(out)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=dict(os.environ))
    again = load_result(out)
    for field in FIELDS:
        np.testing.assert_array_equal(again[field], runs[name][field], err_msg=field)
    for key, value in again["params"].items():
        np.testing.assert_array_equal(value, runs[name][f"params/{key}"], err_msg=key)
