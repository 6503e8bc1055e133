"""Example 2's learnable local MPC (docs/reproduction.md, "Example 2")."""

from __future__ import annotations

from collections.abc import Mapping

import casadi as cs
import numpy as np
import numpy.typing as npt
from csnlp.wrappers import Mpc

from marl_dmpc.blocks import add_dynamics, add_soft_bounds, parameter_name
from marl_dmpc.discretization import squarings_for, zero_order_hold
from marl_dmpc.mpc import LocalMpcDefinition
from marl_dmpc.network import Network
from reproduction.power_system import model

#: The learnable offset ``b`` enters the dynamics scaled by this (as in the release).
B_SCALING = 0.1
#: Initial cost weights of the MPC (the state's differ from the stage cost's).
Q_X_INIT = np.diag([500.0, 0.1, 0.1, 10.0])
Q_U_INIT = 10.0


class PowerSystemMpc(LocalMpcDefinition):
    """Area ``i``'s MPC: learnable offset ``V0``, linear costs ``f_x``, ``f_u``, cost
    weights ``Q_x``, ``Q_u``, angle-bound offsets ``theta_lb``, ``theta_ub``, model
    offset ``b`` and tie-line coefficients ``P_tie_i_j``; the load ``load_i`` and the set
    points ``x_o_i``, ``u_o_i`` are parameters set every step.

    ``min V0 + sum_k [f_x^T x_k + f_u u_k + gamma^k ((x_k - x_o)^T Q_x (x_k - x_o)
    + Q_u (u_k - u_o)^2 + 500 s_k)] + gamma^N (x_N - x_o)^T Q_x (x_N - x_o)``
    subject to the zero-order-hold discretization of the area's continuous model with
    the learnable ``P_ij`` (the input, the load and the neighbours' states held over the
    step; the same expression in the distributed and the centralized MPC), plus
    ``0.1 b``; ``-0.1 + theta_lb - s_k <= dtheta_k <= 0.1 + theta_ub + s_k`` for
    ``k = 1..N``; ``|u_k| <= U_MAX[i]``.
    """

    nx = model.NX
    nu = model.NU

    def learnable_parameters(
        self, agent: int, network: Network
    ) -> dict[str, npt.NDArray[np.floating]]:
        i = agent
        pars = {
            parameter_name("theta_lb", i): np.zeros(1),
            parameter_name("theta_ub", i): np.zeros(1),
            parameter_name("V0", i): np.zeros(1),
            parameter_name("b", i): np.zeros(self.nx),
            parameter_name("f_x", i): np.zeros(self.nx),
            parameter_name("f_u", i): np.zeros(self.nu),
            parameter_name("Q_x", i): Q_X_INIT.copy(),
            parameter_name("Q_u", i): np.full(1, Q_U_INIT),
        }
        for j in network.neighbours(i):
            pars[parameter_name("P_tie", i, j)] = np.full(1, model.P_TIE_INIT[i, j])
        return pars

    def fixed_parameters(self, agent: int, network: Network) -> dict[str, npt.NDArray[np.floating]]:
        return {
            parameter_name("load", agent): np.zeros(1),
            parameter_name("x_o", agent): np.zeros(self.nx),
            parameter_name("u_o", agent): np.zeros(self.nu),
        }

    def action_bounds(self, agent: int) -> tuple[npt.NDArray, npt.NDArray]:
        u_max = model.U_MAX[agent : agent + 1]
        return -u_max, u_max.copy()

    def discrete_model(
        self, agent: int, tie: list[cs.SX]
    ) -> tuple[cs.SX, cs.SX, cs.SX, list[cs.SX]]:
        """``(A, B, L, [A_ij])`` of area ``agent``, discretized by zero-order hold for the
        tie-line coefficients ``tie`` (one per neighbour, increasing order)."""
        A, B, L, couplings = model.area_matrices(agent, tie)
        true_tie = [model.P_TIE[agent, j] for j in model.network().neighbours(agent)]
        nominal = model.area_matrices(agent, true_tie)[0]
        held = cs.horzcat(B, L, *couplings)
        Ad, held_d = zero_order_hold(A, held, model.TS, squarings_for(nominal, model.TS))
        nx, nu = self.nx, self.nu
        Bd, Ld = held_d[:, :nu], held_d[:, nu : nu + 1]
        Acd = [held_d[:, nu + 1 + k * nx : nu + 1 + (k + 1) * nx] for k in range(len(tie))]
        return Ad, Bd, Ld, Acd

    def build(
        self,
        mpc: Mpc,
        agent: int,
        x: cs.SX,
        u: cs.SX,
        neighbour_states: Mapping[int, cs.SX],
        parameters: Mapping[str, cs.SX],
    ) -> cs.SX:
        i, N = agent, self.horizon
        p = {
            base: parameters[parameter_name(base, i)]
            for base in (
                "theta_lb",
                "theta_ub",
                "V0",
                "b",
                "f_x",
                "f_u",
                "Q_x",
                "Q_u",
                "load",
                "x_o",
                "u_o",
            )
        }
        neighbours = sorted(neighbour_states)
        tie = [parameters[parameter_name("P_tie", i, j)] for j in neighbours]
        A, B, L, couplings = self.discrete_model(i, tie)
        x_next = A @ x[:, :-1] + B @ u + cs.repmat(L @ p["load"] + B_SCALING * p["b"], 1, N)
        for j, A_ij in zip(neighbours, couplings, strict=True):
            x_next += A_ij @ neighbour_states[j][:, :-1]
        add_dynamics(mpc, i, x, x_next)
        lb = cs.repmat(-model.THETA_MAX + p["theta_lb"], 1, N)
        ub = cs.repmat(model.THETA_MAX + p["theta_ub"], 1, N)
        s = add_soft_bounds(mpc, "theta", i, x, [0], lb, ub)
        dx = x - cs.repmat(p["x_o"], 1, N + 1)
        du = u - cs.repmat(p["u_o"], 1, N)
        gammas = self.discount ** np.arange(N + 1)
        cost = p["V0"]
        for k in range(N):
            cost += cs.dot(p["f_x"], x[:, k]) + cs.dot(p["f_u"], u[:, k])
            cost += gammas[k] * (
                cs.bilin(p["Q_x"], dx[:, k], dx[:, k])
                + cs.bilin(p["Q_u"], du[:, k], du[:, k])
                + model.VIOLATION_WEIGHT * s[0, k]
            )
        return cost + gammas[N] * cs.bilin(p["Q_x"], dx[:, N], dx[:, N])
