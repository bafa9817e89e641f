"""Training objectives. Per-example ones (`OBJECTIVES`: DSM, sliced SM, flow matching) take ONE
data example and a key, sample their own t ~ U[t_eps, T], and return a scalar; `batch_loss`
vmaps and averages them. Batch-level ones (`BATCH_OBJECTIVES`: OT-CFM, whose coupling pairs a
whole minibatch, and CNF maximum likelihood, one augmented ODE solve per batch) take the batch."""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from jaxtyping import Array, Float, PRNGKeyArray

from .augmented import augmented_solve
from .processes import AbstractLinearSDE, AbstractProbabilityPath, AbstractProcess
from .solvers import adaptive

WEIGHTINGS = ("song", "likelihood", "likelihood_is")


def log_snr_inverse(sde: AbstractLinearSDE, t) -> Float[Array, ""]:
    """ρ(t) = log(σ(t)² / α(t)²), increasing in t. For every linear SDE
    g(t)² = dσ²/dt - 2 σ² d log α/dt, so g(t)²/σ(t)² = dρ/dt."""
    return 2.0 * (jnp.log(sde.std(t)) - jnp.log(sde.alpha(t)))


def _time_and_weight(sde: AbstractLinearSDE, key, t_eps: float, weighting: str, dtype):
    """Draw t and return (t, λ(t) / q(t)) with q the density t is drawn from.

    - `"song"`: t ~ U[t_eps, T], λ = σ(t)² (Song et al. 2021, eq. 7).
    - `"likelihood"`: t ~ U, λ = g(t)², which makes the loss bound the KL to the data (Song,
      Durkan, Murray & Ermon 2021, "Maximum likelihood training of score-based diffusion
      models", Thm. 1). Unbiased but high-variance: λ/σ² blows up as t → 0.
    - `"likelihood_is"`: the same objective in expectation, with t drawn by importance sampling
      from q(t) ∝ g²/σ² = dρ/dt (Song et al. 2021b, Sec. 4.2), by inverting ρ (bisection); the
      weight is then σ(t)² (ρ(T) - ρ(t_eps)) / (T - t_eps), bounded.
    Weights are relative to t ~ U[t_eps, T], so all three estimate E_U[λ(t) ‖…‖²]."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")
    u = jax.random.uniform(key, (), dtype)
    if weighting != "likelihood_is":
        t = t_eps + u * (sde.T - t_eps)
        lam = sde.std(t) ** 2 if weighting == "song" else sde.diffusion(t) ** 2
        return t, lam
    lo, hi = log_snr_inverse(sde, t_eps), log_snr_inverse(sde, sde.T)
    target = lo + u * (hi - lo)

    def bisect(_, bounds):
        a, b = bounds
        mid = 0.5 * (a + b)
        below = log_snr_inverse(sde, mid) < target
        return jnp.where(below, mid, a), jnp.where(below, b, mid)

    a, b = jax.lax.fori_loop(0, 60, bisect, (jnp.asarray(t_eps, dtype), jnp.asarray(sde.T, dtype)))
    t = 0.5 * (a + b)
    return t, sde.std(t) ** 2 * (hi - lo) / (sde.T - t_eps)


def _perturb(sde, x0, key, t_eps, weighting):
    k_t, k_z = jax.random.split(key)
    t, weight = _time_and_weight(sde, k_t, t_eps, weighting, x0.dtype)
    mean, std = sde.marginal(x0, t)
    z = jax.random.normal(k_z, x0.shape, x0.dtype)
    return t, weight, mean + std * z, z, std


def dsm_loss(
    sde: AbstractLinearSDE,
    score: Callable,
    x0: Float[Array, "*d"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 1e-5,
    weighting: str = "song",
) -> Float[Array, ""]:
    """Denoising score matching (Vincent 2011; Song et al. 2021, eq. 7):
    λ(t) ‖s(x_t, t) - ∇log p_t(x_t | x0)‖², with ∇log p_t(x_t | x0) = -z / σ(t)."""
    t, weight, xt, z, std = _perturb(sde, x0, key, t_eps, weighting)
    s = score(xt, t)
    return weight * jnp.sum((s + z / std) ** 2)


def ssm_loss(
    sde: AbstractLinearSDE,
    score: Callable,
    x0: Float[Array, "*d"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 1e-5,
    weighting: str = "song",
) -> Float[Array, ""]:
    """Sliced score matching (Song, Garg, Shi & Ermon 2019, eq. 8) on the perturbed data x_t:
    λ(t) [vᵀ ∇ₓ(vᵀ s(x_t, t)) + ½ (vᵀ s(x_t, t))²] with a Gaussian projection v. Needs only
    samples of p_t, not the kernel's score; equals DSM up to a constant in expectation."""
    k_pert, k_v = jax.random.split(key)
    t, weight, xt, _, _ = _perturb(sde, x0, k_pert, t_eps, weighting)
    v = jax.random.normal(k_v, x0.shape, x0.dtype)
    s, jvp = jax.jvp(lambda y: score(y, t), (xt,), (v,))
    return weight * (jnp.sum(v * jvp) + 0.5 * jnp.sum(v * s) ** 2)


