"""The power system's baselines (docs/reproduction.md): the nominal MPC (true model, no learnable
terms, the load noise ignored) and the scenario MPC with K load-noise scenarios, over
the same evaluation episodes (the same load noise for every controller), and the table
of their costs.

    python power_system/baselines.py                          # K = 50, 79, 100; 100 episodes
    python power_system/baselines.py --episodes 10 --scenarios 50 --out runs/base.pkl
"""

from __future__ import annotations

import sys

import numpy as np
from gymnasium import Env

from marl_dmpc import driver
from marl_dmpc.baselines import ScenarioMpc, SoftStateBounds
from marl_dmpc.cli import (
    OneLineArgumentParser,
    add_baseline_flags,
    add_evaluation_flags,
)
from marl_dmpc.discretization import zero_order_hold
from marl_dmpc.evaluation import (
    MpcController,
    default_workers,
    evaluation_result,
    run_episode,
    seed_of,
)
from marl_dmpc.solvers import quiet_solvers
from reproduction.power_system import model
from reproduction.power_system.env import PowerSystemEnv, network_matrices
from reproduction.power_system.noise import add_noise_flag, describe, episode_options, noise_setting

#: The MPCs' horizon and discount (the learnable MPC's).
HORIZON, DISCOUNT = 5, 0.9
#: The default result file (with _2, _3, ... if it exists).
DEFAULT_OUT = "runs/power_system_baselines.pkl"


def build_mpc(
    scenarios: int, solver: str = "highs", release: bool = False
) -> tuple[ScenarioMpc, np.ndarray]:
    """The centralized MPC on the exact zero-order-hold discretization of the true
    network, with the stage cost's weights, the terminal cost and the soft angle bounds
    on ``x_1..x_N``, the slack of ``x_t``'s bound discounted by ``gamma^(t-1)`` (as the
    learnable MPC's); ``scenarios`` copies of the model (the input cost counted as many
    times). With ``release``, the release's formulation: the angles bounded on
    ``x_1..x_{N-1}`` only, the slacks discounted by ``gamma^t``. Returns the MPC and the
    discrete load matrix."""
    A, B, L = network_matrices()
    Ad, held = zero_order_hold(A, np.hstack((B, L)), model.TS)
    nu = B.shape[1]
    Bd, Ld = held[:, :nu], held[:, nu:]
    n, nx = model.N_AREAS, model.NX
    angles = np.zeros((n, n * nx))
    angles[np.arange(n), np.arange(0, n * nx, nx)] = 1.0
    bounds = SoftStateBounds(
        C=angles,
        lb=np.full(n, -model.THETA_MAX),
        ub=np.full(n, model.THETA_MAX),
        weight=np.full(n, model.VIOLATION_WEIGHT),
    )
    Q = np.kron(np.eye(n), model.Q_X)
    mpc = ScenarioMpc(
        A=np.repeat(Ad[None], scenarios, axis=0),
        B=np.repeat(Bd[None], scenarios, axis=0),
        horizon=HORIZON,
        discount=DISCOUNT,
        Q=Q,
        R=model.Q_U * np.eye(nu),
        bounds=bounds,
        u_lb=-model.U_MAX,
        u_ub=model.U_MAX,
        bounded_steps=range(1, HORIZON) if release else None,
        slack_discount_shift=0 if release else 1,
        solver=solver,
    )
    return mpc, Ld


def mpc_inputs(Ld: np.ndarray, scenarios: int, noise: bool):
    """The MPC's inputs at the env's current step: the set points of the last step's
    nominal load, and per scenario that load (plus, with ``noise``, a U[-0.1, 0.1]
    sample per area, redrawn every step) through ``Ld``, held over the horizon."""

    def inputs(env: Env, rng: np.random.Generator) -> dict[str, np.ndarray]:
        load = env.unwrapped.load
        loads = np.repeat(load[None], scenarios, axis=0)
        if noise:
            loads += rng.uniform(-model.LOAD_NOISE, model.LOAD_NOISE, loads.shape)
        x_o, u_o = model.set_points(load)
        return {"disturbances": loads @ Ld.T, "x_ref": x_o.reshape(-1), "u_ref": u_o.reshape(-1)}

    return inputs


def run_baseline(
    job: tuple[int, list[int], int, int, int, str, bool, dict],
) -> list[dict[str, np.ndarray]]:
    """Some episodes of one baseline: ``(K, episode indices, scenario seed, evaluation
    seed, steps, solver, the release's formulation, noise)``; K = 1 is the nominal MPC.
    Episode ``e`` has the noise of seed ``eval_seed + e`` (or the replayed noise,
    :mod:`power_system.noise`) and the scenario draws of ``seed_of(seed, e)``."""
    K, episodes, seed, eval_seed, steps, solver, release, noise = job
    with quiet_solvers():
        mpc, Ld = build_mpc(K, solver, release)
        controller = MpcController(mpc, mpc_inputs(Ld, K, noise=K > 1))
        env = PowerSystemEnv(max_steps=steps)
        return [
            run_episode(env, controller, eval_seed + e, seed_of(seed, e), episode_options(noise, e))
            for e in episodes
        ]


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="baselines.py", description=__doc__.split("\n\n")[0])
    add_baseline_flags(parser, [50, 79, 100], "highs")
    add_evaluation_flags(parser, model.EPISODE_STEPS, default_workers(), DEFAULT_OUT, 100)
    parser.add_argument(
        "--release",
        action="store_true",
        help="the release's formulation: angle bounds on x_1..x_{N-1} only, the slack of "
        "x_t's bound discounted by gamma^t (docs/reproduction.md)",
    )
    add_noise_flag(parser)
    args = parser.parse_args(argv)
    noise = noise_setting(args)
    nx, nu = model.N_AREAS * model.NX, model.N_AREAS * model.NU
    driver.check_scenario_sizes(args.scenarios, nx, nu, HORIZON, model.N_AREAS, args.workers)
    outputs, out = driver.claim_output(args.out, DEFAULT_OUT, args.overwrite)
    counts = [1, *args.scenarios]
    labels = ["nominal", *(f"scenario K={K}" for K in args.scenarios)]
    per_controller, wall_time = driver.run_episodes(
        run_baseline,
        [
            lambda chunk, K=K: (
                K,
                chunk,
                args.seed,
                args.eval_seed,
                args.steps,
                args.solver,
                args.release,
                noise,
            )
            for K in counts
        ],
        args.episodes,
        args.workers,
    )
    result = evaluation_result(
        "power_system_baselines",
        labels,
        per_controller,
        model.angle_violations,
        wall_time,
        seed=args.seed,
        eval_seed=args.eval_seed,
        scenarios=list(args.scenarios),
        formulation="release" if args.release else "this repository's",
        noise=describe(noise),
    )
    return driver.write_evaluation(outputs, out, result, "controller", labels)


if __name__ == "__main__":
    sys.exit(main())
