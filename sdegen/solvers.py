"""Samplers that Diffrax lacks, written as Diffrax solvers (the shape of `diffrax.Euler`), so they
get `SaveAt`, progress meters and error reporting from the one `diffeqsolve` call site.

States are batched `(n, *d)`; the generative dynamics run in solver time s = T - t.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import diffrax
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, PRNGKeyArray

from .typing import Field


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


class Replacement(diffrax.AbstractItoSolver):
    """Any fixed-step sampler followed, after every step, by the *replacement* of the observed
    coordinates (mask = 1) with a fresh draw of the forward-noised observation at the new time,
    x_t[Ω] = α(t) y[Ω] + σ(t) z (Song et al. 2021, App. I.2, "imputation": the reverse SDE of
    the unknown coordinates driven by the score at [x(Ω̄), ŷ_t(Ω)] with ŷ_t ~ p_t(x(Ω) | y); the
    replacement method of their inpainting code). The replacement noise comes from a key in the
    solver state. `process.marginal(y, t) -> (α(t) y, σ(t))` is the forward kernel; states,
    `y` and `mask` are batched `(n, *d)` (or broadcast against it)."""

    solver: diffrax.AbstractSolver
    process: Any
    y: Array
    mask: Array
    key: PRNGKeyArray
    T: float

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):
        return self.solver.interpolation_cls

    @property
    def field_evals(self) -> int:
        return getattr(self.solver, "field_evals", 1)  # Euler and sdegen's fixed-step solvers

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args), self.key

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        inner, key = solver_state
        y1, err, dense, inner, result = self.solver.step(terms, t0, t1, y0, args, inner, made_jump)
        key, sub = jax.random.split(key)
        mean, std = self.process.marginal(self.y, self.T - t1)
        noised = mean + std * jax.random.normal(sub, y1.shape, y1.dtype)
        y1 = jnp.where(self.mask, noised.astype(y1.dtype), y1)
        if isinstance(dense, dict) and "y1" in dense:
            dense = dict(dense, y1=y1)
        return y1, err, dense, (inner, key), result

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


def diagonal_noise(g: Callable[[Array], Array]) -> Callable:
    """Vector field of a ControlTerm for scalar diffusion g(t) acting elementwise on the state."""

    def vf(s, y, args):
        return lx.DiagonalLinearOperator(jnp.broadcast_to(g(s), y.shape).astype(y.dtype))

    return vf




class GeodesicRandomWalk(diffrax.AbstractItoSolver):
    """Geodesic random walk (De Bortoli et al. 2022, RSGM, Alg. 1 forward / Alg. 2 reverse):
    the Euler–Maruyama increment Δ = b(y) Δs + g ΔW of the terms passed to the solve is
    projected onto the tangent space at y and followed along a geodesic, y ← exp_y(P_y Δ), so
    every state stays exactly on the manifold. On R^d (identity projection, exp_y(v) = y + v)
    it is Euler–Maruyama."""

    manifold: Any

    term_structure: ClassVar = diffrax.MultiTerm[tuple[diffrax.AbstractTerm, diffrax.AbstractTerm]]
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    @property
    def field_evals(self) -> int:
        return 1

    def order(self, terms):
        return 1

    def strong_order(self, terms):
        return 0.5

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        increment = terms.vf_prod(t0, y0, args, terms.contr(t0, t1))
        tangent = jax.vmap(self.manifold.to_tangent)(y0, increment)
        y1 = jax.vmap(self.manifold.exp)(y0, tangent)
        return y1, None, dict(y0=y0, y1=y1), None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
