"""The figure scripts on tiny synthetic results, and the reader of the release's
positional pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from marl_dmpc.legacy import load_release_file
from marl_dmpc.results import ResultFileError, save_result
from reproduction.example_1 import baselines as example_1_baselines
from reproduction.plotting import make_figures, results_table

RNG = np.random.default_rng(0)


def _training(nx: int, nu: int, steps: int, episodes: int, params: dict[str, tuple]) -> dict:
    updates = 5
    shape = (episodes, steps + 1, nx) if episodes > 1 else (steps + 1, nx)
    return {
        "kind": "training",
        "example": "example_1" if episodes == 1 else "power_system",
        "states": RNG.normal(size=shape),
        "actions": RNG.normal(size=(*shape[:-2], steps, nu)),
        "costs": RNG.uniform(1, 2, size=(*shape[:-2], steps)),
        "td_errors": RNG.normal(size=episodes * steps),
        "episode_costs": RNG.uniform(100, 200, size=episodes),
        "episode_td_errors": RNG.normal(size=episodes),
        "params": {name: RNG.normal(size=(updates + 1, *s)) for name, s in params.items()},
    }


def _evaluation(kind: str, labels: list[str], episodes: int, steps: int, nx: int) -> dict:
    c = len(labels)
    return {
        "kind": kind,
        "labels": labels,
        "states": RNG.normal(size=(c, episodes, steps + 1, nx)),
        "costs": RNG.uniform(size=(c, episodes, steps)),
        "episode_costs": RNG.uniform(10, 20, size=(c, episodes)),
        "violating_steps": RNG.integers(0, 3, size=(c, episodes)),
    }


EX1_PARAMS = {
    **{
        f"{p}_{i}": s
        for i in range(3)
        for p, s in (
            ("b", (2,)),
            ("f", (3,)),
            ("V0", (1,)),
            ("x_lb", (2,)),
            ("x_ub", (2,)),
            ("A", (2, 2)),
            ("B", (2, 1)),
        )
    },
    "A_c_0_1": (2, 2),
    "A_c_1_0": (2, 2),
    "A_c_1_2": (2, 2),
    "A_c_2_1": (2, 2),
}
POWER_PARAMS = {"V0_2": (1,), "b_2": (4,), "Q_x_2": (4, 4), "P_tie_2_3": (1,), "theta_lb_2": (1,)}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    ex1 = _training(6, 3, 30, 1, EX1_PARAMS)
    save_result(d / "example_1/distributed.pkl", ex1)
    save_result(d / "example_1/centralized.pkl", ex1)
    evaluation = _evaluation(
        "example_1_evaluation", ["after 0 updates", "after 5 updates"], 3, 10, 6
    )
    save_result(d / "example_1/distributed_eval.pkl", {**evaluation, "updates": np.array([0, 5])})
    save_result(
        d / "example_1/baselines.pkl",
        _evaluation(
            "example_1_baselines",
            [
                "nominal, inaccurate model",
                "scenario K=10, sampled models",
                "scenario K=10, true model",
            ],
            1,
            10,
            6,
        ),
    )
    for example in ("example_1", "power_system"):
        save_result(
            d / f"{example}/admm_dual_error.pkl",
            {
                "kind": f"{example}_admm_dual_error",
                "labels": ["plain ADMM", "accelerated"],
                "starts": ["cold", "warm"],
                "parts": ["lambda", "mu"],
                "iterations": np.array([1, 5, 10]),
                "dual_errors": RNG.uniform(1e-6, 1, size=(2, 2, 4, 3, 2)),
            },
        )
    power = _training(16, 4, 10, 3, POWER_PARAMS)
    save_result(d / "power_system/distributed.pkl", power)
    save_result(d / "power_system/centralized.pkl", power)
    save_result(
        d / "power_system/distributed_eval.pkl",
        _evaluation("power_system_evaluation", ["learned"], 5, 10, 16),
    )
    save_result(
        d / "power_system/baselines.pkl",
        _evaluation("power_system_baselines", ["nominal", "scenario K=50"], 5, 10, 16),
    )
    return d


def test_every_figure_is_written(data, tmp_path, quiet):
    out = tmp_path / "figures"
    assert make_figures.main(["--data", str(data), "--out", str(out)]) == 0
    for name in make_figures.FIGURES:
        for suffix in ("png", "pdf"):
            assert (out / f"{name}.{suffix}").stat().st_size > 1000, name


def test_missing_data_skips_the_figure(tmp_path, capsys):
    assert make_figures.main(["--data", str(tmp_path), "--out", str(tmp_path / "f")]) == 0
    assert "skipped admm_dual_error" in capsys.readouterr().out


def _write_positional(path: Path, objects: list) -> None:
    with path.open("wb") as f:
        for obj in objects:
            pickle.dump(obj, f)


def test_release_example_1_file_is_read_and_plotted(tmp_path, quiet):
    T, U = 20, 4
    hist = lambda *s: [RNG.normal(size=s) for _ in range(U + 1)]  # noqa: E731
    per_agent = lambda *s: [np.array(hist(*s)) for _ in range(3)]  # noqa: E731
    bounds = [[np.array(hist(1)) for _ in range(4)] for _ in range(3)]
    couplings = [np.array(hist(2, 2)) for _ in range(4)]
    path = tmp_path / "distributed.pkl"
    _write_positional(
        path,
        [
            RNG.normal(size=(T + 1, 6)),
            RNG.normal(size=(T, 3)),
            RNG.uniform(size=T),
            RNG.normal(size=T),
            per_agent(2, 1),
            per_agent(3, 1),
            per_agent(1),
            bounds,
            per_agent(2, 2),
            per_agent(2, 1),
            couplings,
        ],
    )
    result = load_release_file(path, "example_1_training")
    assert result["states"].shape == (T + 1, 6) and result["updates"] == U
    assert result["params"]["x_lb_1"].shape == (U + 1, 2)
    np.testing.assert_array_equal(result["params"]["A_c_1_2"], couplings[2])
    out = tmp_path / "figs"
    assert (
        make_figures.main(
            ["--data", str(tmp_path), "--out", str(out), "--release-example-1", str(path)]
        )
        == 0
    )
    assert (out / "release_example_1_parameters.png").exists()


def test_release_power_file_is_read(tmp_path):
    path = tmp_path / "power.pkl"
    params = {"V0_2": RNG.normal(size=(3, 1))}
    _write_positional(
        path,
        [
            RNG.normal(size=(2 * 101, 16)),
            RNG.normal(size=(200, 4)),
            RNG.uniform(size=200),
            RNG.normal(size=200),
            params,
        ],
    )
    result = load_release_file(path, "power_system_training")
    assert result["states"].shape == (2, 101, 16) and result["episode_costs"].shape == (2,)
    assert result["updates"] == 2


def test_release_reader_refuses_objects_and_wrong_layouts(tmp_path):
    evil = tmp_path / "evil.pkl"
    _write_positional(evil, [np.zeros(3), Path("x")])
    with pytest.raises(ResultFileError, match="plain data"):
        load_release_file(evil, "example_1_evaluation")
    short = tmp_path / "short.pkl"
    _write_positional(short, [np.zeros(3)])
    with pytest.raises(ResultFileError, match="holds 1 objects"):
        load_release_file(short, "example_1_evaluation")


def test_results_table_reads_the_data_and_rewrites_the_readme(tmp_path, capsys):
    d = tmp_path / "data"
    evaluation = _evaluation(
        "example_1_evaluation", ["after 0 updates", "after 40 updates"], 20, 10, 6
    )
    evaluation["episode_costs"][1] = np.linspace(9, 20, 20)
    evaluation["episode_costs"][1, :5] = 9.0  # 5 of 20 episodes below the paper's 10.1
    save_result(
        d / "example_1/distributed_eval.pkl",
        {**evaluation, "updates": np.array([0, 40]), "wall_time_s": 3.0},
    )
    labels = [label for label, _, _ in example_1_baselines.controllers([25])]
    save_result(
        d / "example_1/baselines.pkl",
        {**_evaluation("example_1_baselines", labels, 1, 10, 6), "wall_time_s": 1},
    )
    power = _evaluation(
        "power_system_baselines",
        ["nominal", "scenario K=50", "scenario K=79", "scenario K=100"],
        4,
        10,
        16,
    )
    save_result(d / "power_system/baselines.pkl", {**power, "wall_time_s": 125.0})
    # on the paper's own episode: a one-episode evaluation, and a study's final policies
    episode = _evaluation("example_1_evaluation", ["after 0 updates", "after 40 updates"], 1, 10, 6)
    episode["episode_costs"][:, 0] = [300.0, 11.25]
    save_result(
        d / "example_1/distributed_eval_release_episode.pkl",
        {**episode, "updates": np.array([0, 40]), "wall_time_s": 1.0},
    )
    study = _evaluation("example_1_evaluation", ["seed 1", "seed 2", "seed 4"], 1, 10, 6)
    study["episode_costs"][:, 0] = [12.0, 9.5, 30.0]
    save_result(
        d / "example_1/study_eval_release_episode.pkl",
        {**study, "seeds": np.array([1, 2, 4]), "wall_time_s": 1.0},
    )
    text = results_table.tables(d)
    learned = evaluation["episode_costs"][1]
    spread = f"{learned.mean():.1f} ± {learned.std(ddof=1):.1f}"
    assert (
        f"| learned distributed policy, after 40 updates | ~10.1 (10000 updates) | 11.2 | 9.0 "
        f"| {spread} | 25 % |" in text
    )
    assert "| untrained policy (0 updates) | ~312 | 300.0 |" in text
    assert "| ours, seed 1 | 11.2 (40 updates) | – |" in text
    assert "| 12.0 (9.5 to 30.0; 3 runs, 1 below 10.1) | – |" in text
    share = 100 * power["violating_steps"][0].sum() / power["costs"][0].size
    nominal = power["episode_costs"][0]
    assert f"| nominal MPC | ~349 | – | {nominal.mean():.1f} ± {nominal.std(ddof=1):.1f} |" in text
    assert f"| {share:.2f} % |" in text
    assert "(power_system/distributed_eval.pkl not made yet)" in text
    assert "data/README.md" in text  # the wall times are there, not in README.md
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\n{results_table.BEGIN}\nold\n{results_table.END}\n\nrest\n")
    results_table.rewrite_readme(readme, text)
    new = readme.read_text()
    assert "old" not in new and text in new and new.endswith(f"{results_table.END}\n\nrest\n")
    results_table.rewrite_readme(readme, text)  # idempotent
    assert readme.read_text() == new
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit):
        results_table.rewrite_readme(readme, text)
    assert "needs one" in capsys.readouterr().err


def _plotted(fig) -> list[np.ndarray]:
    """The y data of every line of every axes of ``fig``."""
    return [np.asarray(line.get_ydata(), dtype=float) for ax in fig.axes for line in ax.lines]


def _drawn(fig, expected) -> bool:
    expected = np.asarray(expected, dtype=float)
    return any(y.shape == expected.shape and np.allclose(y, expected) for y in _plotted(fig))


def test_figures_draw_the_data(data):
    """Each figure function draws the arrays of its result files, not merely a file."""
    from marl_dmpc.results import load_result
    from reproduction.plotting import figures

    def load(name):
        return load_result(data / f"{name}.pkl")

    dist, cent = load("example_1/distributed"), load("example_1/centralized")
    fig = figures.example_1_training_states(dist)
    assert _drawn(fig, dist["states"][:, 2]) and _drawn(fig, dist["actions"][:, 2])
    fig = figures.example_1_td_and_cost(dist, cent)
    assert _drawn(fig, dist["td_errors"]) and _drawn(fig, dist["costs"])
    fig = figures.example_1_parameters(dist, cent, agent=1)
    assert _drawn(fig, dist["params"]["A_c_1_2"][:, 1, 0])
    assert not _drawn(fig, dist["params"]["A_c_0_1"][:, 1, 0])  # another agent's
    evaluation, baselines = load("example_1/distributed_eval"), load("example_1/baselines")
    fig = figures.example_1_evaluation(evaluation, baselines)
    assert _drawn(fig, evaluation["episode_costs"][:, 0])  # the first episodes
    assert _drawn(fig, evaluation["episode_costs"].mean(axis=1))  # and the mean
    nominal = float(np.mean(baselines["episode_costs"][0]))
    assert _drawn(fig, [nominal, nominal])
    dual, power_dual = load("example_1/admm_dual_error"), load("power_system/admm_dual_error")
    fig = figures.admm_dual_error(power_dual, dual)
    for result in (dual, power_dual):  # lambda + mu, median over the states
        assert _drawn(fig, np.median(result["dual_errors"][1, 0].sum(axis=-1), axis=0))
    assert _drawn(fig, list(figures.PAPER_DUAL_ERROR.values()))

    power = load("power_system/distributed")
    fig = figures.power_td_and_cost(power)
    assert _drawn(fig, power["episode_td_errors"]) and _drawn(fig, power["episode_costs"])
    fig = figures.power_states(power)
    assert _drawn(fig, power["states"][-1][:, 12])  # angle of area 4, last episode
    fig = figures.power_parameters(power, area=2)
    assert _drawn(fig, power["params"]["Q_x_2"][:, 1, 2])
    learned, base = load("power_system/distributed_eval"), load("power_system/baselines")
    fig = figures.power_boxplots([("learned", learned)], base)
    medians = [np.median(learned["episode_costs"][0]), np.median(base["episode_costs"][1])]
    for median in medians:
        assert _drawn(fig, [median, median])  # the boxes' median lines
    import matplotlib.pyplot as plt

    plt.close("all")


def test_ours_beside_the_releases_pairs_the_controllers(data):
    """The comparison figures draw both results' episode costs, controller by
    controller, and a training run over the release's."""
    from marl_dmpc.results import load_result
    from reproduction.plotting import figures

    ours = load_result(data / "power_system/baselines.pkl")
    release = dict(ours, labels=["scenario K=50", "nominal"])
    release["episode_costs"] = ours["episode_costs"][::-1] + 1.0
    fig = figures.episode_costs_beside(ours, release, "power")
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["nominal", "scenario K=50"]
    release_costs = release["episode_costs"][1]  # the release's "nominal"
    boxes = [line.get_ydata() for line in fig.axes[0].lines]
    assert any(np.allclose(y, np.median(release_costs)) for y in boxes)
    jobs = make_figures.comparison_jobs({"power_system/baselines.pkl": release}, data)
    assert [name for name, _ in jobs] == ["compare_power_system_baselines"]
    assert jobs[0][1]().axes
    training = load_result(data / "example_1/distributed.pkl")
    jobs = dict(make_figures.comparison_jobs({"example_1/distributed.pkl": training}, data))
    assert set(jobs) == {
        "compare_example_1_td_and_cost_distributed",
        "compare_example_1_parameters_distributed",
    }
    fig = jobs["compare_example_1_parameters_distributed"]()
    assert "this repository (solid), release (dashed)" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="share no controller"):
        figures.episode_costs_beside(ours, dict(release, labels=["a", "b"]), "x")


