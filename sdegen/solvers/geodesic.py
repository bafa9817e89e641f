"""The geodesic random walk on a manifold as a Diffrax solver: states are batched `(n, *d)` on
the manifold and the reverse dynamics run in solver time s = T - t."""

from __future__ import annotations

from typing import Any, ClassVar

import diffrax
import jax


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
