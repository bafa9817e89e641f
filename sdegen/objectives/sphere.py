"""Per-example training objectives on S^2. Each takes ONE data point x0 ∈ S^2 and a key, draws
its own time, and returns a scalar; batch with `sdegen.objectives.batch_loss`.

- `rdsm_loss`: Riemannian denoising score matching (RSGM, De Bortoli et al. 2022, eq. 8 / Sec.
  3.3): λ(t) ‖s(x_t, t) − ∇ log K_{τ(t)}(x0, x_t)‖² with x_t drawn from the heat kernel.
- `rism_loss`: Riemannian implicit score matching (RSGM eq. 9; Hyvärinen 2005 on a manifold):
  λ(t) [½‖s(x_t, t)‖² + div_M s(x_t, t)], the divergence by Hutchinson with a Rademacher probe
  projected onto T_{x_t} S^2 (unbiased for tr(P J P), see `sdegen.likelihood`). Needs samples
  of p_t(·|x0) but not the kernel's score.
- `rfm_loss`: Riemannian flow matching (Chen & Lipman 2023, eq. 15 with geodesic paths):
  ‖v(x_t, t) − u_t(x_t | x0, x1)‖², x1 uniform, t ~ U[0, T].

λ(t) = 2τ(t) plays the role of σ(t)² in Song et al.'s weighting (eq. 7).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..processes import SphereBrownian, SphereGeodesicPath
from .base import uniform_time


def _heat_perturb(process: SphereBrownian, x0, k_t, k_x, t_eps):
    """t ~ U[t_eps, T] and x_t ~ K_{τ(t)}(x0, ·), the heat kernel (RSGM Sec. 3.3)."""
    t = uniform_time(k_t, t_eps, process.T, x0.dtype)
    return t, process.marginal_sample(k_x, x0, t)


def rdsm_loss(
    process: SphereBrownian,
    score: Callable,
    x0: Float[Array, " 3"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 1e-3,
) -> Float[Array, ""]:
    """Riemannian denoising score matching (RSGM eq. 8), weight λ = 2τ(t)."""
    t, xt = _heat_perturb(process, x0, *jax.random.split(key), t_eps)
    target = process.conditional_score(xt, x0, t)
    return 2.0 * process.tau(t) * jnp.sum((score(xt, t) - target) ** 2)


def rism_loss(
    process: SphereBrownian,
    score: Callable,
    x0: Float[Array, " 3"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 1e-3,
) -> Float[Array, ""]:
    """Riemannian implicit score matching with a Hutchinson divergence (RSGM eq. 9)."""
    k_t, k_x, k_v = jax.random.split(key, 3)
    t, xt = _heat_perturb(process, x0, k_t, k_x, t_eps)
    probe = process.manifold.to_tangent(xt, jax.random.rademacher(k_v, (3,), x0.dtype))
    s, jvp = jax.jvp(lambda y: score(y, t), (xt,), (probe,))
    return 2.0 * process.tau(t) * (0.5 * jnp.sum(s**2) + jnp.sum(probe * jvp))


def rfm_loss(
    path: SphereGeodesicPath,
    velocity: Callable,
    x0: Float[Array, " 3"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 1e-3,
) -> Float[Array, ""]:
    """Riemannian flow matching with geodesic conditional paths (Chen & Lipman 2023, eq. 15)."""
    k_t, k_x = jax.random.split(key)
    t = uniform_time(k_t, t_eps, path.T - t_eps, x0.dtype)
    xt, ut = path.sample_conditional(k_x, x0, t)
    return jnp.sum((velocity(xt, t) - ut) ** 2)
