"""Example 1's learnable local MPC (docs/reproduction.md, "Example 1")."""

from __future__ import annotations

from collections.abc import Mapping

import casadi as cs
import numpy as np
import numpy.typing as npt
from csnlp.wrappers import Mpc

from marl_dmpc.blocks import add_dynamics, add_soft_bounds, parameter_name
from marl_dmpc.mpc import LocalMpcDefinition
from marl_dmpc.network import Network
from reproduction.example_1 import model


class Example1Mpc(LocalMpcDefinition):
    """Agent ``i``'s MPC: learnable offset ``V0``, linear cost ``f``, bound offsets
    ``x_lb``/``x_ub``, affine model ``(A, B, b)`` and couplings ``A_c_i_j``.

    ``min V0 + sum_k f^T [x_k; u_k] + 0.5 sum_k gamma^k (||x_k||^2 + 0.5 ||u_k||^2 + w^T s_k)``
    subject to the learnable coupled dynamics, the softened state bounds on
    ``x_1..x_N`` and ``-1 <= u_k <= 1``.
    """

    nx = model.NX
    nu = model.NU

    def learnable_parameters(
        self, agent: int, network: Network
    ) -> dict[str, npt.NDArray[np.floating]]:
        pars = {
            parameter_name("V0", agent): np.zeros(1),
            parameter_name("x_lb", agent): np.zeros(self.nx),
            parameter_name("x_ub", agent): np.array([1.0, 0.0]),
            parameter_name("b", agent): np.zeros(self.nx),
            parameter_name("f", agent): np.zeros(self.nx + self.nu),
            parameter_name("A", agent): model.INACCURATE.A.copy(),
            parameter_name("B", agent): model.INACCURATE.B.copy(),
        }
        for j in network.neighbours(agent):
            pars[parameter_name("A_c", agent, j)] = model.INACCURATE.A_c.copy()
        return pars

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
        i, N, nx = agent, self.horizon, self.nx
        p = {
            base: parameters[parameter_name(base, i)]
            for base in ("V0", "x_lb", "x_ub", "b", "f", "A", "B")
        }
        x_next = p["A"] @ x[:, :-1] + p["B"] @ u + cs.repmat(p["b"], 1, N)
        for j, x_j in neighbour_states.items():
            x_next += parameters[parameter_name("A_c", i, j)] @ x_j[:, :-1]
        add_dynamics(mpc, i, x, x_next)
        lb = cs.repmat(model.X_LB + p["x_lb"], 1, N)
        ub = cs.repmat(model.X_UB + p["x_ub"], 1, N)
        s = add_soft_bounds(mpc, "x", i, x, range(nx), lb, ub)
        gammas = cs.DM(self.discount ** np.arange(N)).T
        stage = cs.sum1(x[:, :-1] ** 2) + 0.5 * cs.sum1(u**2) + cs.DM(model.VIOLATION_WEIGHT).T @ s
        linear = p["f"].T @ cs.vertcat(x[:, :-1], u)
        return p["V0"] + cs.sum2(linear) + 0.5 * cs.sum2(gammas * stage)
