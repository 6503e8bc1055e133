"""Conformance with the authors' release: every file of a release data folder loads, and
the paper's headline numbers come out of it.

The release's files are GPL-3.0 and are never copied here: the tests read them from
``../shared/release_data`` beside the repository (or ``$MARL_DMPC_RELEASE_DATA``) and skip
when that folder is absent.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from marl_dmpc.legacy import backed_out_noise, load_release_file
from marl_dmpc.results import ResultFileError, load_result
from reproduction.plotting import make_figures
from reproduction.plotting.release_data import read_release_folder
from tests.helpers import ROOT

RELEASE = Path(os.environ.get("MARL_DMPC_RELEASE_DATA", ROOT.parent / "shared" / "release_data"))
pytestmark = pytest.mark.skipif(not RELEASE.is_dir(), reason=f"no release data at {RELEASE}")


def _layout(path: Path) -> str:
    if path.parent.name == "line_81":
        return "example_1_training"
    if path.parent.name == "evals":
        return "example_1_evaluation"
    return "power_system_evaluation"


def test_every_release_file_loads():
    files = sorted(RELEASE.rglob("*.pkl"))
    assert files
    for path in files:
        result = load_release_file(path, _layout(path))
        assert np.all(np.isfinite(result["costs"])), path


@pytest.fixture(scope="module")
def release():
    return read_release_folder(RELEASE)


def _mean_costs(result):
    return dict(zip(result["labels"], np.mean(result["episode_costs"], axis=-1), strict=True))


def test_example_1_release_numbers_are_the_papers(release):
    training = release["example_1/distributed.pkl"]
    assert training["states"].shape == (10001, 6) and training["updates"] == 5000
    assert training["params"]["A_c_1_2"].shape == (5001, 2, 2)
    np.testing.assert_array_equal(training["params"]["A_0"][0], [[1.0, 0.25], [0.0, 1.0]])
    evaluation = _mean_costs(release["example_1/distributed_eval.pkl"])
    assert evaluation["after 0 updates"] == pytest.approx(312.4, abs=0.05)
    assert evaluation["after 10000 updates"] == pytest.approx(10.09, abs=0.005)
    baselines = _mean_costs(release["example_1/baselines.pkl"])
    assert baselines["nominal, inaccurate model"] == pytest.approx(360.2, abs=0.05)
    assert baselines["scenario K=25, sampled models"] == pytest.approx(24.0, abs=0.05)
    assert baselines["scenario K=25, true model"] == pytest.approx(7.7, abs=0.05)
    steps = dict(
        zip(
            release["example_1/baselines.pkl"]["labels"],
            release["example_1/baselines.pkl"]["violating_steps"][:, 0],
            strict=True,
        )
    )
    assert steps["nominal, inaccurate model"] == 73 and steps["scenario K=25, sampled models"] == 0
    assert release["example_1/distributed_eval.pkl"]["violating_steps"][-1, 0] == 2


def test_power_system_release_numbers_are_the_papers(release):
    learned = _mean_costs(release["power_system/distributed_eval.pkl"])
    assert learned["learned (distributed)"] == pytest.approx(274.3, abs=0.05)
    centralized = _mean_costs(release["power_system/centralized_eval.pkl"])
    assert centralized["learned (centralized)"] == pytest.approx(264.9, abs=0.05)
    baselines = release["power_system/baselines.pkl"]
    costs = _mean_costs(baselines)
    share = dict(
        zip(baselines["labels"], 100 * baselines["violating_steps"].sum(1) / 10_000, strict=True)
    )
    assert costs["nominal"] == pytest.approx(349.3, abs=0.05)
    assert share["nominal"] == pytest.approx(10.1, abs=0.2)
    for k, cost, violating in ((50, 315.2, 2.9), (79, 318.0, 3.4), (100, 321.7, 4.3)):
        assert costs[f"scenario K={k}"] == pytest.approx(cost, abs=0.05)
        assert share[f"scenario K={k}"] == pytest.approx(violating, abs=0.1)
    assert release["power_system/distributed_eval.pkl"]["violating_steps"].sum() == 0


def test_make_figures_draws_the_release_data_without_a_warning(tmp_path, capsys):
    out = tmp_path / "figures"
    (tmp_path / "data").mkdir()
    argv = ["--data", str(tmp_path / "data"), "--out", str(out), "--release-data", str(RELEASE)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_figures.main(argv) == 0
    drawn = sorted(p.stem for p in out.glob("*.png"))
    assert drawn == [
        "release_example_1_evaluation",
        "release_example_1_parameters",
        "release_example_1_td_and_cost",
        "release_example_1_training_states",
        "release_power_boxplots",
    ]
    assert "Traceback" not in capsys.readouterr().err
    # with our data, ours beside the release's wherever both exist
    out = tmp_path / "beside"
    argv = ["--data", str(ROOT / "data"), "--out", str(out), "--release-data", str(RELEASE)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_figures.main(argv) == 0
    compared = sorted(p.stem for p in out.glob("compare_*.png"))
    assert compared == sorted(f"compare_{name}" for name in make_figures.COMPARISONS)


def test_the_release_formulation_reproduces_the_releases_scenario_episodes(release):
    """Our power baselines in the release's formulation (data/power_system/
    baselines_release.pkl) against the release's own files, controller by controller:
    mean episode costs within 5 % and episode-cost distributions that a two-sample
    Kolmogorov-Smirnov test cannot tell apart; in our formulation (every predicted angle
    bounded) the scenario MPCs' distributions differ."""
    from scipy.stats import ks_2samp

    from marl_dmpc.results import load_result

    theirs = release["power_system/baselines.pkl"]
    costs = dict(zip(theirs["labels"], theirs["episode_costs"], strict=True))
    for name, different in (("baselines_release", False), ("baselines", True)):
        ours = load_result(ROOT / "data" / "power_system" / f"{name}.pkl")
        for label, mine in zip(ours["labels"], ours["episode_costs"], strict=True):
            p_value = ks_2samp(mine, costs[label]).pvalue
            if different and label != "nominal":
                assert p_value < 1e-3, (name, label)
            else:
                assert np.mean(mine) == pytest.approx(np.mean(costs[label]), rel=0.05)
                assert p_value > 0.05, (name, label)


