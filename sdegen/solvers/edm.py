"""EDM's second-order sampler (Karras et al. 2022, "Elucidating the design space of
diffusion-based generative models", Algorithms 1 and 2) as a Diffrax solver.

It works on the rescaled state x̄ = x / α(t) with noise level r = σ(t)/α(t), where the
probability-flow ODE of any linear SDE reads dx̄/dr = (x̄ - D(x, t)) / r (`processes.denoiser`),
and is driven by a `diffrax.StepTo` grid in solver time s = T - t (normally the Karras grid of
`grids.karras_grid`). The term handed to the solve evaluates the batched denoiser D at solver
time s.
"""

from __future__ import annotations

import math
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from .base import AbstractGridSampler, GaussianKernel


class EDMSampler(AbstractGridSampler):
    """Heun steps in r with optional "churn" (Karras et al. 2022, Alg. 2; Alg. 1 when churn = 0).

    One step from r_i to r_{i+1}: with γ = min(churn / N, √2 - 1) when s_tmin ≤ r_i ≤ s_tmax
    (else 0), raise the noise to r̂ = r_i (1 + γ) (capped at r(T), where the prior lives) by
    adding fresh noise x̄ ← x̄ + √(r̂² - r_i²) s_noise z (Alg. 2, lines 5–6); then one Euler step
    d = (x̄ - D)/r̂ to r_{i+1} and the trapezoidal (Heun) correction with d' at r_{i+1}
    (lines 7–10). Two field evaluations a step. EDM skips the correction on its last step
    (Alg. 1, line 9: it ends at r = 0); sdegen ends at t_eps > 0 and by default corrects every
    step: `skip_last_correction=True` ends with EDM's Euler step instead, one evaluation fewer
    (`evals_saved`; then `num_steps` must be the grid's step count).
    """

    sde: GaussianKernel
    key: PRNGKeyArray | None = None
    churn: float = 0.0
    num_steps: int = 1
    s_tmin: float = 0.0
    s_tmax: float = math.inf
    s_noise: float = 1.0
    skip_last_correction: bool = eqx.field(default=False, static=True)

    field_evals: ClassVar[int] = 2

    @property
    def evals_saved(self) -> int:
        """Field evaluations the whole solve makes fewer than `field_evals` × steps."""
        return int(self.skip_last_correction)

    def order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return self.key, jnp.zeros((), jnp.int32)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        sde, T = self.sde, self.sde.T
        r0, r1 = sde.noise_ratio(T - t0), sde.noise_ratio(T - t1)
        xbar = y0 / sde.alpha(T - t0)
        key, i = solver_state
        if self.churn > 0:
            key, subkey = jax.random.split(key)
            gamma = min(self.churn / self.num_steps, math.sqrt(2.0) - 1.0)
            gamma = jnp.where((r0 >= self.s_tmin) & (r0 <= self.s_tmax), gamma, 0.0)
            r_hat = jnp.minimum(r0 * (1.0 + gamma), sde.noise_ratio(T))
            z = jax.random.normal(subkey, y0.shape, y0.dtype)
            xbar = xbar + jnp.sqrt(jnp.maximum(r_hat**2 - r0**2, 0.0)) * self.s_noise * z
            s_hat = (T - sde.time_of_noise_ratio(r_hat)).astype(t0.dtype)
            r0 = r_hat
        else:
            s_hat = t0
        a_hat, a1 = sde.alpha(T - s_hat), sde.alpha(T - t1)
        d0 = (xbar - terms.vf(s_hat, a_hat * xbar, args)) / r0
        xbar_euler = xbar + (r1 - r0) * d0

        def heun():
            d1 = (xbar_euler - terms.vf(t1, a1 * xbar_euler, args)) / r1
            return a1 * (xbar + (r1 - r0) * 0.5 * (d0 + d1))

        if self.skip_last_correction:
            y1 = jax.lax.cond(i == self.num_steps - 1, lambda: a1 * xbar_euler, heun)
        else:
            y1 = heun()
        return y1, None, dict(y0=y0, y1=y1), (key, i + 1), diffrax.RESULTS.successful
