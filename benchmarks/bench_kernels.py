"""Example 1's speed under each OpenBLAS kernel: what pinning a kernel costs.

Runs ``example_1/example_1.py`` (the default settings, one seed) under each kernel of
``--kernels`` in a process of its own with ``OPENBLAS_CORETYPE`` set, in ``--rounds``
interleaved rounds (the machine is noisy), and prints per kernel the median over rounds
of the mean ms per step, and its ratio to this machine's own kernel's. The kernels must
run on this CPU (Haswell needs AVX2, SkylakeX AVX-512). Figures only, no pass/fail; why
a kernel matters: docs/reproducibility.md.

    python benchmarks/bench_kernels.py [--kernels Haswell,SkylakeX] [--steps 300] [--rounds 3]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from marl_dmpc.cli import benchmark_parser, positive_int
from marl_dmpc.results import blas_kernel
from reproduction.benchmarks.bench_example_1 import run


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("bench_kernels.py", __doc__, "--steps", 300, "training steps")
    parser.add_argument(
        "--kernels",
        default="Haswell,SkylakeX",
        help="kernels, comma-separated; default %(default)s",
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=3, help="interleaved rounds; default %(default)s"
    )
    args = parser.parse_args(argv)
    native = blas_kernel()
    kernels = [k for k in args.kernels.split(",") if k]
    if native not in kernels:
        kernels.append(native)
    times: dict[str, list[float]] = {k: [] for k in kernels}
    ran: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for kernel in kernels:
                env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
                name = f"{kernel}_{round_}"
                result = run(name, [], args.steps, args.seed, Path(folder), env)
                ran[kernel] = result["versions"]["blas_kernel"]
                times[kernel].append(1e3 * float(np.mean(result["step_times_s"])))
    print(f"example 1, {args.steps} steps, seed {args.seed}, {args.rounds} rounds")
    print("kernel | ran as | mean ms/step (median of rounds) | ratio to " + native)
    base = float(np.median(times[native]))
    for kernel in kernels:
        ms = float(np.median(times[kernel]))
        print(f"{kernel} | {ran[kernel]} | {ms:.2f} | {ms / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
