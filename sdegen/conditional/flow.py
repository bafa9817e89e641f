"""Class-conditional flow matching: the velocity v(x, t, y) of a probability path trained with
label dropout, so that one network gives the conditional and the unconditional (null-label)
velocity, and `ClassifierFreeGuidance` — the same field wrapper diffusion uses — guides it.

Guidance of a velocity. For a path x_t = a(t) x0 + b(t) ε, Tweedie's formula E[ε | x_t] =
−b ∇ log p_t(x_t) makes the marginal velocity E[ȧ x0 + ḃ ε | x_t = x] affine in the score,
v_t(x) = (ȧ/a) x + b² (ȧ/a − ḃ/b) ∇ log p_t(x), with the same coefficients for every label. So
the classifier-free guided score of Ho & Salimans 2022, eq. 6, (1 + w) s(x, t, y) − w s(x, t, ∅),
*is* the guided velocity (1 + w) v(x, t, y) − w v(x, t, ∅) = v_∅ + (1 + w)(v_y − v_∅): the
guided flow ṽ = (1 − ω) v_∅ + ω v_y of Zheng et al. 2023, "Guided flows for generative modeling
and decision making" (and Dao et al. 2023, "Flow matching in latent space") with ω = 1 + w.
`ClassifierFreeGuidance(v, y, w, null)` applies unchanged, in Ho & Salimans' convention: w = 0
is the conditional velocity (ω = 1), w = −1 the unconditional one.

Labels are integers 0..K-1 and the null label is K, as in `sdegen.conditional.guidance`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from ..objectives.flow import class_ot_coupling, fm_loss
from ..processes import AbstractProbabilityPath
from .guidance import label_dropout

ConditionalVelocity = Callable[..., Float[Array, "*d"]]
"""`velocity(x, t, y)` on one example; `velocity(x, t, null)` is the unconditional velocity."""


def conditional_fm_loss(
    path: AbstractProbabilityPath,
    velocity: ConditionalVelocity,
    example: tuple[Float[Array, "*d"], Int[ArrayLike, ""]],
    key: PRNGKeyArray,
    *,
    null: int,
    p_uncond: float = 0.1,
    t_eps: float = 0.0,
    noise: Float[Array, "*d"] | None = None,
) -> Float[Array, ""]:
    """Conditional flow matching of the class-conditional velocity ‖v(x_t, t, y) − u_t(x_t | x0)‖²
    (Lipman et al. 2023, eq. 9, with the label as an extra input; Zheng et al. 2023, Alg. 1)
    under label dropout with probability `p_uncond` (Ho & Salimans 2022, Alg. 1), as
    `conditional_dsm_loss` does for scores. `example` is one (x0, y) pair; `noise` fixes ε (an
    OT coupling pairs it with x0)."""
    x0, y = example
    k_drop, k_fm = jax.random.split(key)
    y = label_dropout(k_drop, y, p_uncond, null)
    return fm_loss(path, lambda x, t: velocity(x, t, y), x0, k_fm, t_eps=t_eps, noise=noise)


def conditional_ot_cfm_loss(
    path: AbstractProbabilityPath,
    velocity: ConditionalVelocity,
    batch: tuple[Float[Array, "n *d"], Int[Array, " n"]],
    key: PRNGKeyArray,
    *,
    null: int,
    p_uncond: float = 0.1,
    t_eps: float = 0.0,
) -> Float[Array, ""]:
    """Class-conditional OT-CFM on a labelled batch: noise coupled to the data within each class
    (`sdegen.objectives.class_ot_coupling`, so the noise of class y stays N(0, I)), then the
    mean of `conditional_fm_loss` over the pairs with label dropout. Dropout comes after the
    coupling; the null-labelled pairs are a class-blind subset of per-class couplings, whose
    mixture is again a coupling of N(0, I) with the data, so v(·, ·, ∅) learns the
    unconditional flow."""
    x0, y = batch
    k_eps, k_loss = jax.random.split(key)
    eps = class_ot_coupling(x0, jax.random.normal(k_eps, x0.shape, x0.dtype), y)
    keys = jax.random.split(k_loss, x0.shape[0])
    per = jax.vmap(lambda x, c, e, k: conditional_fm_loss(
        path, velocity, (x, c), k, null=null, p_uncond=p_uncond, t_eps=t_eps, noise=e))
    return jnp.mean(per(x0, y, eps, keys))
