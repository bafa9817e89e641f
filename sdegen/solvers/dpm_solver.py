"""Exponential-integrator samplers for the probability-flow ODE in data-prediction form:
DDIM (Song, Meng & Ermon 2021; η > 0 its stochastic family) and DPM-Solver++ (Lu et al. 2022b,
"DPM-Solver++: Fast solver for guided sampling of diffusion probabilistic models"): 2M, the
multistep orders 1–3 (3M), the singlestep 2S and the stochastic 2M SDE, as Diffrax solvers.

With λ = log(α/σ) (the half log-SNR) and D the data prediction (`processes.denoiser`), the
PF-ODE of a linear SDE solves exactly as
x_{t1} = (σ1/σ0) x_{t0} + σ1 ∫ e^{λ} D dλ over [λ0, λ1] (Lu et al. 2022b, eq. 8); the solvers
differ in how they approximate D over the step. They step on a `diffrax.StepTo` grid in solver
time s = T - t and the term handed to the solve evaluates the batched denoiser at solver time s.
"""

from __future__ import annotations

from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from .base import (
    AbstractGridSampler,
    GaussianKernel,
    check_final_rule,
    check_order,
    combine,
    push,
    step_order,
)


class DDIM(AbstractGridSampler):
    """DDIM (Song, Meng & Ermon 2021, eq. 12). Deterministic (η = 0; Lu et al. 2022b, eq. 9
    with D held constant): x1 = (σ1/σ0) x0 + α1 (1 - e^{-h}) D(x0, t0), h = λ1 - λ0.
    With η > 0 the step draws fresh noise of std c = η σ1 √(1 - e^{-2h}) (eq. 16 of Song et al.
    written in λ, which makes it the same for VP, sub-VP and VE):
    x1 = α1 D0 + √(σ1² - c²) ε̂0 + c z with ε̂0 = (x0 - α0 D0)/σ0; η = 1 is DDPM's ancestral
    step (and DPM-Solver++ 2M SDE's first-order step). First order; one field evaluation a
    step; `key` drives the noise when η > 0."""

    sde: GaussianKernel
    eta: float = 0.0
    key: PRNGKeyArray | None = None

    field_evals: ClassVar[int] = 1

    def __check_init__(self):
        if not (0.0 <= self.eta <= 1.0):
            raise ValueError(f"DDIM's eta must lie in [0, 1] (0: deterministic, 1: DDPM), got "
                             f"{self.eta}")
        if self.eta > 0 and self.key is None:
            raise ValueError("DDIM with eta > 0 draws noise: pass key=")

    def order(self, terms):
        return 1

    def init(self, terms, t0, t1, y0, args):
        return self.key

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        sde, T = self.sde, self.sde.T
        d0 = terms.vf(t0, y0, args)
        if self.eta == 0:
            r0, r1 = sde.noise_ratio(T - t0), sde.noise_ratio(T - t1)  # e^{-λ}
            y1 = (sde.std(T - t1) / sde.std(T - t0)) * y0 + sde.alpha(T - t1) * (1.0 - r1 / r0) * d0
            return y1, None, dict(y0=y0, y1=y1), solver_state, diffrax.RESULTS.successful
        (a0, s0, l0), (a1, s1, l1) = self.schedule(t0), self.schedule(t1)
        c = self.eta * s1 * jnp.sqrt(-jnp.expm1(-2.0 * (l1 - l0)))
        keep = jnp.sqrt(jnp.maximum(s1**2 - c**2, 0.0))
        key, sub = jax.random.split(solver_state)
        z = jax.random.normal(sub, y0.shape, y0.dtype)
        y1 = (keep / s0) * y0 + (a1 - keep * a0 / s0) * d0 + c * z
        return y1, None, dict(y0=y0, y1=y1), key, diffrax.RESULTS.successful


