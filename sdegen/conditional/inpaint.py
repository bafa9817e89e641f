"""Inpainting / imputation: sample the unknown coordinates of x given the observed ones,
x(Ω) = y(Ω), from an unconditional score model, with the samplers of `sdegen.sample`.

Two methods (`inpaint(method=...)`):

- `"replace"` — the replacement method, which is the imputation of Song et al. 2021, App. I.2:
  after every sampler step the observed coordinates are overwritten by a fresh draw of the
  forward-noised observation α(t) y + σ(t) z (`sdegen.solvers.Replacement`, a wrapper around
  the chosen Diffrax sampler), so the next score is ∇ log p_t([x(Ω̄), ŷ_t(Ω)]). Cheap, but it
  approximates p_t(x(Ω̄) | x(Ω) = y) by conditioning on a *noisy* ŷ_t: on a correlated
  Gaussian it is measurably biased (tests/test_inpaint.py states by how much).
- `"tweedie"` — the conditional-SDE correction: the reverse SDE (or PF-ODE) of
  p_t(x | x0(Ω) = y), whose score is ∇ log p_t(x) + ∇ₓ log p(y(Ω) | x_t = x), with
  p(x0 | x_t) replaced by the Gaussian of its first two moments from Tweedie's formula
  (mean D(x_t) = E[x0 | x_t], covariance (σ²/α) ∂D/∂x_t; Boys et al. 2023, "Tweedie moment
  projected diffusions for inverse problems", eqs. 9–11; Chung et al. 2023, DPS, for the
  first-moment version). Exact for Gaussian data; one Jacobian of the denoiser per
  evaluation (D forward-mode JVPs), so meant for small images such as 8×8 digits.

Masks are boolean arrays of one example's shape; True marks an observed coordinate.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray

from ..processes import AbstractLinearSDE, denoiser
from ..sample import sample
from ..solvers import Replacement
from ..typing import Field

METHODS = ("replace", "tweedie")


def square_mask(shape: tuple[int, ...], top: int, left: int, size: int) -> Bool[Array, "*d"]:
    """Image mask (H, W[, C]) observing everything except a `size`×`size` square at (top, left)."""
    rows = jnp.arange(shape[0])[:, None]
    cols = jnp.arange(shape[1])[None, :]
    hole = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return jnp.broadcast_to(~hole.reshape(hole.shape + (1,) * (len(shape) - 2)), shape)


def half_mask(shape: tuple[int, ...], keep: str = "top") -> Bool[Array, "*d"]:
    """Image mask (H, W[, C]) observing one half: `keep` in {"top", "bottom", "left", "right"}."""
    h, w = shape[0], shape[1]
    rows = jnp.arange(h)[:, None] + jnp.zeros((1, w), int)
    cols = jnp.arange(w)[None, :] + jnp.zeros((h, 1), int)
    halves = {"top": rows < h // 2, "bottom": rows >= h // 2,
              "left": cols < w // 2, "right": cols >= w // 2}
    if keep not in halves:
        raise ValueError(f"keep must be one of {tuple(halves)}, got {keep!r}")
    m = halves[keep]
    return jnp.broadcast_to(m.reshape(m.shape + (1,) * (len(shape) - 2)), shape)


def random_mask(key: PRNGKeyArray, shape: tuple[int, ...], observed: float) -> Bool[Array, "*d"]:
    """Mask observing each coordinate independently with probability `observed`."""
    if not 0.0 <= observed <= 1.0:
        raise ValueError(f"observed must be a fraction in [0, 1], got {observed}")
    return jax.random.uniform(key, shape) < observed


class ReplacementHook(eqx.Module):
    """Wraps the sampler chosen by `sdegen.sample` in `sdegen.solvers.Replacement`."""

    process: AbstractLinearSDE
    y: Float[Array, "*d"]
    mask: Bool[Array, "*d"]
    key: PRNGKeyArray

    def __call__(self, solver):
        return Replacement(solver, self.process, self.y, self.mask, self.key,
                           float(self.process.T))


class TweedieConditionalScore(eqx.Module):
    """Score of x_t given the observation x0(Ω) = y (see the module docstring, "tweedie"):
    s(x, t) + J_Dᵀ C_ΩΩ⁻¹ (y − D(x))_Ω, with D the denoiser of `score`, J_D = ∂D/∂x and
    C = (σ(t)²/α(t)) J_D the Tweedie posterior covariance (symmetrised, held constant in the
    gradient as in Boys et al. 2023, Sec. 3.2). The eigenvalues of C_ΩΩ are floored at
    jitter·σ²/α² (σ²/α² is the prior-free posterior variance), a guard against a learned J_D
    that is not positive definite; `jitter=0` keeps the exact Gaussian answer."""

    process: AbstractLinearSDE
    score: Field
    y: Float[Array, "*d"]
    mask: Bool[Array, "*d"]
    jitter: float = eqx.field(static=True, default=0.05)

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, "*d"]:
        shape = x.shape
        D = denoiser(self.process, self.score)

        def d_flat(v):
            return D(v.reshape(shape), t).reshape(-1)

        xf = x.reshape(-1)
        d, J = d_flat(xf), jax.jacfwd(d_flat)(xf)
        a, s = self.process.alpha(t), self.process.std(t)
        C = (s**2 / a) * 0.5 * (J + J.T)
        m = self.mask.reshape(-1).astype(x.dtype)
        A = (m[:, None] * m[None, :]) * C + jnp.diag(1.0 - m)  # [[C_ΩΩ, 0], [0, I]]
        lam, V = jnp.linalg.eigh(A)
        lam = jnp.maximum(lam, self.jitter * s**2 / a**2)
        u = V @ ((V.T @ (m * (self.y.reshape(-1).astype(x.dtype) - d))) / lam)
        return self.score(x, t) + (J.T @ u).reshape(shape)


def inpaint(
    process: AbstractLinearSDE,
    score: Field,
    y: Float[Array, "*d"],
    mask: Bool[Array, "*d"],
    *,
    key: PRNGKeyArray,
    n: int,
    method: str = "replace",
    sampler: str = "sde",
    jitter: float = 0.05,
    **sample_kwargs,
) -> Float[Array, "n *d"]:
    """`n` completions of ONE observation `y` (its values off the mask are ignored) under the
    unconditional `score`, by `method` ("replace" or "tweedie", see the module docstring) and
    `sdegen.sample`'s `sampler` (`"sde"`, `"pc"`, a few-step sampler, or — for "tweedie" only —
    `"ode"`); `sample_kwargs` go to `sdegen.sample` (e.g. `num_steps`). Observed coordinates of
    the result equal `y` exactly: the sampler ends at t_eps > 0, where they are set to y."""
    if method not in METHODS:
        raise ValueError(f"unknown inpainting method {method!r}; choose one of {METHODS}")
    y = jnp.asarray(y)
    mask = jnp.broadcast_to(jnp.asarray(mask, dtype=bool), y.shape)
    k_sample, k_replace = jax.random.split(key)
    if method == "replace":
        if sampler == "ode":
            raise ValueError("method='replace' acts after every step of a fixed grid; use "
                             "sampler='sde', 'pc' or a few-step sampler (or method='tweedie')")
        out = sample(process, score, key=k_sample, shape=(n, *y.shape), method=sampler,
                     wrap=ReplacementHook(process, y, mask, k_replace), **sample_kwargs)
    else:
        field = TweedieConditionalScore(process, score, y, mask, jitter)
        out = sample(process, field, key=k_sample, shape=(n, *y.shape), method=sampler,
                     **sample_kwargs)
    return jnp.where(mask, y.astype(out.dtype), out)
