"""Calling CasADi functions on NumPy arrays without converting through ``DM``.

Converting a CasADi ``DM`` output to NumPy goes element by element through Python
(about 0.2 ms for a 100 x 100 matrix, several times the evaluation itself).
:class:`BufferedFunction` evaluates through the function's buffer interface instead:
the inputs are read from and the outputs written to NumPy arrays directly.
"""

from __future__ import annotations

import casadi as cs
import numpy as np
import numpy.typing as npt


class BufferedFunction:
    """A CasADi function with dense outputs, evaluated on NumPy vectors into
    preallocated NumPy arrays.

    Parameters
    ----------
    function : casadi.Function
        The function; its outputs must be dense (see :func:`casadi.densify`).

    Notes
    -----
    The arrays returned by a call are overwritten by the next call: copy what you keep.
    """

    def __init__(self, function: cs.Function) -> None:
        for k in range(function.n_out()):
            if not function.sparsity_out(k).is_dense():
                raise ValueError(f"output {k} of {function.name()} is not dense")
        self.function = function
        self._buffer, self._trigger = function.buffer()
        self._flat = [np.zeros(function.numel_out(k)) for k in range(function.n_out())]
        # CasADi stores matrices column by column
        self._outputs = [
            flat.reshape(function.size2_out(k), function.size1_out(k)).T
            for k, flat in enumerate(self._flat)
        ]
        for k, flat in enumerate(self._flat):
            self._buffer.set_res(k, memoryview(flat))
        self._inputs = [np.zeros(function.numel_in(k)) for k in range(function.n_in())]
        for k, values in enumerate(self._inputs):
            self._buffer.set_arg(k, memoryview(values))

    def __call__(self, *args: npt.ArrayLike) -> list[npt.NDArray[np.floating]]:
        """The outputs at the inputs ``args`` (each flattened column by column, as
        CasADi does), as ``(size1, size2)`` arrays (views of internal buffers)."""
        for values, arg in zip(self._inputs, args, strict=True):
            values[:] = arg
        self._trigger()
        return self._outputs