def test_release_data_folder_errors_are_one_line(tmp_path, capsys):
    from tests.helpers import fails_with

    data = tmp_path / "data"
    data.mkdir()
    argv = ["--data", str(data), "--out", str(tmp_path / "f"), "--release-data"]
    line = fails_with(make_figures.main, [*argv, str(tmp_path / "nothing")], capsys)
    assert "is not a folder" in line
    line = fails_with(make_figures.main, [*argv, str(data)], capsys)
    assert "holds none of the release's data files" in line
    bad = tmp_path / "release" / "example_1" / "line_81"
    bad.mkdir(parents=True)
    (bad / "distributed.pkl").write_bytes(b"not a pickle")
    line = fails_with(make_figures.main, [*argv, str(tmp_path / "release")], capsys)
    assert "distributed.pkl" in line


def _curve_run(seed: int, status: str, cost: np.ndarray, final: float, evaluation: float) -> dict:
    """A run summary of a 20,000-step run whose curve (blocks of 100 steps) is ``cost``."""
    return {
        "seed": seed,
        "status": status,
        "curves": {"step": 100 * np.arange(1, len(cost) + 1), "stage_cost": cost},
        "final_training_cost": final,
        "evaluation_costs": np.full(3, evaluation),
    }


def test_steps_to_reach_is_the_end_of_the_first_window_at_the_target():
    """The step at which the mean over the final-cost window (1,000 steps: 10 blocks)
    first reaches the target; never reached: None."""
    from reproduction.plotting.second_order_example_1 import steps_to_reach

    cost = np.concatenate([np.full(30, 1.0), np.full(170, 0.1)])
    run = _curve_run(1, "completed", cost, 0.1, 10.0)
    # the window's mean is 0.1 once its 10 blocks are all past block 30: it ends at 4,000
    assert steps_to_reach(run, 0.1) == 4000
    # 0.55 (half the window at 1, half at 0.1) is reached when it ends at block 35
    assert steps_to_reach(run, 0.55) == 3500
    assert steps_to_reach(run, 0.05) is None


def test_second_order_is_compared_with_first_order_on_the_seeds_first_order_completed():
    """The paired note leaves out the seeds on which first order diverged, for both."""
    from reproduction.plotting.second_order_example_1 import EXAMPLE_1, paired_notes

    flat = np.full(200, 0.1)
    first = [
        _curve_run(1, "completed", flat, 0.10, 10.0),
        _curve_run(2, "diverged", flat[:5], 9.0, 0.0),
        _curve_run(3, "completed", flat, 0.30, 30.0),
    ]
    second = [
        _curve_run(s, "completed", flat, c, 10 * c) for s, c in ((1, 0.2), (2, 5.0), (3, 0.4))
    ]
    studies = {name: None for name in EXAMPLE_1}
    studies["robustness/example_1_distributed_default.pkl"] = first
    studies["second_order/example_1_distributed_newton.pkl"] = second
    (note,) = paired_notes(studies)
    assert note == (
        "Distributed, on the 2 seeds on which first order completed: median final training "
        "cost 0.3 (second order) against 0.2 (first), median final evaluation cost 3 against 20."
    )
