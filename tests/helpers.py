"""Test helpers."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_example_script():
    """Import example_1/example_1.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(
        "example_1_script", ROOT / "example_1" / "example_1.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
