"""Short seeded training runs of both examples and both learners, compared with a
committed reference (``tests/data/regression.npz``).

The reference was written under one OpenBLAS kernel (stored in it as
``meta:blas_kernel``). Under that kernel a run reproduces it to the last bit; under any
other kernel (another CPU, or ``OPENBLAS_CORETYPE``) the products and solves round
differently and the runs agree only to :data:`TOLERANCES`, which are ten times the largest
difference measured between the kernels that every x86-64 CPU can run
(docs/reproducibility.md gives the table).

    python -m tests.regression                 # rewrite the reference (under this kernel)
    python -m tests.regression --drift         # measure the drift between kernels

Rewrite the reference only for a change that is meant to change the numbers, say why in
its commit, and write it under the kernel that wrote ``data/`` (docs/reproducibility.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from marl_dmpc.results import blas_kernel, load_result

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

#: The kernels the drift is measured under by default: the reference's (Haswell), an
#: AVX-512 one, and two that every x86-64 CPU can run.
KERNELS = ("Haswell", "SkylakeX", "Sandybridge", "Prescott")

#: Largest absolute difference from the reference that a run under another kernel may
#: show, per field (``params`` for every parameter history). Ten times the largest drift
#: measured by ``python -m tests.regression --drift`` over :data:`KERNELS` on an
#: AVX-512 Xeon before ADMM was compiled (example 1 distributed in every case; the
#: centralized learners and the power system drift by 4e-9 or less): states 1.6e-7,
#: actions 9.7e-7, costs 1.1e-6, TD errors 1.1e-6, episode costs 1.7e-6, parameters
#: 4.9e-10. Measured again with the compiled ADMM (whose kernels call no BLAS), Haswell
#: and SkylakeX agree to the last bit and Sandybridge and Prescott drift by the same
#: amounts (states 1.6e-7, actions 1.0e-6, TD errors 1.2e-6, episode costs 1.8e-6,
#: parameters 5.4e-10, ADMM iterations per solve 7.6 %), through the learners' NumPy
#: arithmetic: a last-bit difference in the parameters moves where an ADMM solve crosses
#: its tolerance (3e-8), and the local solutions differ at the level it leaves.
TOLERANCES = {
    "states": 2e-6,
    "actions": 1e-5,
    "costs": 1e-5,
    "td_errors": 1e-5,
    "episode_costs": 2e-5,
    "params": 5e-9,
}

#: How far the mean ADMM iterations per solve may be from the reference's, relative.
#: The count of a solve is an integer that a rounding can move by tens (measured: up to
#: 100 of 168 in one solve), but the mean over the run's 90 solves moved by 4.3 % at most.
ADMM_ITERATIONS_RTOL = 0.15


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


def read_reference() -> tuple[str, dict[str, dict[str, np.ndarray]]]:
    """The reference's kernel and, per run, its arrays."""
    with np.load(REFERENCE, allow_pickle=False) as data:
        kernel = str(data["meta:blas_kernel"])
        arrays: dict[str, dict[str, np.ndarray]] = {name: {} for name in RUNS}
        for key in data.files:
            name, _, field = key.partition(":")
            if name in arrays:
                arrays[name][field] = data[key]
    return kernel, arrays


def tolerance(field: str) -> float:
    """The cross-kernel tolerance of one compared array."""
    return TOLERANCES["params" if field.startswith("params/") else field]


def differences(arrays: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> dict[str, float]:
    """Per compared array, the largest absolute difference (for ``admm_iterations``,
    the relative difference of the mean per solve)."""
    gaps = {}
    for key, value in expected.items():
        if key == "admm_iterations":
            mean = float(np.mean(value)) if value.size else 0.0
            gaps[key] = abs(float(np.mean(arrays[key])) - mean) / mean if value.size else 0.0
        else:
            diff = np.abs(arrays[key].astype(float) - value.astype(float))
            gaps[key] = float(diff.max()) if diff.size else 0.0
    return gaps


def collect() -> dict[str, np.ndarray]:
    """Every run's arrays under ``<run>:<key>`` keys, and this process's kernel."""
    data = {"meta:blas_kernel": np.array(blas_kernel())}
    with tempfile.TemporaryDirectory() as folder:
        for name in RUNS:
            data.update({f"{name}:{k}": v for k, v in run(name, Path(folder)).items()})
    return data


def write_reference() -> None:
    data = collect()
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE, **data)
    print(f"wrote {len(data) - 1} arrays to {REFERENCE} (kernel {blas_kernel()})")


def measure_drift(kernels: list[str]) -> None:
    """Run every reference run under each kernel (a process each) and print the largest
    difference from the reference per field, beside its tolerance."""
    _, reference = read_reference()
    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for kernel in kernels:
            path = Path(folder) / f"{kernel}.npz"
            env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
            command = [sys.executable, "-m", "tests.regression", "--dump", str(path)]
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            with np.load(path, allow_pickle=False) as data:
                reported = str(data["meta:blas_kernel"])  # Prescott reports Katmai
                ran = kernel if reported == kernel else f"{kernel} ({reported})"
                for name, expected in reference.items():
                    arrays = {k: data[f"{name}:{k}"] for k in expected}
                    for key, gap in differences(arrays, expected).items():
                        field = "params" if key.startswith("params/") else key
                        row = table.setdefault(f"{name}: {field}", {})
                        row[ran] = max(row.get(ran, 0.0), gap)
    ran_kernels = list(dict.fromkeys(k for row in table.values() for k in row))
    print("| run: field | " + " | ".join(ran_kernels) + " | tolerance |")
    print("|---" * (len(ran_kernels) + 2) + "|")
    for key, row in table.items():
        field = key.split(": ")[1]
        limit = ADMM_ITERATIONS_RTOL if field == "admm_iterations" else TOLERANCES[field]
        cells = " | ".join(f"{row.get(k, float('nan')):.2g}" for k in ran_kernels)
        print(f"| {key} | {cells} | {limit:g} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.regression", description=__doc__)
    parser.add_argument("--drift", action="store_true", help="measure the drift between kernels")
    parser.add_argument("--kernels", default=",".join(KERNELS), help="kernels for --drift")
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dump:  # one kernel's part of --drift
        np.savez(args.dump, **collect())
    elif args.drift:
        measure_drift(args.kernels.split(","))
    else:
        write_reference()
    return 0


if __name__ == "__main__":
    sys.exit(main())
