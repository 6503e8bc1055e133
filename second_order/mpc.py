"""The follow-up's learnable local MPC (docs/second_order.md)."""

from __future__ import annotations

from collections.abc import Mapping

import casadi as cs
import numpy as np
import numpy.typing as npt
from csnlp.wrappers import Mpc

from marl_dmpc.blocks import add_dynamics, add_soft_bounds, parameter_name
from marl_dmpc.mpc import LocalMpcDefinition
from marl_dmpc.network import Network
from reproduction.second_order import model

#: Agent ``i``'s learnable parameters, by base name.
NAMES = ("V0", "f", "x_lb", "x_ub", "b", "Q", "R", "w", "A", "B", "ac")


class SecondOrderMpc(LocalMpcDefinition):
    """Agent ``i``'s MPC: offset ``V0``, linear cost ``f``, bound offsets ``x_lb``,
    ``x_ub``, affine term ``b``, cost weights ``Q`` (per state) and ``R``, slack weights
    ``w``, and the model ``A``, ``B``, ``ac``, all learned:

    ``min V0 + sum_{k<N} f^T [x_k; u_k] + 0.5 (sum_{k<=N} gamma^k (||Q * x_k||^2 + w^T s_k)
    + sum_{k<N} gamma^k 0.5 ||R * u_k||^2)``

    subject to ``x_{k+1} = A x_k + B u_k + b + ac [0; sum_j x_j2,k]``, the softened
    bounds ``X_LB + x_lb - s_k <= x_k <= X_UB + x_ub + s_k`` at ``k = 0..N`` and
    ``-1 <= u_k <= 1``.
    """

    nx = model.NX
    nu = model.NU

    def learnable_parameters(
        self, agent: int, network: Network
    ) -> dict[str, npt.NDArray[np.floating]]:
        initial = {
            "V0": np.zeros(1),
            "f": np.zeros(self.nx + self.nu),
            "x_lb": np.zeros(self.nx),
            "x_ub": np.zeros(self.nx),
            "b": np.zeros(self.nx),
            "Q": np.ones(self.nx),
            "R": np.ones(self.nu),
            "w": model.VIOLATION_WEIGHT.copy(),
            "A": model.INACCURATE.A.copy(),
            "B": model.INACCURATE.B.copy(),
            "ac": np.array([model.INACCURATE.ac]),
        }
        return {parameter_name(base, agent): value for base, value in initial.items()}

    def action_bounds(self, agent: int) -> tuple[npt.NDArray, npt.NDArray]:
        return model.U_LB, model.U_UB

    def build(
        self,
        mpc: Mpc,
        agent: int,
        x: cs.SX,
        u: cs.SX,
        neighbour_states: Mapping[int, cs.SX],
        parameters: Mapping[str, cs.SX],
    ) -> cs.SX:
        N = self.horizon
        p = {base: parameters[parameter_name(base, agent)] for base in NAMES}
        x_next = p["A"] @ x[:, :-1] + p["B"] @ u + cs.repmat(p["b"], 1, N)
        coupled = sum(x_j[1, :-1] for x_j in neighbour_states.values())
        x_next[1, :] += p["ac"] * coupled
        add_dynamics(mpc, agent, x, x_next)
        lb = cs.repmat(model.X_LB + p["x_lb"], 1, N + 1)
        ub = cs.repmat(model.X_UB + p["x_ub"], 1, N + 1)
        s = add_soft_bounds(mpc, "x", agent, x, range(self.nx), lb, ub, first=0)
        gammas = cs.DM(self.discount ** np.arange(N + 1)).T
        states = cs.sum1((p["Q"] * x) ** 2) + p["w"].T @ s
        inputs = 0.5 * cs.sum1((p["R"] * u) ** 2)
        linear = p["f"].T @ cs.vertcat(x[:, :-1], u)
        return (
            p["V0"]
            + cs.sum2(linear)
            + 0.5 * (cs.sum2(gammas * states) + cs.sum2(gammas[:, :-1] * inputs))
        )