def _example_1_noise(name: str) -> tuple[dict, np.ndarray]:
    from reproduction.example_1 import model

    release = load_release_file(RELEASE / "example_1" / "evals" / name, "example_1_evaluation")
    A, B = model.network_matrices(model.TRUE, model.network())
    noisy = np.tile([True, False], 3)  # every agent's first state
    w = backed_out_noise(release["states"], release["actions"], A, B, noisy)
    return release, w[:, noisy]


@pytest.mark.parametrize(
    "name", ["eval_pol_step_0.pkl", "eval_pol_step_10000.pkl", "nom_true_model_False.pkl"]
)
def test_the_release_evaluated_example_1_with_one_noise_value_for_every_agent(name):
    """Backed out with the true model, the noise of every example-1 evaluation of the
    release is one value per step shared by the agents (its env broadcasts one draw)."""
    _, noise = _example_1_noise(name)
    assert np.all((noise >= -0.1) & (noise <= 0.0))
    assert np.abs(noise - noise[:, :1]).max() < 1e-15
    assert np.ptp(noise[:, 0]) > 0.05  # a draw per step, not a constant


def test_a_release_episode_is_replayed_to_its_last_bits_by_its_backed_out_noise():
    from reproduction.example_1.env import CoupledLinearSystemsEnv

    release, noise = _example_1_noise("eval_pol_step_0.pkl")
    env = CoupledLinearSystemsEnv(noise_sequence=noise)
    states = [env.reset(seed=0)[0]]
    for action in release["actions"]:
        states.append(env.step(action)[0])
    np.testing.assert_allclose(states, release["states"], rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="ran longer"):
        env.step(release["actions"][0])


