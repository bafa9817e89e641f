"""The Metropolis-corrected predictor-corrector sampler as a Diffrax solver: a reverse-SDE
predictor, then MCMC kernels (`sdegen.energy.mcmc`: MALA, HMC) as correctors, with optional
sequential Monte Carlo reweighting. Its kernels are passed in as objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..processes import AbstractSDE


def snr_step_size(grad: Float[Array, "n *d"], noise: Float[Array, "n *d"], snr: float):
    """Langevin step ε = 2 (snr ‖z‖ / ‖∇ log p‖)² with both norms averaged over the batch
    (Song et al. 2021, Alg. 4 / App. G): ε tracks the scale of p_t along the reverse process."""
    axes = tuple(range(1, grad.ndim))
    grad_norm = jnp.mean(jnp.sqrt(jnp.sum(grad**2, axis=axes)))
    noise_norm = jnp.mean(jnp.sqrt(jnp.sum(noise**2, axis=axes)))
    return 2.0 * (snr * noise_norm / jnp.maximum(grad_norm, 1e-12)) ** 2


class MetropolisCorrected(diffrax.AbstractItoSolver):
    """Predictor–corrector sampler with Metropolis-corrected correctors (Song et al. 2021,
    Alg. 1 with the Langevin corrector replaced by MALA/HMC as in Du et al. 2023, Sec. 4).

    Predictor: one Euler–Maruyama step of the reverse SDE (the terms of the solve, in solver
    time s = T − t). Corrector: `n_corrector` steps of `kernel` at the new time t, targeting
    exp(−E(x, t)) exactly, with the Langevin step ε_t from the signal-to-noise rule
    (`snr_step_size`, fixed for the whole batch at each t). The solver state carries the key,
    the step index and the mean acceptance probability of each step's correctors (read it with
    `SaveAt(solver_state=True)`).

    With `sde` given, the particles also carry importance weights and are resampled — a
    sequential Monte Carlo sampler (Del Moral, Doucet & Jasra 2006, eq. 30, with the MCMC
    correctors as π_{k+1}-invariant moves): a step from t_k to t_{k+1} < t_k through the
    Euler–Maruyama proposal q(x' | x) multiplies each weight by
    exp(−E(x', t_{k+1}) + E(x, t_k)) L(x | x') / q(x' | x), with the backward kernel L the
    Euler–Maruyama step of the forward SDE from x'. Weights are normalised over the batch, so
    the unknown normalising constants of exp(−E(·, t)) cancel; the initial weights are
    exp(−E(x, T)) / p_prior(x), since the start is drawn from the prior; the batch is resampled
    (systematic) when the effective sample size falls below half the batch, and after the last
    step (the output is unweighted; the correctors then follow). Mass then moves
    between modes that local MCMC cannot cross once they have separated — which annealed
    tempering p_t^{1/τ} needs, since the modes' relative weights keep changing as they sharpen.
    """

    energy: Callable[[Array, Array], Array]
    kernel: Any  # an `sdegen.energy.mcmc.AbstractKernel` (MALA, HMC)
    T: float
    key: PRNGKeyArray
    num_steps: int = eqx.field(static=True)
    snr: float = 0.16
    n_corrector: int = eqx.field(static=True, default=1)
    sde: AbstractSDE | None = None

    term_structure: ClassVar = diffrax.MultiTerm[tuple[diffrax.AbstractTerm, diffrax.AbstractTerm]]
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    @property
    def field_evals(self) -> int:
        """Energy evaluations on the batch per step: predictor, step-size rule, the kernels'
        gradients, and (with SMC weights) the energy at the old and new points."""
        smc = 2 if self.sde is not None else 0
        return 1 + (1 + self.kernel.grad_evals) * self.n_corrector + smc

    def order(self, terms):
        return 1

    def strong_order(self, terms):
        return 0.5

    def init(self, terms, t0, t1, y0, args):
        zeros = jnp.zeros(self.num_steps, y0.dtype)
        log_w = jnp.zeros(y0.shape[0], y0.dtype)
        if self.sde is not None:  # the start is the prior, the first target exp(−E(·, T))
            t = jnp.asarray(self.T - t0, y0.dtype)
            log_w = -jax.vmap(self.energy, in_axes=(0, None))(y0, t)
            log_w = log_w - jax.vmap(self.sde.prior_logp)(y0)
            log_w = log_w - jnp.max(log_w)
        return self.key, jnp.zeros((), jnp.int32), zeros, zeros, log_w

    def _reweight(self, y0, y1, noise, ds, t_old, t_new, log_w, key, last):
        """SMC weight update for the move y0 (at t_old) → y1 (at t_new), then resampling;
        `noise` = g(t_old) dW is the random part of the Euler–Maruyama proposal."""
        sde, axes = self.sde, tuple(range(1, y0.ndim))
        energy = jax.vmap(self.energy, in_axes=(0, None))
        # proposal: y1 = y0 + [−f + g² score](y0, t_old) ds + g(t_old) dW
        log_q = -jnp.sum(noise**2, axis=axes) / (2 * sde.diffusion(t_old) ** 2 * ds)
        # backward kernel: forward EM step y0 ≈ y1 + f(y1, t_new) ds + g(t_new) dW
        mean_l = y1 + ds * jax.vmap(sde.drift, in_axes=(0, None))(y1, t_new)
        log_l = -jnp.sum((y0 - mean_l) ** 2, axis=axes) / (2 * sde.diffusion(t_new) ** 2 * ds)
        log_w = log_w - energy(y1, t_new) + energy(y0, t_old) + log_l - log_q
        log_w = jnp.where(jnp.isfinite(log_w), log_w, -jnp.inf)
        w = jax.nn.softmax(log_w)
        n = y1.shape[0]
        ess = 1.0 / jnp.sum(w**2)
        u = (jax.random.uniform(key, (), y1.dtype) + jnp.arange(n, dtype=y1.dtype)) / n
        idx = jnp.clip(jnp.searchsorted(jnp.cumsum(w), u), 0, n - 1)
        resample = (ess < 0.5 * n) | last  # the output is unweighted: resample at the end
        y1 = jnp.where(resample, y1[idx], y1)
        log_w = jnp.where(resample, jnp.zeros_like(log_w), log_w - jnp.max(log_w))
        return y1, log_w, ess / n

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        key, index, acceptance, ess_frac, log_w = solver_state
        ds_control, dw_control = terms.contr(t0, t1)
        drift_term, noise_term = terms.terms
        noise = noise_term.vf_prod(t0, y0, args, dw_control)
        y1 = y0 + drift_term.vf_prod(t0, y0, args, ds_control) + noise
        key, subkey, k_res = jax.random.split(key, 3)
        t = jnp.asarray(self.T - t1, y1.dtype)
        if self.sde is not None:
            t_old = jnp.asarray(self.T - t0, y1.dtype)
            y1, log_w, ess = self._reweight(y0, y1, noise, t1 - t0, t_old, t, log_w, k_res,
                                            index == self.num_steps - 1)
            ess_frac = ess_frac.at[index].set(ess)
        potential = lambda y: self.energy(y, t)
        grad_batch = jax.vmap(jax.grad(potential))

        def correct(y, k):
            k_z, k_step = jax.random.split(k)
            z = jax.random.normal(k_z, y.shape, y.dtype)
            eps = snr_step_size(grad_batch(y), z, self.snr)
            h = self.kernel.langevin_step_size(eps)
            keys = jax.random.split(k_step, y.shape[0])
            y, probs = jax.vmap(lambda yi, ki: self.kernel.step(potential, yi, ki, h))(y, keys)
            return y, jnp.mean(probs)

        y1, probs = jax.lax.scan(correct, y1, jax.random.split(subkey, self.n_corrector))
        acceptance = acceptance.at[index].set(jnp.mean(probs))
        state = (key, index + 1, acceptance, ess_frac, log_w)
        return y1, None, dict(y0=y0, y1=y1), state, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
