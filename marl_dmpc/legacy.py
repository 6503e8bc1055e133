"""Reading the original release's data pickles (positional format) as result dicts.

The release (dmpcrl-concept) wrote each result as a sequence of ``pickle.dump`` calls:

* example 1 training: states, actions, costs, TD errors, then per-agent lists of the
  histories of ``b``, ``f``, ``V0``, the bounds ``[lb1, lb2, ub1, ub2]`` (one (T, 4)
  array per agent), ``A`` and ``B`` (each update's matrix flattened row by row: (T, 4)
  and (T, 2)), then the list of coupling matrices' histories ``A_c`` in agent order
  (each agent's neighbours in increasing order, flattened like ``A``);
* example 1 evaluations: states, actions, costs;
* power system training: states, actions, costs, TD errors, dict of parameter histories;
* power system evaluations (the learned, nominal and scenario policies): states (101 per
  episode), actions, costs, then an empty TD-error list and an empty dict.

:func:`load_release_file` reads them with the safe loader of :mod:`marl_dmpc.results`
(plain data only) and returns the dict a result file of this repository holds, with the
fields the plotting scripts read.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from .results import ResultFileError, _PlainDataUnpickler

#: The positional layouts: what each ``pickle.load`` returns, in order.
LAYOUTS = {
    "example_1_training": (
        "states",
        "actions",
        "costs",
        "td_errors",
        "b",
        "f",
        "V0",
        "bounds",
        "A",
        "B",
        "A_c",
    ),
    "example_1_evaluation": ("states", "actions", "costs"),
    "power_system_training": ("states", "actions", "costs", "td_errors", "params"),
    "power_system_evaluation": ("states", "actions", "costs", "td_errors", "params"),
}
#: Example 1's neighbours (a line of three agents), for the names of ``A_c``.
_EXAMPLE_1_NEIGHBOURS = ((1,), (0, 2), (1,))
#: Steps per episode of the release's power-system runs.
_POWER_EPISODE_STEPS = 100


def _read_objects(path: Path) -> list[Any]:
    if not path.is_file():
        raise ResultFileError(f"no file at {path}")
    stream = io.BytesIO(path.read_bytes())
    objects = []
    while stream.tell() < len(stream.getbuffer()):
        try:
            objects.append(_PlainDataUnpickler(stream).load())
        except ResultFileError as err:
            raise ResultFileError(f"{path}: {err}") from None
        except Exception as err:
            raise ResultFileError(f"{path} is not a release data file ({err})") from None
    return objects


def _rows(values: Any, width: int) -> np.ndarray:
    """A trajectory as (time, width), whichever way the release stored it."""
    array = np.asarray(values, dtype=float).squeeze()
    if array.ndim == 1:
        return array.reshape(-1, 1) if width == 1 else array.reshape(1, -1)
    return array.T if array.shape[0] == width and array.shape[1] != width else array


def _history(values: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A parameter's history (updates + 1, *shape); a flattened matrix is unflattened row
    by row, as the release flattened it."""
    history = np.asarray(values, dtype=float)
    if shape is None:
        return history
    return history.reshape(len(history), *shape)


def _bounds(values: Any) -> tuple[np.ndarray, ...]:
    """An agent's bound histories ``lb1, lb2, ub1, ub2``: columns of one (T, 4) array, or
    four histories."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 2 and array.shape[1] == 4:
        return tuple(array[:, k] for k in range(4))
    return tuple(np.asarray(v, dtype=float).reshape(-1) for v in values)


def load_release_file(path: str | os.PathLike[str], layout: str) -> dict[str, Any]:
    """Read a release data file of ``layout`` (a key of :data:`LAYOUTS`) as a result dict.

    Raises
    ------
    ResultFileError
        If the file is missing, holds more than plain data, or does not have the
        layout's number of objects.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
    path = Path(path)
    objects = _read_objects(path)
    names = LAYOUTS[layout]
    if len(objects) != len(names):
        raise ResultFileError(
            f"{path} holds {len(objects)} objects; the release's {layout} files hold "
            f"{len(names)} ({', '.join(names)})"
        )
    data = dict(zip(names, objects, strict=True))
    if layout == "power_system_evaluation":
        return _power_evaluation(path, data)
    if layout == "example_1_evaluation":
        states = _rows(data["states"], 6)
        actions = _rows(data["actions"], 3)
        costs = np.asarray(data["costs"], dtype=float).reshape(-1)
        return {
            "kind": "release_example_1_evaluation",
            "states": states,
            "actions": actions,
            "costs": costs,
            "episode_costs": np.array([costs.sum()]),
        }
    nx, nu = (6, 3) if layout == "example_1_training" else (16, 4)
    result: dict[str, Any] = {
        "kind": "training",
        "mode": "release",
        "status": "completed",
        "config": {},
        "states": _rows(data["states"], nx),
        "actions": _rows(data["actions"], nu),
        "costs": np.asarray(data["costs"], dtype=float).reshape(-1),
        "td_errors": np.asarray(data["td_errors"], dtype=float).reshape(-1),
        "source": str(path),
    }
    if layout == "example_1_training":
        params: dict[str, np.ndarray] = {}
        for i in range(3):
            params[f"b_{i}"] = _history(data["b"][i], (2,))
            params[f"f_{i}"] = _history(data["f"][i], (3,))
            params[f"V0_{i}"] = _history(data["V0"][i], (1,))
            lb1, lb2, ub1, ub2 = _bounds(data["bounds"][i])
            params[f"x_lb_{i}"] = np.stack((lb1, lb2), axis=1)
            params[f"x_ub_{i}"] = np.stack((ub1, ub2), axis=1)
            params[f"A_{i}"] = _history(data["A"][i], (2, 2))
            params[f"B_{i}"] = _history(data["B"][i], (2, 1))
        couplings = iter(data["A_c"])
        for i, neighbours in enumerate(_EXAMPLE_1_NEIGHBOURS):
            for j in neighbours:
                params[f"A_c_{i}_{j}"] = _history(next(couplings), (2, 2))
        result["params"] = params
        result["episode_costs"] = np.array([result["costs"].sum()])
    else:
        result["params"] = {name: _history(v) for name, v in data["params"].items()}
        costs, td = result["costs"], result["td_errors"]
        episodes = len(costs) // _POWER_EPISODE_STEPS
        result["episode_costs"] = (
            costs[: episodes * _POWER_EPISODE_STEPS].reshape(episodes, -1).sum(1)
        )
        result["episode_td_errors"] = np.nanmean(
            td[: episodes * _POWER_EPISODE_STEPS].reshape(episodes, -1), axis=1
        )
        states = result["states"]
        if len(states) == episodes * (_POWER_EPISODE_STEPS + 1):
            result["states"] = states.reshape(episodes, _POWER_EPISODE_STEPS + 1, nx)
    result["updates"] = len(next(iter(result["params"].values()))) - 1
    return result