def test_noise_is_not_backed_out_with_a_model_that_did_not_make_the_trajectory():
    from reproduction.example_1 import model

    release = load_release_file(
        RELEASE / "example_1" / "evals" / "eval_pol_step_0.pkl", "example_1_evaluation"
    )
    A, B = model.network_matrices(model.INACCURATE, model.network())
    with pytest.raises(ResultFileError, match="not made by it"):
        backed_out_noise(release["states"], release["actions"], A, B, np.tile([True, False], 3))


def test_the_release_episode_is_replayed_by_the_evaluation_and_baseline_scripts(tmp_path):
    """``--noise-from``: the untrained policy and the nominal MPC on the noise of the
    release's own episodes (their costs are compared with the release's in
    docs/reproduction.md); anything but one episode is refused in one line."""
    import subprocess
    import sys

    evals = RELEASE / "example_1" / "evals"
    train, out = tmp_path / "t.pkl", tmp_path / "e.pkl"
    run = [sys.executable, str(ROOT / "example_1" / "example_1.py"), "--steps", "4"]
    subprocess.run([*run, "--no-progress", "--out", str(train)], check=True, capture_output=True)
    evaluate = [sys.executable, str(ROOT / "example_1" / "evaluate.py"), str(train)]
    replay = ["--noise-from", str(evals / "eval_pol_step_0.pkl"), "--updates", "0"]
    proc = subprocess.run([*evaluate, *replay], capture_output=True, text=True)
    assert proc.returncode == 2 and "add --episodes 1" in proc.stderr
    replay += ["--episodes", "1", "--workers", "1", "--out", str(out)]
    proc = subprocess.run([*evaluate, *replay], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = load_result(out)
    assert result["noise"].startswith("replayed from")
    release = load_release_file(evals / "eval_pol_step_0.pkl", "example_1_evaluation")
    _, noise = _example_1_noise("eval_pol_step_0.pkl")
    from reproduction.example_1 import model

    A, B = model.network_matrices(model.TRUE, model.network())
    x, u = result["states"][0, 0], result["actions"][0, 0]
    w = (x[1:] - x[:-1] @ A.T - u @ B.T)[:, 0::2]
    np.testing.assert_allclose(w, noise, atol=2e-7)  # the result file keeps float32
    # the same policy and the same noise: the release's first actions, to the precision
    # the ADMM's tolerance leaves (measured: 2e-6 over the first 10 steps, 3e-4 by step 30)
    np.testing.assert_allclose(u[:10], release["actions"][:10], atol=5e-6)


def test_the_release_nominal_mpc_is_undiscounted():
    """With ``--release`` (gamma 1) the nominal MPC with the true model follows the
    release's episode (its noise replayed) to 1e-6 over all 100 steps and costs its
    786.8; with the learnable MPC's 0.9 it departs at the first step."""
    from reproduction.example_1 import baselines as example_1_baselines
    from reproduction.example_1.noise import release_episode_noise

    path = RELEASE / "example_1" / "evals" / "nom_true_model_True.pkl"
    release = load_release_file(path, "example_1_evaluation")
    noise = {"shared": False, "sequence": release_episode_noise(path).tolist(), "source": None}
    for formulation in (True, False):
        job = ("true", 1, [0], 1, 0, 100, "ipopt", noise, formulation)
        (episode,) = example_1_baselines.run_baseline(job)
        gap = np.abs(episode["states"] - release["states"]).max()
        if formulation:
            assert gap < 1e-6
            assert episode["costs"].sum() == pytest.approx(release["costs"].sum(), rel=1e-6)
        else:
            assert np.abs(episode["actions"][0] - release["actions"][0]).max() > 1e-3


@pytest.mark.parametrize(
    ("kind", "K"),
    [("true", 10), ("true", 25), ("sampled", 25)],
    ids=["true-10", "true-25", "sampled-25"],
)
def test_the_release_scenario_mpcs_follow_its_episode(kind, K):
    """With ``--release --seed 0`` the scenario MPCs draw the release's disturbances and
    (one per scenario, shared by its agents) models, and on the release's replayed episode
    follow its states to IPOPT's precision (measured over all 100 steps: 1.0e-6 for K = 10
    with the true model, 3.0e-7 for K = 25, 1.1e-6 with 25 sampled models); with our own
    draws the sampled models' first action already differs."""
    from reproduction.example_1 import baselines as example_1_baselines
    from reproduction.example_1.noise import release_episode_noise

    path = RELEASE / "example_1" / "evals" / f"scen_{K}_truemod_{kind == 'true'}.pkl"
    release = load_release_file(path, "example_1_evaluation")
    noise = {"shared": False, "sequence": release_episode_noise(path).tolist(), "source": None}
    steps = 8
    job = (kind, K, [0], 0, 0, steps, "ipopt", noise, True)
    (episode,) = example_1_baselines.run_baseline(job)
    assert np.abs(episode["states"] - release["states"][: steps + 1]).max() < 2e-6
    if kind == "sampled":
        job = (kind, K, [0], 0, 0, 1, "ipopt", noise, False)
        (ours,) = example_1_baselines.run_baseline(job)
        assert np.abs(ours["actions"][0] - release["actions"][0]).max() > 1e-2


def test_the_releases_learned_parameters_are_evaluated(tmp_path):
    """``evaluate.py --release-training``: the release's line_81 parameters after any of
    its 5,000 updates, with this repository's default configuration; it writes nothing
    beside the release's files (--out is required)."""
    import subprocess
    import sys

    path = RELEASE / "example_1" / "line_81" / "distributed.pkl"
    evaluate = [sys.executable, str(ROOT / "example_1" / "evaluate.py"), str(path)]
    flags = ["--release-training", "--updates", "0,5000", "--steps", "3", "--episodes", "1"]
    proc = subprocess.run([*evaluate, *flags], capture_output=True, text=True)
    assert proc.returncode == 2 and "needs --out" in proc.stderr
    out = tmp_path / "e.pkl"
    proc = subprocess.run([*evaluate, *flags, "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = load_result(out)
    assert list(result["updates"]) == [0, 5000] and result["release_training"]
    assert not np.allclose(result["actions"][0], result["actions"][1])
    assert sorted(p.name for p in path.parent.iterdir()) == ["centralised.pkl", "distributed.pkl"]


def test_the_power_systems_release_episodes_are_replayed():
    """The load noise of the release's power-system evaluations backs out with the true
    model to the plant's integration tolerance (measured: 8e-8) and lies in U[-0.1, 0.1];
    the three learned policies' files share one noise, the nominal and scenario MPCs'
    files each have their own. Replayed, the nominal MPC in the release's formulation
    follows the release's states to 1e-6 (measured: 1.9e-7) and costs its episode costs;
    ours departs where its last-step angle bound acts."""
    from reproduction.power_system import baselines as power_baselines
    from reproduction.power_system.noise import release_load_noise

    power = RELEASE / "power_data"
    learned = [
        release_load_noise(power / "line_40" / name)
        for name in ("dist_eval.pkl", "centralised_eval.pkl")
    ]
    nominal = release_load_noise(power / "nominal" / "centralised.pkl")
    assert learned[0].shape == nominal.shape == (100, 100, 4)
    assert np.abs(nominal).max() <= 0.1 + 1e-6 and np.abs(nominal).max() > 0.099
    assert np.abs(learned[0] - learned[1]).max() < 1e-6
    assert np.abs(learned[0] - nominal).max() > 0.1
    release = load_release_file(power / "nominal" / "centralised.pkl", "power_system_evaluation")
    noise = {"sequences": nominal[:2].tolist(), "source": None}
    for formulation in (True, False):
        episodes = power_baselines.run_baseline((1, [0, 1], 0, 0, 100, "highs", formulation, noise))
        for e, episode in enumerate(episodes):
            gap = np.abs(episode["states"] - release["states"][e]).max()
            if formulation:
                assert gap < 1e-6
                assert episode["costs"].sum() == pytest.approx(
                    release["episode_costs"][e], rel=1e-7
                )
            else:
                assert gap > 1e-3


def test_the_follow_ups_result_files_load_and_are_compared_with_ours(capsys):
    """The follow-up's published result files (../shared/second_order_release) load with
    the safe loader, and plotting/second_order.py sets them beside our study: a row per
    variant with the published seeds' first- and last-200-step costs (their README:
    first order 12.4-13.6 -> 5.4-6.9, second order 8.9-11.6 -> 0.08-0.93)."""
    from marl_dmpc.legacy import load_second_order_release
    from reproduction.plotting import second_order

    folder = RELEASE.parent / "second_order_release"
    if not folder.is_dir():
        pytest.skip(f"no second-order release data at {folder}")
    run = load_second_order_release(folder / "dist_so_seed_1_results_2000.pkl")
    assert run["costs"].shape == (2000,) and run["states"].shape == (2001, 6)
    published = second_order.published_ends(second_order.published_runs(folder))
    assert sorted(len(v) for v in published.values()) == [3, 3, 3, 3]
    last = [end for values in published.values() for _, end in values]
    assert 0.07 < min(last) and max(last) < 7.0
    assert second_order.main(["--release-data", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "| distributed | second order (the release's scaling), lr 0.0001 |" in out
    assert "| centralized | second order, lr 0.0001 | 10 | 0 |" in out


def _follow_up_replay(mode: str, steps: int, **settings):
    """Our run of the follow-up's example on the noise of its published seed 1 (backed
    out of the file with the true model), and the file: (our actions, its actions)."""
    from marl_dmpc.envs import StepRecorder
    from marl_dmpc.legacy import backed_out_noise, load_second_order_release
    from reproduction.second_order import model
    from reproduction.second_order.config import SecondOrderConfig
    from reproduction.second_order.env import ChainNetworkEnv
    from reproduction.second_order.second_order import build_learner

    folder = RELEASE.parent / "second_order_release"
    path = folder / f"{mode}_so_seed_1_results_2000.pkl"
    if not path.exists():
        pytest.skip(f"no second-order release data at {folder}")
    published = load_second_order_release(path)
    network = model.network()
    A, B = model.network_matrices(model.TRUE, network)
    noisy = np.tile([True, False], network.n_agents)
    noise = backed_out_noise(published["states"], published["actions"], A, B, noisy)
    env = ChainNetworkEnv(max_steps=steps, noise_sequence=noise[:steps, noisy])
    config = SecondOrderConfig(steps=steps, centralized=mode == "cent", **settings)
    recorder = StepRecorder(env)
    build_learner(config).train(recorder, 1, seed=1)
    actions = np.asarray(recorder.actions[0], dtype=float).reshape(steps, -1)
    return actions, published["actions"][:steps]


def test_the_follow_ups_second_order_learning_takes_its_actions_on_its_noise():
    """On the noise of the follow-up's published seed 1, our second-order learning takes
    its actions, update after update: centralized with the exact Newton step for steps
    0-16 (the release's replay then begins to draw older transitions at random, with a
    generator of its own), distributed with the release's scaling
    (``newton_variant="follow_up"``) for steps 0-12; with the exact step the distributed
    actions part 20 times faster (docs/method.md, "Second-order updates")."""
    ours, theirs = _follow_up_replay("cent", 17)
    assert np.abs(ours - theirs).max() < 1e-8  # measured 1.4e-10
    ours, theirs = _follow_up_replay("dist", 13, newton_variant="follow_up")
    release_scaling = np.abs(ours - theirs).max(axis=1)
    assert release_scaling.max() < 1e-4  # measured 2.9e-5 (the ADMM's tolerance)
    ours, theirs = _follow_up_replay("dist", 13)
    exact = np.abs(ours - theirs).max(axis=1)
    assert exact[-1] > 10 * release_scaling[-1]  # measured 6.5e-4 against 2.9e-5
