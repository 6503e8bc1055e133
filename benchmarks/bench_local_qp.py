"""The local QP re-solves of ADMM: the project's compiled active-set steps against QP
solvers with hot starts, on the QPs one agent actually solves in training.

Records the local QPs that example 1's middle agent solves in every ADMM iteration of a
short training run (V and Q; within one ADMM solve only their linear term moves), then
solves that sequence again with each solver, in order, each keeping what it keeps
between calls:

- ``active set (own)``: :mod:`marl_dmpc.kkt`'s steps from the last optimal active set,
  its factorization re-used while the set holds; where they fail, the steps from DAQP's
  solution's active set, and qpOASES from scratch if those fail too
  (:meth:`~marl_dmpc.qp.ActiveSetQp.rescue`, as in training);
- ``qpOASES hot start``: one CasADi qpOASES instance per problem, which hot-starts every
  call from the previous one;
- ``proxsuite warm start``: proxsuite's dense ProxQP, set up once per ADMM solve and
  warm-started from the previous result (``eps_abs`` 1e-9);
- ``daqp hot start``: DAQP with the previous solution's active set as its starting
  working set (proximal regularization for the semidefinite Hessian).

Prints per solver the time per QP (mean, median), the largest distance of its solution
from a fresh qpOASES solve of the same QP and its failures. proxsuite and daqp are not
among the project's dependencies: their rows say so when they are not installed
(``pip install proxsuite daqp``). Figures only, no pass/fail.

    python benchmarks/bench_local_qp.py [--steps 30] [--seed 1]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import casadi as cs
import numpy as np

from marl_dmpc.admm import AdmmCoordinator
from marl_dmpc.cli import benchmark_parser
from marl_dmpc.envs import StepRecorder
from marl_dmpc.qp import ActiveSetQp, QpBatch
from marl_dmpc.solvers import quiet_solvers
from reproduction.example_1 import example_1
from reproduction.example_1.config import Example1Config
from reproduction.example_1.env import CoupledLinearSystemsEnv

#: The agent whose QPs are recorded: the middle one of the chain (two neighbours).
AGENT = 1


class _Recorder:
    """Solves an agent's QP as before and records its parameter vectors; not an
    :class:`ActiveSetQp`, so the coordinator hands the agent's solves to it."""

    def __init__(self, qp: ActiveSetQp, kind: str, calls: list) -> None:
        self.qp, self.kind, self.calls = qp, kind, calls

    def solve(self, p: np.ndarray):
        self.calls.append((self.kind, p.copy()))
        return self.qp.solve(p)


def record(steps: int, seed: int) -> tuple[list, dict[str, ActiveSetQp]]:
    """The middle agent's local QPs of ``steps`` training steps, in order, as
    ``(kind, parameter vector)``; and its QPs by kind."""
    config = Example1Config(steps=steps, seed=seed)
    calls: list = []
    with quiet_solvers():
        learner = example_1.build_learner(config)
        qps = {}
        for kind, problem in learner.local_mpcs[AGENT].problems.items():
            qps[kind] = problem.solver
            problem.solver = _Recorder(problem.solver, kind, calls)
        admm = learner.admm
        learner.admm = AdmmCoordinator(admm.network, learner.local_mpcs, admm.settings)
        env = StepRecorder(CoupledLinearSystemsEnv(max_steps=steps))
        learner.train(env, 1, seed=seed)
    return calls, qps


def problems(calls: list, qps: dict[str, ActiveSetQp]) -> list[dict]:
    """Every call's QP: its kind, whether its matrices are new (a new ADMM solve), ``H``,
    ``A`` (dense), the linear term and the bounds of ``[A w; w]``."""
    out, last = [], {}
    for kind, p in calls:
        qp = qps[kind]
        fixed = p[: qp.n_fixed]
        new = kind not in last or not np.array_equal(last[kind][0], fixed)
        if new:
            Hx, Ax, lo, up, _ = qp.data(fixed)
            batch = QpBatch([qp.structure])
            batch.set_data(0, Hx, Ax, lo, up)
            H, A = batch.dense(0)
            last[kind] = (fixed, Hx, Ax, H, A, lo, up)
        _, Hx, Ax, H, A, lo, up = last[kind]
        g = qp.linear_term(p)
        out.append(dict(kind=kind, new=new, Hx=Hx, Ax=Ax, H=H, A=A, g=g, lo=lo, up=up, qp=qp))
    return out


def fresh(q: dict) -> np.ndarray:
    """The QP's solution by a new qpOASES instance (the reference)."""
    m = q["A"].shape[0]
    return q["qp"].fallback_solve(q["H"], q["A"], q["g"], q["lo"], q["up"]).x if m else None


def own() -> Callable[[dict], tuple[np.ndarray, bool]]:
    state: dict = {}

    def solve(q: dict) -> tuple[np.ndarray, bool]:
        qp = q["qp"]
        if q["kind"] not in state:
            state[q["kind"]] = QpBatch([qp.structure])
        batch = state[q["kind"]]
        if q["new"]:
            batch.set_data(0, q["Hx"], q["Ax"], q["lo"], q["up"])
        if batch.solve(0, q["g"]):
            return batch.point(0)[0].copy(), True
        solution = qp.rescue(batch, 0, q["g"])  # DAQP's active set, then qpOASES
        return solution.x, solution.success

    return solve