def _power_evaluation(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """A release power-system evaluation file as one controller's episodes: states
    (E, 101, 16), actions (E, 100, 4), costs (E, 100) and each episode's total."""
    steps = _POWER_EPISODE_STEPS
    costs = np.asarray(data["costs"], dtype=float).reshape(-1)
    episodes = len(costs) // steps
    states = np.asarray(data["states"], dtype=float)
    if costs.size != episodes * steps or states.shape != (episodes * (steps + 1), 16):
        raise ResultFileError(
            f"{path}: {costs.size} costs and states {states.shape} are not whole episodes "
            f"of {steps} steps"
        )
    costs = costs.reshape(episodes, steps)
    return {
        "kind": "release_power_system_evaluation",
        "states": states.reshape(episodes, steps + 1, 16),
        "actions": np.asarray(data["actions"], dtype=float).reshape(episodes, steps, -1),
        "costs": costs,
        "episode_costs": costs.sum(axis=1),
        "source": str(path),
    }


def backed_out_disturbance(
    states: np.ndarray,
    actions: np.ndarray,
    A: np.ndarray,
    B: np.ndarray,
    E: np.ndarray,
    tolerance: float = 1e-12,
) -> np.ndarray:
    """The disturbances of a trajectory of ``x+ = A x + B u + E d``: the least-squares
    ``d_k`` of ``E d_k = x_{k+1} - A x_k - B u_k`` for every step, shape ``(steps, nd)``
    (``E`` of full column rank).

    Raises
    ------
    ResultFileError
        If the part of ``x_{k+1} - A x_k - B u_k`` that no disturbance explains exceeds
        ``tolerance`` times the largest state: the trajectory was not made by this model
        (or not to this precision).
    """
    states, actions = np.asarray(states, dtype=float), np.asarray(actions, dtype=float)
    if states.shape != (len(actions) + 1, A.shape[0]):
        raise ResultFileError(
            f"{len(states)} states of size {states.shape[1:]} do not go with "
            f"{len(actions)} actions of a model of {A.shape[0]} states"
        )
    w = states[1:] - states[:-1] @ A.T - actions @ B.T
    d = np.linalg.lstsq(E, w.T, rcond=None)[0].T
    residual = float(np.abs(w - d @ E.T).max(initial=0.0))
    scale = max(float(np.abs(states).max(initial=0.0)), 1.0)
    if residual > tolerance * scale:
        raise ResultFileError(
            f"the states are {residual:.2g} off the model where no disturbance enters: the "
            "trajectory was not made by it"
        )
    return d


def backed_out_noise(
    states: np.ndarray,
    actions: np.ndarray,
    A: np.ndarray,
    B: np.ndarray,
    noisy: np.ndarray,
    tolerance: float = 1e-12,
) -> np.ndarray:
    """The disturbances of a trajectory of ``x+ = A x + B u + w`` with the states
    ``noisy`` (a boolean mask) disturbed and the others not: ``w_k = x_{k+1} - A x_k
    - B u_k`` on the noisy states, 0 on the others, shape ``(steps, nx)``
    (:func:`backed_out_disturbance`, which raises where the undisturbed states do not
    fit the model)."""
    noisy = np.asarray(noisy, dtype=bool)
    E = np.eye(A.shape[0])[:, noisy]
    w = np.zeros((len(actions), A.shape[0]))
    w[:, noisy] = backed_out_disturbance(states, actions, A, B, E, tolerance)
    return w


def load_second_order_release(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A result file of the authors' follow-up (one pickled dict: ``X`` states, ``U``
    actions, ``R`` stage costs, ``td`` TD errors), read with the safe loader, as
    ``states`` (T+1, nx), ``actions`` (T, nu), ``costs`` (T,) and ``td_errors`` (T,).

    Raises
    ------
    ResultFileError
        If the file is missing, holds more than plain data, or not that dict.
    """
    path = Path(path)
    objects = _read_objects(path)
    if len(objects) != 1 or not isinstance(objects[0], dict):
        raise ResultFileError(f"{path} is not a result file of the follow-up (one dict)")
    data = objects[0]
    missing = {"X", "U", "R", "td"} - set(data)
    if missing:
        raise ResultFileError(f"{path} lacks {', '.join(sorted(missing))}")
    costs = np.asarray(data["R"], dtype=float).reshape(-1)
    return {
        "states": np.asarray(data["X"], dtype=float).reshape(len(costs) + 1, -1),
        "actions": np.asarray(data["U"], dtype=float).reshape(len(costs), -1),
        "costs": costs,
        "td_errors": np.asarray(data["td"], dtype=float).reshape(-1),
    }
