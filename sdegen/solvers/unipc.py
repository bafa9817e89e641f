"""UniPC (Zhao et al. 2023, "UniPC: A unified predictor-corrector framework for fast sampling
of diffusion models") in data-prediction form, as a Diffrax solver.

With λ = log(α/σ), h = λ1 - λ0 and the previous data predictions D_{-m} at λ_{-m}
(r_m = (λ_{-m} - λ0)/h, D1_m = (D_{-m} - D0)/r_m), the predictor UniP-p is
x̃1 = (σ1/σ0) x0 - α1 (e^{-h} - 1) D0 - α1 B(h) Σ_{m<p} a_m D1_m (Alg. 1, eq. 8), and the
corrector UniC-p reuses the evaluation D(x̃1) that the next step needs anyway,
x1 = (σ1/σ0) x0 - α1 (e^{-h} - 1) D0 - α1 B(h) (Σ_{m<p} a^c_m D1_m + a^c_p (D(x̃1) - D0))
(Alg. 2, eq. 7), raising the order to p + 1 at no extra evaluation. The weights solve
R_p a = φ_p(h)/B(h) with R_p the Vandermonde matrix of r_1..r_{p-1}, 1 (Thm. 3.1; a = ½ for
p = 2's predictor and p = 1's corrector), B(h) = h ("bh1") or e^h - 1 ("bh2"; h → -h in the
data-prediction form, as in the official code).

As a Diffrax step from t_i to t_{i+1}: the state y at t_i is the *predicted* x̃_i; the step
evaluates D(x̃_i), corrects x̃_i to x_i with the corrector of the previous step, then predicts
x̃_{i+1}. The solve thus ends on a prediction: the corrector is not applied after the last
step (it would cost one more evaluation), as in the paper and in diffusers.
"""

from __future__ import annotations

import math
from typing import ClassVar

import diffrax
import equinox as eqx
import jax.numpy as jnp

from .base import (
    AbstractGridSampler,
    GaussianKernel,
    check_final_rule,
    check_order,
    combine,
    push,
    step_order,
)

VARIANTS = ("bh1", "bh2")


def _phis(h, p, variant):
    """(e^{-h} - 1, B, b): the right-hand side b_k = k! φ_{k+1}(-h)/B for k = 0..p-1 (the
    official code's recursion h φ_{k+1} = h φ_k / hh - 1/k!, hh = -h)."""
    hh = -h
    phi1 = jnp.expm1(hh)
    big_b = hh if variant == "bh1" else phi1
    hphi, fact, b = phi1 / hh - 1.0, 1.0, []
    for k in range(1, p + 1):
        b.append(hphi * fact / big_b)
        fact *= k + 1
        hphi = hphi / hh - 1.0 / math.factorial(k + 1)
    return phi1, big_b, jnp.stack(b)


def _unipc_weights(h, rks, variant):
    """Weights, per order p = 1..3, of the D-part divided by -α1: the predictor's on
    [D0, D_{-1}, D_{-2}] and the corrector's on [D_new, D0, D_{-1}, D_{-2}]."""
    pred, corr = [], []
    e3, e4 = jnp.eye(3, dtype=h.dtype), jnp.eye(4, dtype=h.dtype)
    for p in (1, 2, 3):
        phi1, big_b, b = _phis(h, p, variant)
        r = jnp.concatenate([rks[: p - 1], jnp.ones((1,), h.dtype)])
        vander = jnp.stack([r**k for k in range(p)])
        a_p = (jnp.array([0.5], h.dtype) if p == 2 else
               jnp.linalg.solve(vander[:-1, :-1], b[:-1]) if p == 3 else jnp.zeros((0,), h.dtype))
        a_c = jnp.array([0.5], h.dtype) if p == 1 else jnp.linalg.solve(vander, b)
        wp = phi1 * e3[0]
        wc = phi1 * e4[1] + big_b * a_c[-1] * (e4[0] - e4[1])
        for m in range(1, p):
            wp = wp + big_b * a_p[m - 1] * (e3[m] - e3[0]) / rks[m - 1]
            wc = wc + big_b * a_c[m - 1] * (e4[m + 1] - e4[1]) / rks[m - 1]
        pred.append(wp)
        corr.append(wc)
    return jnp.stack(pred), jnp.stack(corr)


class UniPC(AbstractGridSampler):
    """UniPC-p: UniP-p with the UniC corrector (order p + 1; `corrector=False` gives UniP-p
    alone). `solver_order` p = 1–3 (default 3, the paper's choice for unconditional sampling),
    `variant` "bh1" (B(h) = h) or "bh2" (B(h) = e^h - 1), lower-order warm start and, with
    `lower_order_final` (on by default, as in the paper), order ≤ N - i on the last steps of
    an N-step grid (`num_steps`). One field evaluation a step."""

    sde: GaussianKernel
    solver_order: int = eqx.field(default=3, static=True)
    variant: str = eqx.field(default="bh2", static=True)
    num_steps: int | None = eqx.field(default=None, static=True)
    lower_order_final: bool | str = eqx.field(default=True, static=True)
    corrector: bool = eqx.field(default=True, static=True)

    field_evals: ClassVar[int] = 1

    def __check_init__(self):
        check_final_rule("UniPC", self.lower_order_final)
        check_order("UniPC", self.solver_order, (1, 2, 3))
        if self.variant not in VARIANTS:
            raise ValueError(f"UniPC's variant must be one of {VARIANTS}, got {self.variant!r}")

    def order(self, terms):
        return self.solver_order + int(self.corrector)

    def init(self, terms, t0, t1, y0, args):
        lam0 = self.schedule(t0)[2]
        lams = lam0 - jnp.arange(1, 4, dtype=lam0.dtype)  # placeholders, weight 0
        hist = jnp.zeros((3, *y0.shape), y0.dtype)
        return y0, jnp.asarray(t0), hist, lams, jnp.ones((), jnp.int32), jnp.zeros((), jnp.int32)

    def _weights(self, lam1, lam0, lams):
        h = lam1 - lam0
        return _unipc_weights(h, (lams - lam0) / h, self.variant)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        x_prev, t_prev, hist, lams, k_prev, i = solver_state
        (a0, s0, l0), (a1, s1, l1) = self.schedule(t0), self.schedule(t1)
        d0 = terms.vf(t0, y0, args)
        if self.corrector:  # UniC of the previous step, from its corrected start x_prev
            s_prev = self.schedule(t_prev)[1]
            _, wc = self._weights(l0, lams[0], lams[1:])
            corrected = (s0 / s_prev) * x_prev - a0 * combine(
                wc[k_prev - 1], jnp.concatenate([d0[None], hist]))
            x0 = jnp.where(i > 0, corrected, y0)
        else:
            x0 = y0
        hist, lams = push(hist, d0), push(lams, l0)
        k = step_order(i, self.solver_order, self.num_steps, self.lower_order_final)
        wp, _ = self._weights(l1, l0, lams[1:])
        y1 = (s1 / s0) * x0 - a1 * combine(wp[k - 1], hist)
        state = (x0, jnp.asarray(t0, t_prev.dtype), hist, lams, k, i + 1)
        return y1, None, dict(y0=y0, y1=y1), state, diffrax.RESULTS.successful
