"""Example 1's baselines (docs/reproduction.md): the nominal MPC with the inaccurate and
with the true model, and the scenario MPC with K sampled models or K copies of the true
model, each over 100-step episodes from the paper's initial state (20 noise realizations
by default, the same for every controller; the paper's evaluation is one episode, which
``--noise-from`` replays), and the table of their costs.

    python example_1/baselines.py                     # K = 10 and 25, all cores
    python example_1/baselines.py --scenarios 25 --workers 1 --out runs/base.pkl
"""

from __future__ import annotations

import sys

import numpy as np
from numpy.random import Generator

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
#: Evaluation episodes by default (the paper's evaluation is one, replayed by --noise-from).
EPISODES = 20
#: The default result file (with _2, _3, ... if it exists).
DEFAULT_OUT = "runs/example_1_baselines.pkl"
#: Every scenario adds a fixed disturbance from U[DISTURBANCE_LOW, 0] to every state.
DISTURBANCE_LOW = -0.1


def scenario_models(
    kind: str, scenarios: int, rng: Generator | np.random.RandomState | None, per_agent: bool = True
) -> list[list[model.LinearModel]]:
    """The models of ``scenarios`` scenarios, each a list with one model per agent:
    ``"inaccurate"``, ``"true"`` or ``"sampled"`` (:func:`example_1.model.sample_model`,
    one draw per agent, or with ``per_agent=False`` one draw shared by the scenario's
    agents, as the release drew them)."""
    n = model.N_AGENTS
    if kind != "sampled":
        return [[model.TRUE if kind == "true" else model.INACCURATE] * n] * scenarios
    if per_agent:
        return [[model.sample_model(rng) for _ in range(n)] for _ in range(scenarios)]
    return [[model.sample_model(rng)] * n for _ in range(scenarios)]


def build_mpc(
    models: list[list[model.LinearModel]], discount: float, solver: str = "ipopt"
) -> ScenarioMpc:
    """The centralized MPC with the stage cost of the learnable MPC's without its
    learnable terms (``0.5 (||x||^2 + 0.5 ||u||^2 + w^T s)``, no terminal cost; the
    inputs' cost counted once however many scenarios, as in the release): one
    scenario per entry of ``models`` (:func:`scenario_models`). IPOPT by default: HiGHS
    reported some of the 25-scenario QPs unbounded and OSQP stopped at its iteration cap."""
    net = model.network()
    n = net.n_agents
    matrices = [model.network_matrices(agents, net) for agents in models]
    nx = n * model.NX
    bounds = SoftStateBounds(
        C=np.eye(nx),
        lb=np.tile(model.X_LB, n),
        ub=np.tile(model.X_UB, n),
        weight=0.5 * np.tile(model.VIOLATION_WEIGHT, n),
    )
    return ScenarioMpc(
        A=[A for A, _ in matrices],
        B=[B for _, B in matrices],
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
    The scenarios' models and disturbances come from the scenario seed (:func:`draws`):
    one controller, the same in every episode."""
    kind, K, episodes, seed, eval_seed, steps, solver, noise, release = job
    with quiet_solvers():
        if K == 1:
            discount = RELEASE_NOMINAL_DISCOUNT if release else NOMINAL_DISCOUNT
            mpc, disturbances = build_mpc(scenario_models(kind, 1, None), discount, solver), None
        else:
            models, disturbances = draws(kind, K, seed, release)
            mpc = build_mpc(models, SCENARIO_DISCOUNT, solver)
        controller = MpcController(mpc, lambda env, rng: {"disturbances": disturbances})
        env = make_env(steps, noise)
        return [run_episode(env, controller, eval_seed + e) for e in episodes]


def draws(
    kind: str, K: int, seed: int, release: bool
) -> tuple[list[list[model.LinearModel]], np.ndarray]:
    """The K scenarios' models and their additive disturbances (K, states), fixed over the
    horizon and the episode. Ours: a generator seeded ``seed``, one model per agent, then
    the disturbances. The release's (``release``): NumPy's legacy generator (seeded 0 in
    the release, so ``--seed 0`` draws its scenarios), the disturbances first, then one
    model per scenario shared by its agents."""
    nx = model.N_AGENTS * model.NX
    if release:
        legacy = np.random.RandomState(seed)
        disturbances = legacy.uniform(DISTURBANCE_LOW, 0.0, (K, nx))
        return scenario_models(kind, K, legacy, per_agent=False), disturbances
    rng = np.random.default_rng(seed)
    models = scenario_models(kind, K, rng)
    return models, rng.uniform(DISTURBANCE_LOW, 0.0, (K, nx))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="baselines.py", description=__doc__.split("\n\n")[0])
    add_baseline_flags(parser, [10, 25], "ipopt")
    add_evaluation_flags(parser, 100, default_workers(), DEFAULT_OUT, EPISODES)
    add_noise_flags(parser)
    parser.add_argument(
        "--release",
        action="store_true",
        help="the release's formulation: the nominal MPC undiscounted (gamma 1, not the "
        "learnable MPC's 0.9), the scenarios drawn as the release drew them (one model per "
        "scenario for all agents, NumPy's legacy generator; with --seed 0 its draws; "
        "docs/reproduction.md)",
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
