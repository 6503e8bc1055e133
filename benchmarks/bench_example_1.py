"""Example 1: the release's configuration against the project's default, same seed.

Runs ``example_1/example_1.py`` twice in one go, each in its own process (so that peak
memory is the run's own):

(a) the release's configuration: IPOPT, 50 fixed ADMM iterations, the centralized MPC
    solved beside every step (``--solver ipopt --admm-iters 50 --admm-tol 0
    --check-centralized``);
(b) the project's default;
(c) the project's centralized learner (``--centralized``);

and prints for each: ms per training step (median and mean), ADMM iterations per solve
(mean, max; none for the centralized learner), peak memory; then the ratio a/b and the
largest difference between the final parameters of a and b. Figures only, no pass/fail.

    python benchmarks/bench_example_1.py [--steps 300] [--seed 1]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from marl_dmpc.cli import benchmark_parser, fail
from marl_dmpc.results import load_result

ROOT = Path(__file__).resolve().parents[1]

CONFIGURATIONS = {
    "release": [
        "--solver",
        "ipopt",
        "--admm-iters",
        "50",
        "--admm-tol",
        "0",
        "--check-centralized",
    ],
    "default": [],
    "centralized": ["--centralized"],
}


def run(
    name: str, flags: list[str], steps: int, seed: int, folder: Path, env: dict | None = None
) -> dict:
    """The result of ``example_1/example_1.py`` with ``flags`` in a process of its own
    (with the environment ``env``, by default this one's)."""
    out = folder / f"{name}.pkl"
    command = [
        sys.executable,
        str(ROOT / "example_1" / "example_1.py"),
        "--steps",
        str(steps),
        "--seed",
        str(seed),
        "--no-progress",
        "--out",
        str(out),
        *flags,
    ]
    proc = subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["no message"]
        fail(f"the {name} run failed: {lines[-1]}")
    return load_result(out)


def summary(name: str, result: dict) -> dict[str, float]:
    step_ms = 1e3 * result["step_times_s"]
    iterations = np.asarray(result["admm_iterations"], dtype=float)
    return {
        "configuration": name,
        "median ms/step": float(np.median(step_ms)),
        "mean ms/step": float(np.mean(step_ms)),
        "ADMM its mean": float(iterations.mean()) if iterations.size else float("nan"),
        "ADMM its max": int(iterations.max()) if iterations.size else 0,
        "peak MB": float(result["peak_memory_mb"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("bench_example_1.py", __doc__, "--steps", 300, "training steps")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        results = {
            name: run(name, flags, args.steps, args.seed, Path(folder))
            for name, flags in CONFIGURATIONS.items()
        }
    rows = [summary(name, r) for name, r in results.items()]
    print(f"example 1, {args.steps} steps, seed {args.seed}")
    header = list(rows[0])
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()))
    a, b = rows[0], rows[1]  # the release's configuration, the default
    print(f"ratio release/default, mean ms/step: {a['mean ms/step'] / b['mean ms/step']:.1f}")
    print(f"ratio release/default, median ms/step: {a['median ms/step'] / b['median ms/step']:.1f}")
    pa, pb = results["release"]["params"], results["default"]["params"]
    gap = max(float(np.abs(pa[k][-1] - pb[k][-1]).max()) for k in pa)
    print(f"max abs difference of the final parameters: {gap:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