class DPMSolverPP2M(AbstractGridSampler):
    """DPM-Solver++(2M), multistep second order (Lu et al. 2022b, Algorithm 2):
    x1 = (σ1/σ0) x0 - α1 (e^{-h} - 1) [(1 + 1/(2q)) D0 - 1/(2q) D_prev], q = h_prev / h,
    with D_prev and h_prev from the previous step kept in the solver state; the first step has
    no history and is DDIM. One field evaluation a step."""

    sde: GaussianKernel

    field_evals: ClassVar[int] = 1

    def order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return jnp.zeros_like(y0), jnp.zeros((), y0.dtype), jnp.array(False)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        sde, T = self.sde, self.sde.T
        d_prev, h_prev, has_prev = solver_state
        d0 = terms.vf(t0, y0, args)
        h = jnp.log(sde.noise_ratio(T - t0)) - jnp.log(sde.noise_ratio(T - t1))
        q = jnp.where(has_prev, h_prev / h, 1.0)
        d = jnp.where(has_prev, (1.0 + 0.5 / q) * d0 - (0.5 / q) * d_prev, d0)
        y1 = (sde.std(T - t1) / sde.std(T - t0)) * y0 - sde.alpha(T - t1) * jnp.expm1(-h) * d
        state = (d0, h.astype(y0.dtype), jnp.array(True))
        return y1, None, dict(y0=y0, y1=y1), state, diffrax.RESULTS.successful


def _dpm_weights(h, h0, h1, phi1, d2_weight=1.0):
    """Weights on [D0, D_{-1}, D_{-2}] of the D-part of a DPM-Solver++ multistep step divided by
    -α1: order 1 φ1 D0; order 2 φ1 (D0 + ½ D1_0); order 3 φ1 D0 - φ2 D1 + φ3 D2 (Lu et al.
    2022b, Alg. 2 and App. B; the official code's third-order multistep update), with
    φ1 = e^{-h} - 1, φ2 = φ1/h + 1, φ3 = φ2/h - ½, r0 = h0/h, r1 = h1/h,
    D1_0 = (D0 - D_{-1})/r0, D1_1 = (D_{-1} - D_{-2})/r1, D1 = D1_0 + r0/(r0+r1) (D1_0 - D1_1),
    D2 = (D1_0 - D1_1)/(r0 + r1). Returns the three candidate weight vectors, stacked.

    D2 ≈ h² D''/2 while the exact D'' term of the exponential integrator needs h² D'' there:
    with the published weight (`d2_weight = 1`, Lu et al.'s code and diffusers) the order-3
    step has local error O(h³) — measured, `tests/test_samplers_frontier.py` — and
    `d2_weight = 2` makes it third order (then it equals UniP-3, Zhao et al. 2023)."""
    e = jnp.eye(3, dtype=h.dtype)
    r0, r1 = h0 / h, h1 / h
    d1_0 = (e[0] - e[1]) / r0
    d1_1 = (e[1] - e[2]) / r1
    d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
    d2 = (d1_0 - d1_1) / (r0 + r1)
    phi2 = phi1 / h + 1.0
    phi3 = phi2 / h - 0.5
    return jnp.stack([phi1 * e[0], phi1 * (e[0] + 0.5 * d1_0),
                      phi1 * e[0] - phi2 * d1 + d2_weight * phi3 * d2])


def _history(y0, lam0, size):
    """An empty newest-first history: `size` zero D's and distinct placeholder λ's below λ0
    (never used with a non-zero weight, but finite, so unused candidate weights stay finite)."""
    lams = lam0 - jnp.arange(1, size + 1, dtype=lam0.dtype)
    return jnp.zeros((size, *y0.shape), y0.dtype), lams, jnp.zeros((), jnp.int32)


class DPMSolverPPMultistep(AbstractGridSampler):
    """DPM-Solver++ multistep of order 1, 2 or 3 (3M; Lu et al. 2022b, Alg. 2 and App. B):
    x1 = (σ1/σ0) x0 - α1 Σ_j w_j D_{-j} with the weights of `_dpm_weights` on the current and
    the two previous data predictions kept in the solver state; warm start with lower orders
    (step i uses order ≤ i + 1) and, with `lower_order_final` on grids of fewer than 15 steps
    (diffusers' rule; the official code uses 10), order ≤ N - i on the last steps
    (`lower_order_final="diffusers"`: ≤ N + 1 - i, on N + 1 < 15, counting the final σ -> 0
    step as diffusers does, `base.FINAL_RULES`). Order 2
    without the final rule is `DPMSolverPP2M`. One field evaluation a step. `num_steps` is the
    grid's step count (only the final-step rule reads it). `published=True` keeps the
    published D2 weight (what diffusers runs; locally only second order, see `_dpm_weights`),
    `published=False` the third-order one."""

    sde: GaussianKernel
    solver_order: int = eqx.field(default=3, static=True)
    num_steps: int | None = eqx.field(default=None, static=True)
    lower_order_final: bool | str = eqx.field(default=True, static=True)
    published: bool = eqx.field(default=True, static=True)

    field_evals: ClassVar[int] = 1

    def __check_init__(self):
        check_final_rule("DPM-Solver++ multistep", self.lower_order_final)
        check_order("DPM-Solver++ multistep", self.solver_order, (1, 2, 3))

    def order(self, terms):
        return self.solver_order

    def init(self, terms, t0, t1, y0, args):
        return _history(y0, self.schedule(t0)[2], 2)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        hist, lams, i = solver_state
        (_, s0, l0), (a1, s1, l1) = self.schedule(t0), self.schedule(t1)
        d0 = terms.vf(t0, y0, args)
        h = l1 - l0
        w = _dpm_weights(h, l0 - lams[0], lams[0] - lams[1], jnp.expm1(-h),
                         1.0 if self.published else 2.0)
        k = step_order(i, self.solver_order, self.num_steps, self.lower_order_final, below=15)
        y1 = (s1 / s0) * y0 - a1 * combine(w[k - 1], jnp.concatenate([d0[None], hist]))
        state = (push(hist, d0), push(lams, l0), i + 1)
        return y1, None, dict(y0=y0, y1=y1), state, diffrax.RESULTS.successful


