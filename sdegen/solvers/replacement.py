"""Inpainting by replacement as a transparent Diffrax solver wrapper (an AbstractWrappedSolver):
after every step of the wrapped fixed-grid sampler the observed coordinates are overwritten.
Being a wrapped solver, it passes Diffrax's `isinstance` checks through to the solver it wraps
(an Itô solver stays an Itô solver for the SDE checks of `diffeqsolve`), and
`integrate.evals_per_step` counts the wrapped solver's field evaluations."""

from __future__ import annotations

from typing import Any

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray


class Replacement(diffrax.AbstractWrappedSolver):
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
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

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
