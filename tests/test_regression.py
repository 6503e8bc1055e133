"""Seed-1 short runs of both examples and both learners give the committed reference
arrays to the last bit (:mod:`tests.regression`)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.regression import REFERENCE, RUNS, run


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("name", list(RUNS))
def test_run_matches_the_committed_reference(name, reference, tmp_path):
    arrays = run(name, tmp_path)
    expected = {k.split(":", 1)[1]: v for k, v in reference.items() if k.startswith(name + ":")}
    assert sorted(arrays) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(arrays[key], value, err_msg=f"{name}: {key}")
        assert arrays[key].dtype == value.dtype, key