class DPMSolverPP2S(AbstractGridSampler):
    """DPM-Solver++(2S), singlestep second order (Lu et al. 2022b, Alg. 1, r1 = ½): an
    intermediate point at λ_mid = λ0 + h/2, u = (σ_mid/σ0) x0 - α_mid (e^{-h/2} - 1) D0, then
    x1 = (σ1/σ0) x0 - α1 (e^{-h} - 1) D(u, s_mid). Two field evaluations a step."""

    sde: GaussianKernel

    field_evals: ClassVar[int] = 2

    def order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        (_, s0, l0), (a1, s1, l1) = self.schedule(t0), self.schedule(t1)
        h = l1 - l0
        s_mid = self.solver_time_of_lambda(l0 + 0.5 * h, t0)
        a_m, s_m, _ = self.schedule(s_mid)
        d0 = terms.vf(t0, y0, args)
        u = (s_m / s0) * y0 - a_m * jnp.expm1(-0.5 * h) * d0
        d_mid = terms.vf(s_mid, u, args)
        y1 = (s1 / s0) * y0 - a1 * jnp.expm1(-h) * d_mid
        return y1, None, dict(y0=y0, y1=y1), solver_state, diffrax.RESULTS.successful


class DPMSolverPP2MSDE(AbstractGridSampler):
    """SDE-DPM-Solver++(2M) (Lu et al. 2022b, App. B / the official code's "sde-dpmsolver++",
    midpoint form as in diffusers): with D1 = (D0 - D_{-1})/r0,
    x1 = (σ1/σ0) e^{-h} x0 + α1 (1 - e^{-2h}) (D0 + ½ D1) + σ1 √(1 - e^{-2h}) z, a first-order
    step (DDIM with η = 1) to warm start and, with `lower_order_final` on grids of fewer than 15
    steps, at the end. One field evaluation a step; `key` drives the noise."""

    sde: GaussianKernel
    key: PRNGKeyArray
    num_steps: int | None = eqx.field(default=None, static=True)
    lower_order_final: bool | str = eqx.field(default=True, static=True)

    field_evals: ClassVar[int] = 1

    def __check_init__(self):
        check_final_rule("DPM-Solver++ 2M SDE", self.lower_order_final)

    def order(self, terms):
        return 1  # strong order of the stochastic scheme; 2 in the ODE part

    def init(self, terms, t0, t1, y0, args):
        hist, lams, i = _history(y0, self.schedule(t0)[2], 1)
        return hist, lams, i, self.key

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        hist, lams, i, key = solver_state
        (_, s0, l0), (a1, s1, l1) = self.schedule(t0), self.schedule(t1)
        d0 = terms.vf(t0, y0, args)
        h = l1 - l0
        k = step_order(i, 2, self.num_steps, self.lower_order_final, below=15)
        half = jnp.where(k == 2, 0.5 * h / (l0 - lams[0]), 0.0)
        d = d0 + half * (d0 - hist[0])
        key, sub = jax.random.split(key)
        z = jax.random.normal(sub, y0.shape, y0.dtype)
        y1 = ((s1 / s0) * jnp.exp(-h)) * y0 - a1 * jnp.expm1(-2.0 * h) * d \
            + s1 * jnp.sqrt(-jnp.expm1(-2.0 * h)) * z
        state = (push(hist, d0), push(lams, l0), i + 1, key)
        return y1, None, dict(y0=y0, y1=y1), state, diffrax.RESULTS.successful