def qpoases_hot() -> Callable[[dict], tuple[np.ndarray, bool]]:
    solvers: dict = {}

    def solve(q: dict) -> tuple[np.ndarray, bool]:
        H, A = cs.DM(q["H"]), cs.DM(q["A"])
        if q["kind"] not in solvers:
            options = {"printLevel": "none", "error_on_fail": False}
            sparsity = {"h": H.sparsity(), "a": A.sparsity()}
            solvers[q["kind"]] = cs.conic(f"hot_{q['kind']}", "qpoases", sparsity, options)
        m = q["A"].shape[0]
        out = solvers[q["kind"]](
            h=H, a=A, g=q["g"], lba=q["lo"][:m], uba=q["up"][:m], lbx=q["lo"][m:], ubx=q["up"][m:]
        )
        return np.asarray(out["x"]).ravel(), bool(solvers[q["kind"]].stats()["success"])

    return solve


def proxsuite_warm() -> Callable[[dict], tuple[np.ndarray, bool]] | None:
    try:
        import proxsuite
    except ImportError:
        return None
    solvers: dict = {}

    def solve(q: dict) -> tuple[np.ndarray, bool]:
        m, n = q["A"].shape
        rows = np.vstack((q["A"], np.eye(n)))
        equal = q["lo"] == q["up"]
        if q["new"] or q["kind"] not in solvers:
            qp = proxsuite.proxqp.dense.QP(n, int(equal.sum()), int((~equal).sum()))
            qp.settings.eps_abs = 1e-9
            qp.settings.eps_rel = 0.0
            qp.settings.verbose = False
            qp.settings.initial_guess = (
                proxsuite.proxqp.InitialGuess.WARM_START_WITH_PREVIOUS_RESULT
            )
            lower, upper = np.maximum(q["lo"], -1e20), np.minimum(q["up"], 1e20)
            qp.init(
                q["H"], q["g"], rows[equal], q["lo"][equal], rows[~equal], lower[~equal],
                upper[~equal],
            )  # fmt: skip
            solvers[q["kind"]] = qp
        else:
            solvers[q["kind"]].update(g=q["g"])
        qp = solvers[q["kind"]]
        qp.solve()
        return qp.results.x.copy(), qp.results.info.status.name == "PROXQP_SOLVED"

    return solve


def daqp_hot() -> Callable[[dict], tuple[np.ndarray, bool]] | None:
    try:
        import daqp
    except ImportError:
        return None
    senses: dict = {}

    def solve(q: dict) -> tuple[np.ndarray, bool]:
        m, n = q["A"].shape
        equal = q["lo"] == q["up"]
        # DAQP's order: the simple bounds, then the rows of A
        lower = np.concatenate((q["lo"][m:], q["lo"][:m]))
        upper = np.concatenate((q["up"][m:], q["up"][:m]))
        fixed = np.concatenate((equal[m:], equal[:m])).astype(np.int32) * 5  # active, immutable
        sense = senses.get(q["kind"], fixed)
        x, _, flag, info = daqp.solve(
            q["H"], q["g"], q["A"], np.minimum(upper, 1e30), np.maximum(lower, -1e30),
            np.maximum(sense, fixed).astype(np.int32),
        )  # fmt: skip
        lam = np.asarray(info["lam"])
        senses[q["kind"]] = np.where(lam != 0, np.where(lam < 0, 3, 1), 0).astype(np.int32)
        return np.asarray(x), flag == 1

    return solve


def measure(name: str, make: Callable, qps: list[dict], reference: list) -> dict:
    solve = make()
    if solve is None:
        return {"solver": name, "note": "not installed"}
    times, errors, failures = [], [], 0
    for q, ref in zip(qps, reference, strict=True):
        start = time.perf_counter()
        x, ok = solve(q)
        times.append(time.perf_counter() - start)
        failures += not ok
        errors.append(float(np.abs(x - ref).max()))
    us = 1e6 * np.asarray(times)
    return {
        "solver": name,
        "mean us/QP": float(us.mean()),
        "median us/QP": float(np.median(us)),
        "max |x - x_fresh|": float(max(errors)),
        "failures": failures,
    }


SOLVERS = {
    "active set (own)": own,
    "qpOASES hot start": qpoases_hot,
    "proxsuite warm start": proxsuite_warm,
    "daqp hot start": daqp_hot,
}


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("bench_local_qp.py", __doc__, "--steps", 30, "training steps")
    args = parser.parse_args(argv)
    calls, qps = record(args.steps, args.seed)
    sequence = problems(calls, qps)
    with quiet_solvers():
        reference = [fresh(q) for q in sequence]
        rows = [measure(name, make, sequence, reference) for name, make in SOLVERS.items()]
    solves = sum(q["new"] for q in sequence)
    print(
        f"example 1, agent {AGENT}'s local QPs of {args.steps} training steps (seed "
        f"{args.seed}): {len(sequence)} QPs in {solves} ADMM solves"
    )
    columns = ["solver", "mean us/QP", "median us/QP", "max |x - x_fresh|", "failures"]
    print(" | ".join(columns))
    for row in rows:
        if "note" in row:
            print(f"{row['solver']} | {row['note']}")
            continue
        print(
            " | ".join(
                f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in columns
            )
        )

    return 0


if __name__ == "__main__":
    sys.exit(main())
