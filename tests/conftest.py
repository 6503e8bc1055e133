"""Shared fixtures; long reproduction checks run only with ``--runslow``."""

from __future__ import annotations

import contextlib
import io

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long reproduction check; run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def quiet():
    """Swallow solver banners printed through sys.stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield
