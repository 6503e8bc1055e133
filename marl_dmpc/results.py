"""Result files: one pickle per run, holding a dict of plain data.

Plain data means NumPy arrays and scalars, numbers, strings, booleans, ``None``, and
lists, tuples and dicts of those. :func:`load_result` refuses a pickle that names any
other class or function, so opening a result file cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .files import Outputs


class ResultFileError(ValueError):
    """Raised for a result file that is missing, malformed or holds more than plain
    data."""


# the only globals a plain-data pickle may reference (NumPy arrays and scalars)
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "complex"),
}
_DTYPE_CLASS_MODULES = ("numpy.dtypes",)


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS or (
            module in _DTYPE_CLASS_MODULES and name.endswith("DType")
        ):
            return super().find_class(module, name)
        raise ResultFileError(
            f"refusing to load {module}.{name}: result files may hold only plain data "
            "(arrays, numbers, strings, lists, dicts)"
        )


def _to_plain(value: Any) -> Any:
    """Convert dataclass-free containers to plain data, refusing anything else."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("object arrays are not plain data")
        return value
    if isinstance(value, (np.generic,)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, complex, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not plain data")


def single(values: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """``values`` in single precision: how result files store the per-step records
    (states, actions, costs, TD errors, times), which are read for plots and summaries
    only; totals are computed before, in double precision, and parameter histories stay
    double (an evaluation re-creates the policy from them)."""
    return np.asarray(values, dtype=np.float32)


def blas_kernel() -> str:
    """The kernel that NumPy's OpenBLAS runs on this machine (``"Haswell"``,
    ``"SkylakeX"``, ...; ``OPENBLAS_CORETYPE`` sets it), or the BLAS library's name if it
    is not OpenBLAS. The kernel decides the last bits of every product and solve, so a
    result is reproduced bit for bit only under the same one (docs/reproducibility.md).
    """
    from threadpoolctl import threadpool_info

    blas = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    blas.sort(key=lambda lib: "numpy" not in lib.get("filepath", ""))  # NumPy's first
    return str(blas[0].get("architecture") or blas[0].get("internal_api")) if blas else "unknown"


def _distribution_version(name: str) -> str:
    """An installed distribution's version (for a module without ``__version__``)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries a run depends on, and the BLAS kernel."""
    import casadi
    import csnlp
    import daqp
    import gymnasium
    import mpcrl
    import numba
    import scipy

    from . import __version__

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "marl_dmpc": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "casadi": casadi.__version__,
        "csnlp": csnlp.__version__,
        "mpcrl": mpcrl.__version__,
        "gymnasium": gymnasium.__version__,
        "numba": numba.__version__,
        # DAQP's active sets restart the local QPs' steps: a different version can take
        # another path to the same optimum, and the trajectories differ in their last bits
        "daqp": getattr(daqp, "__version__", _distribution_version("daqp")),
        "blas_kernel": blas_kernel(),
    }


def save_result(
    path: str | os.PathLike[str], result: Mapping[str, Any], outputs: Outputs | None = None
) -> Path:
    """Write ``result`` (plain data only) to ``path`` atomically, under the data-safety
    rule of :mod:`marl_dmpc.files`: an existing file is replaced only if ``outputs``
    created it or may replace it (without ``outputs``, never)."""
    data = pickle.dumps(_to_plain(result), protocol=pickle.HIGHEST_PROTOCOL)
    return (outputs or Outputs()).write(path, data)


def load_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a result file, refusing anything but plain data.

    Raises
    ------
    ResultFileError
        If the file does not exist, is not a pickle, does not hold a dict, or references
        any class or function besides NumPy's array machinery.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultFileError(f"no result file at {path}")
    raw = path.read_bytes()
    try:
        data = _PlainDataUnpickler(io.BytesIO(raw)).load()
    except ResultFileError as err:
        raise ResultFileError(f"{path}: {err}") from None
    except Exception as err:  # truncated or not a pickle at all
        raise ResultFileError(f"{path} is not a valid result file ({err})") from None
    if not isinstance(data, dict):
        raise ResultFileError(f"{path} does not hold a result dict (found {type(data).__name__})")
    return data
