"""The paper's figures, one function per figure: each takes loaded result dicts (see
docs/results.md; release files are read by :mod:`marl_dmpc.legacy`) and returns a
matplotlib figure. :mod:`reproduction.plotting.make_figures` loads ``data/`` and writes
them all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from reproduction.example_1 import model as ex1
from reproduction.power_system import model as power

Result = Mapping[str, Any]
COLORS = ("C0", "C1", "C2", "C3")


def _steps(result: Result) -> np.ndarray:
    """A training result's trajectories as one run of steps (episodes concatenated)."""
    states = np.asarray(result["states"], dtype=float)
    return states.reshape(-1, states.shape[-1])


def _panel_grid(panels: int, row_height: float, xlabel: str) -> tuple[Figure, np.ndarray]:
    """A figure of ``panels`` axes in two columns sharing x (spare axes hidden), the
    bottom row's x axes labelled ``xlabel``."""
    rows = -(-panels // 2)
    fig, axs = plt.subplots(
        rows, 2, sharex=True, figsize=(9, row_height * rows), constrained_layout=True, squeeze=False
    )
    for ax in axs.flat[panels:]:
        ax.set_visible(False)
    for ax in axs[-1]:
        ax.set_xlabel(xlabel)
    return fig, axs


def _flat(values: Any) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values.reshape(-1, values.shape[-1]) if values.ndim > 2 else values


# ----------------------------------------------------------------- example 1
def example_1_training_states(result: Result) -> Figure:
    """States and inputs of the three systems over training, with their bounds."""
    states, actions = _flat(result["states"]), _flat(result["actions"])
    fig, axs = plt.subplots(3, 1, sharex=True, figsize=(8, 5), constrained_layout=True)
    for i in range(ex1.N_AGENTS):
        axs[0].plot(states[:, i * ex1.NX], color=COLORS[i], lw=0.5, label=f"agent {i + 1}")
        axs[1].plot(states[:, i * ex1.NX + 1], color=COLORS[i], lw=0.5)
        axs[2].plot(actions[:, i], color=COLORS[i], lw=0.5)
    for ax, low, high in ((axs[0], ex1.X_LB[0], ex1.X_UB[0]), (axs[2], ex1.U_LB[0], ex1.U_UB[0])):
        for bound in (low, high):
            ax.axhline(bound, color="r", lw=0.8, ls="--")
    axs[0].set_ylabel("$x_{i,1}$")
    axs[1].set_ylabel("$x_{i,2}$")
    axs[2].set_ylabel("$u_i$")
    axs[2].set_xlabel("time step $t$")
    axs[0].legend(loc="upper right", ncol=3, fontsize="small")
    return fig


def example_1_td_and_cost(
    distributed: Result,
    centralized: Result | None = None,
    labels: tuple[str, str] = ("distributed", "centralized"),
) -> Figure:
    """TD error and stage cost over training (the second run overlaid, dashed; ``labels``
    names the two)."""
    fig, axs = plt.subplots(2, 1, sharex=True, figsize=(8, 4), constrained_layout=True)
    for result, style, label in ((distributed, "-", labels[0]), (centralized, "--", labels[1])):
        if result is None:
            continue
        axs[0].plot(np.asarray(result["td_errors"]), ls=style, lw=0.5, label=label)
        axs[1].plot(np.asarray(result["costs"]).reshape(-1), ls=style, lw=0.5, label=label)
    axs[0].set_ylabel(r"TD error $\delta_t$")
    axs[1].set_ylabel("stage cost $L_t$")
    axs[1].set_yscale("log")
    axs[1].set_xlabel("time step $t$")
    axs[0].legend(loc="upper right", fontsize="small")
    return fig


def example_1_parameters(
    distributed: Result,
    centralized: Result | None = None,
    agent: int = 1,
    labels: tuple[str, str] = ("distributed", "centralized"),
) -> Figure:
    """One agent's learned parameters over the updates: b, the state bounds, f, V0, A, B
    and its couplings A_c (the first run solid, the second dashed; ``labels`` names
    them)."""
    params = distributed["params"]
    couplings = sorted(k for k in params if k.startswith(f"A_c_{agent}_"))
    panels = [
        (f"b_{agent}", "$b$"),
        ((f"x_lb_{agent}", f"x_ub_{agent}"), r"$\underline{x}, \overline{x}$"),
        (f"f_{agent}", "$f$"),
        (f"V0_{agent}", "$V_0$"),
        (f"A_{agent}", "$A$"),
        (f"B_{agent}", "$B$"),
        # agents are numbered from 1 in the figures, as in the paper: agent 2's coupling
        # with agent 1 is A_c,21
        *((name, f"$A_{{c,{agent + 1}{int(name.split('_')[-1]) + 1}}}$") for name in couplings),
    ]
    fig, axs = _panel_grid(len(panels), 1.6, "update")
    for ax, (names, label) in zip(axs.flat, panels, strict=False):
        for result, style in ((distributed, "-"), (centralized, "--")):
            if result is None:
                continue
            for name in names if isinstance(names, tuple) else (names,):
                history = np.asarray(result["params"][name], dtype=float)
                ax.plot(
                    history.reshape(len(history), -1),
                    ls=style,
                    lw=0.8,
                    color="C0" if style == "-" else "C1",
                )
        ax.set_ylabel(label)
    fig.suptitle(f"agent {agent + 1}: {labels[0]} (solid), {labels[1]} (dashed)", fontsize="medium")
    return fig


def example_1_evaluation(
    evaluation: Result,
    baselines: Result | None = None,
    paper_episode: Result | None = None,
    paper_episode_label: str = "learned, the paper's episode",
    label: str = "learned",
) -> Figure:
    """Evaluation cost of the policy after t updates (log scale) against the baselines:
    with several episodes, the mean with a band from the smallest to the largest
    episode cost (each baseline as its mean with its own band), and the first episode
    as points; ``paper_episode``, an evaluation on the paper's own episode (its noise
    replayed), as a line."""
    fig, ax = plt.subplots(figsize=(8, 3.5), constrained_layout=True)
    updates = np.asarray(evaluation["updates"])
    costs = np.asarray(evaluation["episode_costs"], dtype=float)  # (checkpoints, episodes)
    x = np.maximum(updates, 1)
    episodes = costs.shape[1]
    if episodes > 1:
        ax.plot(x, costs.mean(axis=1), "-", color="C0", label=f"{label}, mean of {episodes}")
        ax.fill_between(x, costs.min(axis=1), costs.max(axis=1), color="C0", alpha=0.2)
    first = f"{label}, episode 1" if episodes > 1 else label
    ax.plot(x, costs[:, 0], "o", ms=4, color="C0", label=first)
    if paper_episode is not None:
        other = np.asarray(paper_episode["episode_costs"], dtype=float)[:, 0]
        at = np.maximum(np.asarray(paper_episode["updates"]), 1)
        ax.plot(at, other, "-x", ms=5, color="k", lw=1, label=paper_episode_label)
    if baselines is not None:
        base = np.asarray(baselines["episode_costs"], dtype=float)
        for c, label in enumerate(baselines["labels"]):
            if "sampled" in label or label.startswith("nominal"):
                color = f"C{c + 1}"
                ax.axhline(base[c].mean(), color=color, ls="--", lw=1, label=label)
                if base.shape[1] > 1:
                    ax.axhspan(base[c].min(), base[c].max(), color=color, alpha=0.08)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("updates $t$ (0 shown at 1)")
    ax.set_ylabel("episode cost")
    ax.legend(fontsize="small")
    return fig


#: The paper's dual-error curve (the power system, plain ADMM with rho 50; its release's
#: figure script holds these numbers): tau -> sum_i ||lambda_i* - lambda_i^tau|| +
#: ||mu_i* - mu_i^tau||. Drawn beside ours for comparison (docs/reproduction.md).
PAPER_DUAL_ERROR = {
    1: 0.429,
    2: 0.0592,
    5: 0.0130,
    10: 1.42e-4,
    20: 8.18e-8,
    30: 8.24e-11,
    40: 7.21e-13,
    50: 6.98e-13,
    70: 6.97e-13,
    100: 6.98e-13,
}


def _dual_error_panel(ax: Any, dual_error: Result, title: str) -> None:
    """One example's dual error (lambda + mu) against the iterations: each variant and
    start, the median over the states (the cold starts with a band from the smallest to
    the largest)."""
    tau = np.asarray(dual_error["iterations"])
    errors = np.asarray(dual_error["dual_errors"], dtype=float).sum(axis=-1)
    for v, label in enumerate(dual_error["labels"]):
        for s, start in enumerate(dual_error["starts"]):
            low, mid, high = np.percentile(errors[v, s], [0, 50, 100], axis=0)
            style = "-o" if start == "cold" else "--s"
            ax.semilogy(tau, mid, style, ms=3, color=COLORS[v], label=f"{label}, {start} start")
            if start == "cold":
                ax.fill_between(tau, low, high, color=COLORS[v], alpha=0.15)
    states = errors.shape[2]
    ax.set_title(f"{title} (median and range over {states} states)", fontsize="medium")
    ax.set_xlabel(r"ADMM iterations $\tau$")
    ax.set_ylabel(
        r"$\sum_i \|\lambda_i^\star - \lambda_i^{\tau}\|"
        r" + \|\mu_i^\star - \mu_i^{\tau}\|$"
    )


def admm_dual_error(power_system: Result, example_1: Result | None = None) -> Figure:
    """ADMM's dual error against its iterations: the power system (the paper's figure,
    with the paper's curve) and, if given, example 1."""
    panels = 1 if example_1 is None else 2
    fig, axs = plt.subplots(
        1, panels, figsize=(6 * panels, 4), constrained_layout=True, squeeze=False
    )
    ax = axs[0, 0]
    _dual_error_panel(ax, power_system, "power system")
    ax.semilogy(
        list(PAPER_DUAL_ERROR),
        list(PAPER_DUAL_ERROR.values()),
        ":^",
        color="k",
        ms=4,
        label="the paper (plain ADMM, rho 50)",
    )
    ax.legend(fontsize="x-small")
    if example_1 is not None:
        _dual_error_panel(axs[0, 1], example_1, "example 1")
        axs[0, 1].legend(fontsize="x-small")
    return fig


# ------------------------------------------------------------- power system
def power_td_and_cost(distributed: Result, centralized: Result | None = None) -> Figure:
    """Mean TD error and cost of every training episode."""
    fig, axs = plt.subplots(2, 1, sharex=True, figsize=(8, 3.5), constrained_layout=True)
    for result, marker, label in (
        (distributed, "o", "distributed"),
        (centralized, "x", "centralized"),
    ):
        if result is None:
            continue
        axs[0].plot(np.asarray(result["episode_td_errors"]), marker, ms=3, label=label)
        axs[1].plot(np.asarray(result["episode_costs"]), marker, ms=3, label=label)
    axs[0].set_ylabel(r"$\overline{\delta}$")
    axs[1].set_ylabel(r"$\sum_t L_t$")
    axs[1].set_xlabel("episode")
    axs[0].legend(fontsize="small")
    return fig


def power_states(result: Result) -> Figure:
    """Angle deviation of area 4 and tie-line power 3-4 in the first (dashed) and last
    (solid) training episodes."""
    states = np.asarray(result["states"], dtype=float)
    if states.ndim == 2:
        states = states[None]
    nx = power.NX
    fig, axs = plt.subplots(2, 1, sharex=True, figsize=(8, 3.5), constrained_layout=True)
    for episode, style, label in (
        (states[0], "--", "first episode"),
        (states[-1], "-", "last episode"),
    ):
        episode = episode[~np.isnan(episode).any(axis=1)]
        axs[0].plot(episode[:, 3 * nx], ls=style, color="C0", lw=0.8, label=label)
        tie = power.P_TIE[2, 3] * (episode[:, 2 * nx] - episode[:, 3 * nx])
        axs[1].plot(tie, ls=style, color="C0", lw=0.8)
    for bound in (-power.THETA_MAX, power.THETA_MAX):
        axs[0].axhline(bound, color="r", lw=0.8)
    axs[0].set_ylabel(r"$\Delta\theta_4$ (rad)")
    axs[1].set_ylabel(r"$\Delta P_{\mathrm{tie},3,4}$ (p.u.)")
    axs[1].set_xlabel("time step $k$")
    axs[0].legend(fontsize="small")
    return fig


def _indices(name: str) -> tuple[list[str], list[int]]:
    """A parameter's name parts and its trailing agent indices (``P_tie_2_3``:
    ``["P", "tie"], [2, 3]``)."""
    parts = name.split("_")
    indices: list[int] = []
    while parts and parts[-1].isdigit():
        indices.insert(0, int(parts.pop()))
    return parts, indices


def _owner(name: str) -> int | None:
    """The agent that owns a parameter: its first index (``P_tie_2_3``: agent 2)."""
    return (_indices(name)[1] or [None])[0]


def _numbered_from_1(name: str) -> str:
    """A parameter's name with its agent indices counted from 1, as the figures' titles
    count them (``P_tie_2_3`` -> ``P tie 3,4``)."""
    parts, indices = _indices(name)
    return " ".join(parts) + (" " + ",".join(str(i + 1) for i in indices) if indices else "")


def power_parameters(result: Result, area: int = 2) -> Figure:
    """The learned parameters of one area over the episodes' updates."""
    params = result["params"]
    names = sorted(name for name in params if _owner(name) == area)
    fig, axs = _panel_grid(len(names), 1.5, "update (episode)")
    for ax, name in zip(axs.flat, names, strict=False):
        history = np.asarray(params[name], dtype=float)
        ax.plot(history.reshape(len(history), -1), lw=0.8)
        ax.set_ylabel(_numbered_from_1(name), fontsize="small")
    fig.suptitle(f"area {area + 1}", fontsize="medium")
    return fig


def power_boxplots(learned: list[tuple[str, Result]], baselines: Result | None) -> Figure:
    """Episode costs and constraint violations over the evaluation episodes: learned
    policies, scenario and nominal MPCs."""
    labels, costs, violations = [], [], []
    steps = None
    for name, evaluation in learned:
        labels.append(name)
        costs.append(np.asarray(evaluation["episode_costs"]).reshape(-1))
        violations.append(np.asarray(evaluation["violating_steps"]).reshape(-1))
        steps = np.asarray(evaluation["costs"]).shape[-1]
    if baselines is not None:
        for c, label in enumerate(baselines["labels"]):
            labels.append(label)
            costs.append(np.asarray(baselines["episode_costs"][c]))
            violations.append(np.asarray(baselines["violating_steps"][c]))
            steps = np.asarray(baselines["costs"]).shape[-1]
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    axs[0].boxplot(costs, showfliers=True)
    axs[0].set_ylabel("episode cost")
    axs[1].boxplot([100 * v / steps for v in violations], showfliers=True)
    axs[1].set_ylabel("steps with some $|\\Delta\\theta_i| > 0.1$ rad (%)")
    for ax in axs:
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right", fontsize="small")
    return fig


# ------------------------------------------------- this repository beside the release
def episode_costs_beside(ours: Result, release: Result, title: str) -> Figure:
    """Every controller's episode costs in two results of the same evaluation, ours and
    the release's, box beside box (the controllers of both, by label; a result with one
    controller each is paired whatever the labels)."""
    mine, theirs = list(ours["labels"]), list(release["labels"])
    if len(mine) == len(theirs) == 1:
        pairs = [(f"{mine[0]} / {theirs[0]}", 0, 0)]
    else:
        pairs = [
            (label, mine.index(label), theirs.index(label)) for label in mine if label in theirs
        ]
    if not pairs:
        raise ValueError("the two evaluations share no controller")
    width = min(12.0, max(6.0, 1.0 * len(pairs) + 2))
    fig, ax = plt.subplots(figsize=(width, 4), constrained_layout=True)
    costs = [np.asarray(r["episode_costs"], dtype=float) for r in (ours, release)]
    for side, (result, color, name) in enumerate(
        ((costs[0], "C0", "this repository"), (costs[1], "C1", "release"))
    ):
        data = [result[pair[1 + side]] for pair in pairs]
        positions = np.arange(len(pairs)) * 3 + side
        box = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True)
        for patch in box["boxes"]:
            patch.set_facecolor(color)
            patch.set_alpha(0.5)
        episodes = result.shape[1]
        box["boxes"][0].set_label(f"{name} ({episodes} episode{'s' * (episodes > 1)} each)")
    ax.set_xticks(np.arange(len(pairs)) * 3 + 0.5, [p[0] for p in pairs], rotation=30, ha="right")
    ax.set_ylabel("episode cost")
    ax.set_yscale(
        "log" if max(c.max() for c in costs) > 20 * min(c.min() for c in costs) else "linear"
    )
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    return fig
