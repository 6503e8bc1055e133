"""A folder of the authors' release data as this repository's data files.

The release (GPL-3.0; never copied here) keeps its results in positional pickles
(:mod:`marl_dmpc.legacy` reads one); :func:`read_release_folder` reads a release data
folder laid out as the release writes it and returns, for every data file of
``data/`` it can stand in for, a result dict of that file's kind, so the figure makers
draw the release's data as they draw ours (``make_figures.py --release-data DIR``):

* ``example_1/line_81/distributed.pkl``, ``centralised.pkl``: ``example_1/distributed.pkl``,
  ``centralized.pkl``;
* ``example_1/evals/eval_pol_step_<N>.pkl``: ``example_1/distributed_eval.pkl`` (the
  policy after N updates);
* ``example_1/evals/nom_true_model_<bool>.pkl``, ``scen_<K>_truemod_<bool>.pkl``:
  ``example_1/baselines.pkl``;
* ``power_data/line_40/dist_eval.pkl``, ``centralised_eval.pkl``:
  ``power_system/distributed_eval.pkl``, ``centralized_eval.pkl``;
  ``distributed_con_eval.pkl``: ``power_system/distributed_con_eval.pkl`` (no figure);
* ``power_data/nominal/centralised.pkl``, ``scenario/power_scenario_<K>.pkl``:
  ``power_system/baselines.pkl``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from marl_dmpc.legacy import load_release_file
from reproduction.example_1 import model as example_1_model
from reproduction.power_system import model as power_model

#: Release training files of example 1 -> our data file.
EXAMPLE_1_TRAINING = {
    "example_1/line_81/distributed.pkl": ("example_1/distributed.pkl", "distributed"),
    "example_1/line_81/centralised.pkl": ("example_1/centralized.pkl", "centralized"),
}
#: Release evaluation files of the power system's learned policies -> our data file.
POWER_LEARNED = {
    "power_data/line_40/dist_eval.pkl": (
        "power_system/distributed_eval.pkl",
        "learned (distributed)",
    ),
    "power_data/line_40/centralised_eval.pkl": (
        "power_system/centralized_eval.pkl",
        "learned (centralized)",
    ),
    "power_data/line_40/distributed_con_eval.pkl": (
        "power_system/distributed_con_eval.pkl",
        "learned (distributed, con)",
    ),
}
_POLICY = re.compile(r"eval_pol_step_(\d+)\.pkl")
_NOMINAL = re.compile(r"nom_true_model_(True|False)\.pkl")
_SCENARIO = re.compile(r"scen_(\d+)_truemod_(True|False)\.pkl")
_POWER_SCENARIO = re.compile(r"power_scenario_(\d+)\.pkl")


def _controllers(
    kind: str, labels: list[str], episodes: list[dict[str, Any]], violations: Any
) -> dict[str, Any]:
    """One evaluation result (kind ``kind``) of controllers ``labels``, each with its
    episodes stacked (C, E, ...), and its violating steps per episode."""
    states = np.stack([e["states"] for e in episodes])
    costs = np.stack([e["costs"] for e in episodes])
    violating = np.array(
        [[int(violations(ep[1:]).sum()) for ep in controller] for controller in states]
    )
    return {
        "kind": kind,
        "labels": labels,
        "states": states,
        "actions": np.stack([e["actions"] for e in episodes]),
        "costs": costs,
        "episode_costs": costs.sum(axis=-1),
        "violating_steps": violating,
        "source": "release",
    }


def _example_1_episode(path: Path) -> dict[str, Any]:
    """An example-1 evaluation file as one episode with a leading episode axis."""
    result = load_release_file(path, "example_1_evaluation")
    return {key: result[key][None] for key in ("states", "actions", "costs")}


def read_release_folder(folder: Path) -> dict[str, dict[str, Any]]:
    """Every data file (by its name under ``data/``) that the release folder ``folder``
    stands in for; a file that cannot be read raises
    :class:`~marl_dmpc.results.ResultFileError` naming it."""
    data: dict[str, dict[str, Any]] = {}
    for name, (ours, mode) in EXAMPLE_1_TRAINING.items():
        if (folder / name).exists():
            result = load_release_file(folder / name, "example_1_training")
            data[ours] = {**result, "example": "example_1", "mode": mode}
    evals = folder / "example_1" / "evals"
    policies = sorted(
        (int(m.group(1)), p) for p in evals.glob("*.pkl") if (m := _POLICY.fullmatch(p.name))
    )
    if policies:
        result = _controllers(
            "example_1_evaluation",
            [f"after {n} updates" for n, _ in policies],
            [_example_1_episode(p) for _, p in policies],
            example_1_model.violations,
        )
        data["example_1/distributed_eval.pkl"] = {
            **result,
            "updates": np.array([n for n, _ in policies]),
        }
    baselines = []
    for path in sorted(evals.glob("*.pkl")):
        if m := _NOMINAL.fullmatch(path.name):
            model = "true model" if m.group(1) == "True" else "inaccurate model"
            baselines.append((f"nominal, {model}", path))
        elif m := _SCENARIO.fullmatch(path.name):
            models = "true model" if m.group(2) == "True" else "sampled models"
            baselines.append((f"scenario K={m.group(1)}, {models}", path))
    if baselines:
        baselines.sort(key=lambda b: (b[0].startswith("scenario"), _scenarios(b[0]), b[0]))
        data["example_1/baselines.pkl"] = _controllers(
            "example_1_baselines",
            [label for label, _ in baselines],
            [_example_1_episode(path) for _, path in baselines],
            example_1_model.violations,
        )
    power = folder / "power_data"
    for name, (ours, label) in POWER_LEARNED.items():
        if (folder / name).exists():
            episodes = load_release_file(folder / name, "power_system_evaluation")
            data[ours] = _controllers(
                "power_system_evaluation", [label], [episodes], power_model.angle_violations
            )
    power_baselines = []
    if (power / "nominal" / "centralised.pkl").exists():
        power_baselines.append(("nominal", power / "nominal" / "centralised.pkl"))
    scenarios = sorted(
        (int(m.group(1)), p)
        for p in (power / "scenario").glob("*.pkl")
        if (m := _POWER_SCENARIO.fullmatch(p.name))
    )
    power_baselines += [(f"scenario K={k}", p) for k, p in scenarios]
    if power_baselines:
        data["power_system/baselines.pkl"] = _controllers(
            "power_system_baselines",
            [label for label, _ in power_baselines],
            [load_release_file(p, "power_system_evaluation") for _, p in power_baselines],
            power_model.angle_violations,
        )
    return data


def _scenarios(label: str) -> int:
    m = re.search(r"K=(\d+)", label)
    return int(m.group(1)) if m else 0
