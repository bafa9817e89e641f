"""Song et al.'s predictor–corrector sampler as a Diffrax solver (the shape of `diffrax.Euler`):
states are batched `(n, *d)` and the generative dynamics run in solver time s = T - t."""

from __future__ import annotations

from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from ..typing import Field


class ReverseDiffusionLangevin(diffrax.AbstractItoSolver):
    """Predictor–corrector sampler (Song et al. 2021, Algorithms 1–2 / App. G).

    Predictor: one Euler–Maruyama step of the reverse SDE (the terms passed to the solve,
    equivalent to the reverse-diffusion predictor to first order), or, given only the
    probability-flow ODE term, one Euler step of it (the "probability flow" predictor, App. G).
    Corrector: `n_corrector` steps of Langevin MCMC at the new time,
    x ← x + ε ∇log p_t(x) + √(2ε) z with the step size ε = 2 (snr ‖z‖ / ‖∇log p_t(x)‖)²
    set by the signal-to-noise ratio `snr` (Alg. 4, α = 1),
    with both norms averaged over the batch as in the authors' implementation: a per-sample
    step would depend on the state and bias the chain (in 2D it diverges). The corrector's
    noise comes from a key carried in the solver state.
    """

    score: Field
    T: float
    key: PRNGKeyArray
    snr: float = 0.16
    n_corrector: int = 1

    term_structure: ClassVar = diffrax.AbstractTerm  # reverse SDE (MultiTerm) or PF-ODE (ODETerm)
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    @property
    def field_evals(self) -> int:
        return 1 + self.n_corrector

    def order(self, terms):
        return 1

    def strong_order(self, terms):
        return 0.5

    def init(self, terms, t0, t1, y0, args):
        return self.key

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        control = terms.contr(t0, t1)
        y1 = jax.tree_util.tree_map(jnp.add, y0, terms.vf_prod(t0, y0, args, control))
        key, subkey = jax.random.split(solver_state)
        t = self.T - t1
        batch_axes = tuple(range(1, y1.ndim))

        def langevin(y, k):
            grad = jax.vmap(self.score, in_axes=(0, None))(y, t)
            z = jax.random.normal(k, y.shape, y.dtype)
            grad_norm = jnp.mean(jnp.sqrt(jnp.sum(grad**2, axis=batch_axes)))
            noise_norm = jnp.mean(jnp.sqrt(jnp.sum(z**2, axis=batch_axes)))
            eps = 2.0 * (self.snr * noise_norm / jnp.maximum(grad_norm, 1e-12)) ** 2
            return y + eps * grad + jnp.sqrt(2.0 * eps) * z, None

        y1, _ = jax.lax.scan(langevin, y1, jax.random.split(subkey, self.n_corrector))
        return y1, None, dict(y0=y0, y1=y1), key, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