def fm_loss(
    path: AbstractProbabilityPath,
    velocity: Callable,
    x0: Float[Array, "*d"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 0.0,
    noise: Float[Array, "*d"] | None = None,
) -> Float[Array, ""]:
    """Conditional flow matching (Lipman et al. 2023, eq. 9; Tong et al. 2024, eq. 9):
    ‖v(x_t, t) - u_t(x_t | x0)‖² with t ~ U[t_eps, T], x_t = a(t) x0 + b(t) ε. `noise` fixes ε
    (an OT coupling pairs it with x0); otherwise ε ~ N(0, I) is drawn from `key`. Its gradient
    equals that of the marginal flow-matching loss (Lipman et al. 2023, Thm. 2)."""
    k_t, k_e = jax.random.split(key)
    t = t_eps + jax.random.uniform(k_t, (), x0.dtype) * (path.T - t_eps)
    eps = jax.random.normal(k_e, x0.shape, x0.dtype) if noise is None else noise
    xt, ut = path.conditional(x0, eps, t)
    return jnp.sum((velocity(xt, t) - ut) ** 2)


def _assignment(cost):
    rows, cols = scipy.optimize.linear_sum_assignment(np.asarray(cost))
    perm = np.empty_like(cols)
    perm[rows] = cols
    return perm.astype(np.int32)


def ot_coupling(
    x0: Float[Array, "n *d"], eps: Float[Array, "n *d"]
) -> Float[Array, "n *d"]:
    """Reorder the noise so (x0[i], ε[π(i)]) is the exact optimal-transport matching of the two
    minibatches under squared Euclidean cost (Tong et al. 2024, "Improving and generalizing
    flow-based generative models with minibatch optimal transport", Sec. 3.2 / Alg. 2; Pooladian
    et al. 2023). Exact assignment (Hungarian-type, `scipy.optimize.linear_sum_assignment`, run
    on the host through `jax.pure_callback`): O(n³), a few ms for n ≤ 512 — cheaper than a
    converged Sinkhorn at these sizes, and with no entropic blur. No gradient flows through π."""
    n = x0.shape[0]
    diff = x0.reshape(n, 1, -1) - eps.reshape(1, n, -1)
    cost = jnp.sum(diff**2, axis=-1)
    perm = jax.pure_callback(_assignment, jax.ShapeDtypeStruct((n,), jnp.int32),
                             jax.lax.stop_gradient(cost))
    return eps[perm]


def ot_cfm_loss(
    path: AbstractProbabilityPath,
    velocity: Callable,
    x0: Float[Array, "n *d"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 0.0,
) -> Float[Array, ""]:
    """OT-CFM (Tong et al. 2024, Alg. 2): draw a noise minibatch, pair it with the data by
    `ot_coupling`, and average the conditional flow-matching loss over the pairs."""
    k_eps, k_loss = jax.random.split(key)
    eps = ot_coupling(x0, jax.random.normal(k_eps, x0.shape, x0.dtype))
    keys = jax.random.split(k_loss, x0.shape[0])
    per = jax.vmap(lambda x, e, k: fm_loss(path, velocity, x, k, t_eps=t_eps, noise=e))
    return jnp.mean(per(x0, eps, keys))


def maxlik_loss(
    process: AbstractProcess,
    velocity: Callable,
    x0: Float[Array, "n *d"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 0.0,
    trace: str = "hutchinson",
    kinetic: float = 0.0,
    frobenius: float = 0.0,
    rtol: float = 1e-3,
    atol: float = 1e-3,
    solver: str = "tsit5",
    max_steps: int = 2048,
) -> Float[Array, ""]:
    """CNF maximum likelihood (Chen et al. 2018; Grathwohl et al. 2019, FFJORD, eq. 4 with the
    Hutchinson trace of eq. 7, one Rademacher probe per example fixed across the solve), plus
    the RNODE penalties λ_K ∫‖v‖² dt + λ_J ∫‖∂v/∂x‖²_F dt (Finlay et al. 2020, Sec. 4): the
    batch mean of -log p(x0) + `kinetic`·K + `frobenius`·J. The ODE is `sdegen.augmented`'s, the
    same as `sdegen.log_prob`'s (which evaluates with the exact trace).

    **Adjoint.** Gradients use Diffrax's `RecursiveCheckpointAdjoint`: backpropagation through
    the solver's own steps (discretise-then-optimise), so the gradient is the exact gradient of
    the loss that was computed, whatever the tolerance — the loose training tolerance
    (rtol = atol = 1e-3) then costs accuracy of the loss, not consistency of its gradient.
    `BacksolveAdjoint` (optimise-then-discretise, Chen et al. 2018) saves memory but re-solves
    the ODE backwards, so its gradient is inexact at loose tolerances, and it doubles the NFE;
    for 2-D toy batches memory is not the constraint. A failed solve (step limit) makes the loss
    NaN, which the training loop's guard reports."""
    probes = None
    if trace == "hutchinson":
        probes = jax.random.rademacher(key, x0.shape, dtype=x0.dtype)
    elif trace != "exact":
        raise ValueError(f"unknown trace estimator {trace!r}; choose 'exact' or 'hutchinson'")
    solver_obj, controller = adaptive(solver, rtol, atol)
    regularise = kinetic > 0 or frobenius > 0
    lp, reg, sol = augmented_solve(process, velocity, x0, probes, solver=solver_obj,
                                   controller=controller, t_eps=t_eps, max_steps=max_steps,
                                   regularise=regularise,
                                   adjoint=diffrax.RecursiveCheckpointAdjoint())
    loss = -jnp.mean(lp)
    if regularise:
        loss = loss + kinetic * jnp.mean(reg["kinetic"]) + frobenius * jnp.mean(reg["frobenius"])
    ok = sol.result == diffrax.RESULTS.successful
    return jnp.where(ok, loss, jnp.nan)


OBJECTIVES = {"dsm": dsm_loss, "ssm": ssm_loss, "fm": fm_loss}
"""Per-example objectives, averaged over a batch by `batch_loss`."""

BATCH_OBJECTIVES = {"ot_cfm": ot_cfm_loss, "maxlik": maxlik_loss}
"""Objectives that need the whole batch: `loss(process, field, x0_batch, key, **kwargs)`."""


def batch_loss(
    objective: Callable,
    sde: AbstractProcess,
    score: Callable,
    x0: Float[Array, "n *d"],
    key: PRNGKeyArray,
    **kwargs,
) -> Float[Array, ""]:
    """Mean of a per-example objective over a batch, one independent key per example."""
    keys = jax.random.split(key, x0.shape[0])
    return jnp.mean(jax.vmap(lambda x, k: objective(sde, score, x, k, **kwargs))(x0, keys))
