"""Example 2: ms per training step, distributed and centralized, and the projected wall
time of the paper's run (100 episodes of 100 steps).

Trains the power system for a few episodes (default 2) in each mode, same seed, default
settings, and prints per mode: ms per step (median and mean), ADMM iterations per solve
(mean, max, solves at the cap), and the wall time that 100 episodes would take at that
mean. Figures only, no pass/fail.

    python benchmarks/bench_power.py [--episodes 2] [--seed 1]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from marl_dmpc.cli import benchmark_parser
from marl_dmpc.envs import StepRecorder
from marl_dmpc.solvers import quiet_solvers
from reproduction.power_system import q_learning_power as script
from reproduction.power_system.config import PowerSystemConfig
from reproduction.power_system.env import PowerSystemEnv

PAPER_EPISODES = 100


def measure(centralized: bool, episodes: int, seed: int) -> dict[str, float]:
    config = PowerSystemConfig(episodes=episodes, seed=seed, centralized=centralized)
    with quiet_solvers():
        learner = script.build_learner(config)
        env = StepRecorder(PowerSystemEnv(max_steps=config.episode_steps))
        ends = [time.perf_counter()]
        learner.train(env, episodes, seed=seed, callback=lambda _: ends.append(time.perf_counter()))
    ms = 1e3 * np.diff(ends)
    its = np.asarray(learner.log.admm_iterations)
    return {
        "median ms/step": float(np.median(ms)),
        "mean ms/step": float(ms.mean()),
        "ADMM its mean": float(its.mean()) if its.size else float("nan"),
        "ADMM its max": int(its.max()) if its.size else 0,
        "solves at the cap": config.solves_at_cap(its),
        "projected 100 episodes min": ms.mean() * PAPER_EPISODES * config.episode_steps / 6e4,
    }


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("bench_power.py", __doc__, "--episodes", 2, "episodes per mode")
    args = parser.parse_args(argv)
    print(f"power system, {args.episodes} episodes per mode, seed {args.seed}")
    rows = {
        "distributed": measure(False, args.episodes, args.seed),
        "centralized": measure(True, args.episodes, args.seed),
    }
    columns = list(rows["distributed"])
    print(" | ".join(["mode", *columns]))
    for mode, row in rows.items():
        print(" | ".join([mode, *(f"{row[c]:.4g}" for c in columns)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
