"""How the distributed and centralized Q-evaluations scale with the number of agents.

Builds chains of ``n`` copies of example 1's local system (true plant, learnable MPC at
its initial parameters) and runs a short closed loop from example 1's initial state:
at every step the greedy action of V(s) by ADMM, an exploratory action (that action
plus uniform noise in [-0.5, 0.5], clipped to the input bounds), and Q(s, a) at that
action, both by ADMM (warm-started from the previous solve, as in training) and by the
centralized MPC. Prints, per ``n``: ms per distributed Q-evaluation (and per agent),
the time it would take with every agent on its own machine (per ADMM iteration the
slowest agent's local work, summed; :attr:`~marl_dmpc.admm.AdmmResult.own_machine_seconds`,
communication not counted), ADMM iterations to tolerance, ms per centralized
Q-evaluation, the largest gap between the two Q values, and the set-up time; with
``--figure``, draws them against ``n``. Figures only, no pass/fail.

    python benchmarks/bench_scale.py [--agents 3,10,30,100] [--steps 30] [--seed 1] [--figure PATH]
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np
from mpcrl import Agent

from marl_dmpc.admm import AdmmCoordinator
from marl_dmpc.cli import benchmark_parser, positive_int_list
from marl_dmpc.local_mpc import LocalMpc
from marl_dmpc.mpc import (
    INIT_ACTION,
    PERTURBATION,
    build_centralized_mpc,
    state_name,
)
from marl_dmpc.network import Network
from marl_dmpc.solvers import SOLVER_CHOICES, quiet_solvers
from marl_dmpc.threads import single_threaded_blas
from reproduction.example_1 import model
from reproduction.example_1.config import Example1Config
from reproduction.example_1.mpc import Example1Mpc


def measure(n: int, steps: int, seed: int, centralized_solver: str) -> dict[str, float]:
    config = Example1Config()
    definition = Example1Mpc(config.horizon, config.discount)
    net = Network.chain(n)
    start = time.perf_counter()
    local = [LocalMpc(definition, net, i, config.solver) for i in range(n)]
    # mpcrl's agent adds Q's first-action constraint, as for the centralized learner
    central = Agent(build_centralized_mpc(definition, net, centralized_solver)).Q
    setup_s = time.perf_counter() - start
    admm = AdmmCoordinator(net, local, config.admm(), time_agents=True)
    learnable = [definition.learnable_parameters(i, net) for i in range(n)]
    merged = {k: v for pars in learnable for k, v in pars.items()}
    A, B = model.network_matrices(model.TRUE, net)
    rng = np.random.default_rng(seed)
    state = np.tile(model.X0, n)

    def agent_parameters(extra: str, first: np.ndarray) -> list[dict]:
        states = state.reshape(n, model.NX)
        return [
            {**learnable[i], f"{state_name(i)}_0": states[i], extra: first[i : i + 1]}
            for i in range(n)
        ]

    q_ms, q_its, cen_ms, gaps, cen_failures, own_ms = [], [], [], [], 0, []
    for _ in range(steps):
        v = admm.solve("V", agent_parameters(PERTURBATION, np.zeros(n)))
        action = np.clip(v.action + rng.uniform(-0.5, 0.5, n), model.U_LB, model.U_UB)
        start = time.perf_counter()
        q = admm.solve("Q", agent_parameters(INIT_ACTION, action))
        q_ms.append(1e3 * (time.perf_counter() - start))
        q_its.append(q.iterations)
        own_ms.append(1e3 * q.own_machine_seconds)
        pars = dict(merged)
        for i, x in enumerate(state.reshape(n, model.NX)):
            pars[f"{state_name(i)}_0"] = x
        pars[INIT_ACTION] = action.reshape(-1, 1)
        start = time.perf_counter()
        sol = central.nlp.solve(pars)
        cen_ms.append(1e3 * (time.perf_counter() - start))
        if not q.success:
            raise RuntimeError(f"n = {n}: a distributed solve failed ({q.statuses})")
        if sol.success:  # OSQP at 1e-9 sometimes stops at its iteration cap
            gaps.append(abs(q.values.sum() - float(sol.f)))
        else:
            cen_failures += 1
        noise = np.zeros((n, model.NX))
        noise[:, 0] = rng.uniform(model.NOISE_LOW, model.NOISE_HIGH, n)
        state = A @ state + B @ action + noise.reshape(-1)
    return {
        "n": n,
        "distributed Q ms": float(np.mean(q_ms)),
        "per agent ms": float(np.mean(q_ms)) / n,
        "own machine Q ms": float(np.mean(own_ms)),
        "ADMM its mean": float(np.mean(q_its)),
        "ADMM its max": int(np.max(q_its)),
        "centralized Q ms": float(np.mean(cen_ms)),
        "max |Q gap|": float(np.max(gaps)) if gaps else float("nan"),
        "centralized failures": cen_failures,
        "set-up s": setup_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench_scale.py", __doc__, "--steps", 30, "closed-loop steps per size"
    )
    parser.add_argument(
        "--agents",
        type=positive_int_list,
        default=[3, 10, 30, 100],
        help="chain sizes, comma-separated; default 3,10,30,100",
    )
    parser.add_argument(
        "--centralized-solver",
        choices=SOLVER_CHOICES,
        default="osqp",
        help="solver of the centralized MPC (sparse: qpOASES is dense and cubic in n); "
        "default %(default)s",
    )
    parser.add_argument(
        "--figure",
        type=Path,
        default=None,
        help="draw per-agent, own-machine and centralized ms against n into this PNG "
        "(it must not exist)",
    )
    args = parser.parse_args(argv)
    if args.figure is not None and args.figure.exists():
        parser.error(f"--figure {args.figure} exists; choose another path")
    sizes = args.agents
    if any(size < 2 for size in sizes):
        parser.error("every chain needs at least 2 agents")
    print(f"chains of example 1's system, {args.steps} closed-loop steps, seed {args.seed}")
    header, rows = None, []
    with single_threaded_blas():
        for size in sizes:
            with quiet_solvers():  # qpOASES prints its licence at every first solve
                row = measure(size, args.steps, args.seed, args.centralized_solver)
            rows.append(row)
            if header is None:
                header = list(row)
                print(" | ".join(header))
            print(
                " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()),
                flush=True,
            )
    if args.figure is not None:
        draw(rows, args.figure)
        print(f"figure written to {args.figure}")
    return 0


def draw(rows: list[dict], path: Path) -> None:
    """Per-agent ms of a distributed Q-evaluation, and ms of one with every agent on its
    own machine and of the centralized one, against the number of agents."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from marl_dmpc.files import write_atomic

    n = [row["n"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    left.plot(n, [row["per agent ms"] for row in rows], "o-", label="distributed, per agent")
    left.set(xscale="log", xlabel="agents n", ylabel="ms per Q(s, a) and agent", ylim=(0, None))
    left.legend()
    right.plot(
        n, [row["own machine Q ms"] for row in rows], "o-", label="every agent on its own machine"
    )
    right.plot(n, [row["distributed Q ms"] for row in rows], "s-", label="distributed, one core")
    right.plot(n, [row["centralized Q ms"] for row in rows], "^-", label="centralized")
    right.set(xscale="log", yscale="log", xlabel="agents n", ylabel="ms per Q(s, a)")
    right.legend()
    for axes in (left, right):
        axes.set_xticks(n, [str(k) for k in n])
        axes.minorticks_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    write_atomic(path, buffer.getvalue(), replace=False)


if __name__ == "__main__":
    sys.exit(main())
