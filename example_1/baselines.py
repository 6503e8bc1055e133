"""Example 1's baselines (docs/reproduction.md): the nominal MPC with the inaccurate and
with the true model, and the scenario MPC with K sampled models or K copies of the true
model, each over 100-step episodes from the paper's initial state (20 noise realizations
by default, the same for every controller; the paper's evaluation is one episode, the
first here), and the table of their costs.

    python example_1/baselines.py                     # K = 10 and 25, all cores
    python example_1/baselines.py --scenarios 25 --workers 1 --out runs/base.pkl
"""

from __future__ import annotations

import sys

import numpy as np

from marl_dmpc import driver
from marl_dmpc.baselines import ScenarioMpc, SoftStateBounds
from marl_dmpc.cli import (
    OneLineArgumentParser,
    add_baseline_flags,
    add_evaluation_flags,
)
from marl_dmpc.evaluation import (
    MpcController,
    default_workers,
    evaluation_result,
    run_episode,
)
from marl_dmpc.solvers import quiet_solvers
from reproduction.example_1 import model
from reproduction.example_1.noise import add_noise_flags, describe, make_env, noise_setting

#: The nominal MPC's horizon and discount (the learnable MPC's); the scenario MPC's.
HORIZON, NOMINAL_DISCOUNT, SCENARIO_DISCOUNT = 10, 0.9, 1.0
#: The release's nominal MPC's discount (``--release``): with it, the nominal MPC with the
#: true model follows the states of the release's episode to 1e-7 over all 100 steps.
RELEASE_NOMINAL_DISCOUNT = 1.0
#: Evaluation episodes by default (the paper's evaluation is one, the first of these).
EPISODES = 20
#: The default result file (with _2, _3, ... if it exists).
DEFAULT_OUT = "runs/example_1_baselines.pkl"
#: Every scenario adds a fixed disturbance from U[DISTURBANCE_LOW, 0] to every state.
DISTURBANCE_LOW = -0.1


def build_mpc(
    kind: str, scenarios: int, discount: float, rng: np.random.Generator, solver: str = "ipopt"
) -> ScenarioMpc:
    """The centralized MPC with the stage cost of the learnable MPC's without its
    learnable terms (``0.5 (||x||^2 + 0.5 ||u||^2 + w^T s)``, no terminal cost; the
    inputs' cost counted once however many scenarios, as in the release): one
    scenario per model, each model ``"inaccurate"``, ``"true"`` or ``"sampled"``
    (:func:`example_1.model.sample_model`, per agent). IPOPT by default: HiGHS reported
    some of the 25-scenario QPs unbounded and OSQP stopped at its iteration cap."""
    net = model.network()
    n = net.n_agents
    models = []
    for _ in range(scenarios):
        if kind == "sampled":
            agents = [model.sample_model(rng) for _ in range(n)]
        else:
            agents = [model.TRUE if kind == "true" else model.INACCURATE] * n
        models.append(model.network_matrices(agents, net))
    nx = n * model.NX
    bounds = SoftStateBounds(
        C=np.eye(nx),
        lb=np.tile(model.X_LB, n),
        ub=np.tile(model.X_UB, n),
        weight=0.5 * np.tile(model.VIOLATION_WEIGHT, n),
    )
    return ScenarioMpc(
        A=[A for A, _ in models],
        B=[B for _, B in models],
        horizon=HORIZON,
        discount=discount,
        Q=0.5 * np.eye(nx),
        R=0.25 * np.eye(n * model.NU),
        bounds=bounds,
        u_lb=np.tile(model.U_LB, n),
        u_ub=np.tile(model.U_UB, n),
        Q_terminal=np.zeros((nx, nx)),
        input_multiplier=1.0,  # the release's: the shared inputs' cost counted once
        solver=solver,
    )


def controllers(scenario_counts: list[int]) -> list[tuple[str, str, int]]:
    """``(label, model kind, K)`` of every baseline; K = 1 is the nominal MPC."""
    rows = [("nominal, inaccurate model", "inaccurate", 1), ("nominal, true model", "true", 1)]
    for K in scenario_counts:
        rows.append((f"scenario K={K}, sampled models", "sampled", K))
        rows.append((f"scenario K={K}, true model", "true", K))
    return rows


def run_baseline(
    job: tuple[str, int, list[int], int, int, int, str, dict, bool],
) -> list[dict[str, np.ndarray]]:
    """Some episodes of one baseline: ``(model kind, K, episode indices, scenario seed,
    evaluation seed, steps, solver, noise, the release's formulation)``; episode ``e`` has
    the noise of seed ``eval_seed + e`` (or the replayed noise, :mod:`example_1.noise`).
    The scenarios' models and disturbances come from the scenario seed: one controller,
    the same in every episode."""
    kind, K, episodes, seed, eval_seed, steps, solver, noise, release = job
    rng = np.random.default_rng(seed)
    with quiet_solvers():
        nominal = K == 1
        discount = SCENARIO_DISCOUNT
        if nominal:
            discount = RELEASE_NOMINAL_DISCOUNT if release else NOMINAL_DISCOUNT
        mpc = build_mpc(kind, K, discount, rng, solver)
        disturbances = (
            None if nominal else rng.uniform(DISTURBANCE_LOW, 0.0, (K, mpc.nx))
        )  # fixed per scenario, held over the horizon
        controller = MpcController(mpc, lambda env, rng: {"disturbances": disturbances})
        env = make_env(steps, noise)
        return [run_episode(env, controller, eval_seed + e) for e in episodes]


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="baselines.py", description=__doc__.split("\n\n")[0])
    add_baseline_flags(parser, [10, 25], "ipopt")
    add_evaluation_flags(parser, 100, default_workers(), DEFAULT_OUT, EPISODES)
    add_noise_flags(parser)
    parser.add_argument(
        "--release",
        action="store_true",
        help="the release's formulation: the nominal MPC undiscounted (gamma 1, not the "
        "learnable MPC's 0.9; docs/reproduction.md)",
    )
    args = parser.parse_args(argv)
    noise = noise_setting(args)
    nx, nu = model.N_AGENTS * model.NX, model.N_AGENTS * model.NU
    driver.check_scenario_sizes(args.scenarios, nx, nu, HORIZON, nx, args.workers)
    outputs, out = driver.claim_output(args.out, DEFAULT_OUT, args.overwrite)
    rows = controllers(args.scenarios)
    episodes, wall_time = driver.run_episodes(
        run_baseline,
        [
            lambda chunk, kind=kind, K=K: (
                kind,
                K,
                chunk,
                args.seed,
                args.eval_seed,
                args.steps,
                args.solver,
                noise,
                args.release,
            )
            for _, kind, K in rows
        ],
        args.episodes,
        args.workers,
    )
    result = evaluation_result(
        "example_1_baselines",
        [label for label, _, _ in rows],
        episodes,
        model.violations,
        wall_time,
        seed=args.seed,
        eval_seed=args.eval_seed,
        scenarios=list(args.scenarios),
        noise=describe(noise),
        formulation="release" if args.release else "this repository's",
    )
    return driver.write_evaluation(outputs, out, result, "controller", result["labels"])


if __name__ == "__main__":
    sys.exit(main())
