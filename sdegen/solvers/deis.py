"""DEIS-tAB (Zhang & Chen 2023, "Fast sampling of diffusion models with exponential
integrator", Sec. 4, eq. 14) as a Diffrax solver.

The exponential integrator of the probability-flow ODE in the noise prediction ε: in the
rescaled state x̄ = x/α (where the transition Ψ of the linear part is the identity) the ODE is
dx̄/ds = ε(x̄, s) dr/ds, r = σ/α, and DEIS extrapolates ε by the Lagrange polynomial through
its values at the last k grid times ("t"AB: polynomial in time), integrating it against dr/ds
exactly up to quadrature:
x̄1 = x̄0 + Σ_j C_j ε_{-j}, C_j = ∫_{s0}^{s1} (dr/ds) ℓ_j(s) ds (eq. 14 with Ψ = 1),
with coefficients from the actual grid (variable steps), so order k holds on any smooth grid.
`basis="log_rho"` puts the polynomial in u = log r instead (C_j = ∫ e^u ℓ_j(u) du over
[log r0, log r1]; the "ρAB" variant of Zhang & Chen's code, and what diffusers'
`DEISMultistepScheduler` runs).
"""

from __future__ import annotations

from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .base import (
    AbstractGridSampler,
    GaussianKernel,
    check_final_rule,
    check_order,
    combine,
    push,
    step_order,
)

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(12)
"""Gauss–Legendre rule for the coefficient integrals (exact for polynomials of degree 23)."""


BASES = ("time", "log_rho")


def _lagrange_coefficients(drds, s0, s1, nodes):
    """C_j = ∫_{s0}^{s1} drds(s) ℓ_j(s) ds for the Lagrange basis ℓ_j on `nodes` (static length);
    s is the polynomial's variable (solver time, or log r with drds = exp)."""
    u = 0.5 * (s1 - s0) * (jnp.asarray(_NODES, s0.dtype) + 1.0) + s0
    w = 0.5 * (s1 - s0) * jnp.asarray(_WEIGHTS, s0.dtype) * jax.vmap(drds)(u)
    out = []
    for j in range(len(nodes)):
        ell = jnp.ones_like(u)
        for m in range(len(nodes)):
            if m != j:
                ell = ell * (u - nodes[m]) / (nodes[j] - nodes[m])
        out.append(jnp.sum(w * ell))
    return jnp.stack(out)


class DEIS(AbstractGridSampler):
    """DEIS-tAB of order 1–3 (`solver_order`, default 3): the last `solver_order` noise
    predictions ε_j = (x̄_j - D_j)/r_j kept in the solver state, lower-order warm start (step i
    uses order ≤ i + 1), and optionally (`lower_order_final`, off as in the paper) order ≤ N - i
    on the last steps of an N-step grid (`num_steps`; "diffusers" counts the final σ -> 0
    step, `base.FINAL_RULES`, and only on grids of N + 1 < 15 steps, as diffusers). `basis`
    "time" (tAB, the paper's) or "log_rho" (the polynomial in log r, as diffusers). Order 1
    is DDIM. One field evaluation a step."""

    sde: GaussianKernel
    solver_order: int = eqx.field(default=3, static=True)
    num_steps: int | None = eqx.field(default=None, static=True)
    lower_order_final: bool | str = eqx.field(default=False, static=True)
    basis: str = eqx.field(default="time", static=True)

    field_evals: ClassVar[int] = 1

    def __check_init__(self):
        check_final_rule("DEIS-tAB", self.lower_order_final)
        check_order("DEIS-tAB", self.solver_order, (1, 2, 3))
        if self.basis not in BASES:
            raise ValueError(f"DEIS's basis must be one of {BASES}, got {self.basis!r}")

    def order(self, terms):
        return self.solver_order

    def init(self, terms, t0, t1, y0, args):
        v0 = t0 if self.basis == "time" else -jnp.log(self.sde.noise_ratio(self.sde.T - t0))
        times = v0 - jnp.arange(1, 3, dtype=jnp.result_type(t0))  # placeholders, weight 0
        return jnp.zeros((2, *y0.shape), y0.dtype), times, jnp.zeros((), jnp.int32)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        hist, times, i = solver_state
        sde, T = self.sde, self.sde.T
        a0, a1 = sde.alpha(T - t0), sde.alpha(T - t1)
        r0 = sde.noise_ratio(T - t0)
        xbar = y0 / a0
        eps = (xbar - terms.vf(t0, y0, args)) / r0
        if self.basis == "time":
            drds, v0, v1 = jax.grad(lambda s: sde.noise_ratio(T - s)), t0, t1
        else:
            drds, v0, v1 = jnp.exp, jnp.log(r0), jnp.log(sde.noise_ratio(T - t1))
        v0 = jnp.asarray(v0, times.dtype)
        nodes = jnp.concatenate([v0[None], times])
        cands = [jnp.pad(_lagrange_coefficients(drds, v0, v1, nodes[:k]), (0, 3 - k))
                 for k in (1, 2, 3)]
        below = 15 if self.lower_order_final == "diffusers" else None  # as DEISMultistep
        k = step_order(i, self.solver_order, self.num_steps, self.lower_order_final, below)
        c = jnp.stack(cands)[k - 1]
        y1 = a1 * (xbar + combine(c, jnp.concatenate([eps[None], hist])))
        state = (push(hist, eps), push(times, v0), i + 1)
        return y1, None, dict(y0=y0, y1=y1), state, diffrax.RESULTS.successful
