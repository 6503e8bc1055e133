"""Short seeded training runs whose every recorded array is compared, bit for bit, with
a committed reference (``tests/data/regression.npz``).

``python -m tests.regression`` rewrites the reference: do that only for a change that
is meant to change the numbers, and say why in its commit.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from marl_dmpc.results import load_result

REFERENCE = Path(__file__).parent / "data" / "regression.npz"

#: name: (example, extra flags); every run has seed 1.
RUNS = {
    "example_1_distributed": ("example_1", ["--steps", "60"]),
    "example_1_centralized": ("example_1", ["--steps", "60", "--centralized"]),
    "power_system_distributed": ("power_system", ["--episodes", "1"]),
    "power_system_centralized": ("power_system", ["--episodes", "1", "--centralized"]),
}

#: The result fields compared.
FIELDS = ("states", "actions", "costs", "td_errors", "episode_costs", "admm_iterations")


def _main(example: str):
    if example == "example_1":
        from reproduction.example_1.example_1 import main
    else:
        from reproduction.power_system.q_learning_power import main
    return main


def run(name: str, folder: Path) -> dict[str, np.ndarray]:
    """The compared arrays of the run ``name``, flattened to ``field`` and
    ``params/<name>`` keys."""
    example, flags = RUNS[name]
    out = folder / f"{name}.pkl"
    code = _main(example)([*flags, "--seed", "1", "--no-progress", "--out", str(out)])
    if code != 0:
        raise RuntimeError(f"{name} exited with {code}")
    result = load_result(out)
    arrays = {field: np.asarray(result[field]) for field in FIELDS}
    arrays.update({f"params/{k}": np.asarray(v) for k, v in result["params"].items()})
    return arrays


def write_reference() -> None:
    data = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in RUNS:
            for key, value in run(name, Path(folder)).items():
                data[f"{name}:{key}"] = value
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE, **data)
    print(f"wrote {len(data)} arrays to {REFERENCE}")


if __name__ == "__main__":
    write_reference()
    sys.exit(0)
