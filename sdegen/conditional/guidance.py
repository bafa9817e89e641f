"""Conditional generation: class-conditional score training with label dropout, classifier-free
guidance, and classifier guidance from a noise-conditioned classifier.

Guidance is a *field transform*: `ClassifierFreeGuidance` and `ClassifierGuidance` are fields
`field(x, t)` on one example, so every sampler of `sdegen.sample` (and `sdegen.log_prob`, the
encoder, the inpainting samplers) takes them unchanged. The label and the guidance scale are
array leaves: changing them reuses the compiled solve.

Labels are integers 0..K-1; the *null* label K stands for "no class" (the unconditional field of a
network trained with label dropout).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from ..objectives.score import _perturb
from ..processes import AbstractLinearSDE

ConditionalField = Callable[..., Float[Array, "*d"]]
"""`score(x, t, y)` on one example; `score(x, t, null)` is the unconditional score."""


def label_dropout(key: PRNGKeyArray, y: Int[ArrayLike, ""], p: float,
                  null: int) -> Int[Array, ""]:
    """Replace the label by the null label with probability `p` (Ho & Salimans 2022, Alg. 1,
    p_uncond), so one network learns both the conditional and the unconditional score."""
    return jnp.where(jax.random.uniform(key) < p, null, jnp.asarray(y))


def conditional_dsm_loss(
    sde: AbstractLinearSDE,
    score: ConditionalField,
    example: tuple[Float[Array, "*d"], Int[ArrayLike, ""]],
    key: PRNGKeyArray,
    *,
    null: int,
    p_uncond: float = 0.1,
    t_eps: float = 1e-5,
    weighting: str = "song",
) -> Float[Array, ""]:
    """Denoising score matching of the conditional score s(x_t, t, y) (Song et al. 2021, eq. 7,
    with the label as an extra input) under label dropout with probability `p_uncond`
    (Ho & Salimans 2022, Alg. 1). `example` is one (x0, y) pair."""
    x0, y = example
    k_drop, k_pert = jax.random.split(key)
    y = label_dropout(k_drop, y, p_uncond, null)
    t, weight, xt, z, std = _perturb(sde, x0, k_pert, t_eps, weighting)
    return weight * jnp.sum((score(xt, t, y) + z / std) ** 2)


def classifier_loss(
    sde: AbstractLinearSDE,
    classifier: Callable[[Float[Array, "*d"], Float[ArrayLike, ""]], Float[Array, " k"]],
    example: tuple[Float[Array, "*d"], Int[ArrayLike, ""]],
    key: PRNGKeyArray,
    *,
    t_eps: float = 1e-5,
) -> Float[Array, ""]:
    """Cross-entropy −log p_φ(y | x_t, t) of a noise-conditioned classifier on x_t drawn from the
    forward kernel at t ~ U[t_eps, T] (Dhariwal & Nichol 2021, Sec. 4.1: "train a classifier
    p_φ(y | x_t, t) on noisy images x_t"; Song et al. 2021, App. I.1)."""
    x0, y = example
    t, _, xt, _, _ = _perturb(sde, x0, key, t_eps, "song")
    return -jax.nn.log_softmax(classifier(xt, t))[y]


def batch_conditional_loss(objective: Callable, sde: AbstractLinearSDE, model: Callable,
                           batch: tuple[Float[Array, "n *d"], Int[Array, " n"]],
                           key: PRNGKeyArray, **kwargs) -> Float[Array, ""]:
    """Mean of a per-(x0, y) objective over a labelled batch, one key per example."""
    x0, y = batch
    keys = jax.random.split(key, x0.shape[0])
    return jnp.mean(jax.vmap(lambda x, c, k: objective(sde, model, (x, c), k, **kwargs))(
        x0, y, keys))


class ClassifierFreeGuidance(eqx.Module):
    """Classifier-free guided score for label `y` with scale `w` (Ho & Salimans 2022, eq. 6,
    ε̃ = (1 + w) ε(x, c) − w ε(x), written for the score, which is linear in ε):
    s̃(x, t) = (1 + w) s(x, t, y) − w s(x, t, ∅). With w = 0 it is the conditional score
    s(x, t, y); w > 0 sharpens towards the class, trading diversity for fidelity. A
    class-conditional *velocity* v(x, t, y) of a flow is guided by the same formula, which is
    exact there too (`sdegen.conditional.flow`: the velocity is affine in the score)."""

    score: ConditionalField
    y: Int[Array, ""]
    w: Float[Array, ""]
    null: int = eqx.field(static=True)

    def __init__(self, score: ConditionalField, y: Int[ArrayLike, ""], w: Float[ArrayLike, ""],
                 null: int):
        self.score = score
        self.y = jnp.asarray(y)
        self.w = jnp.asarray(w, dtype=float)
        self.null = int(null)

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, "*d"]:
        w = self.w.astype(x.dtype)
        return (1 + w) * self.score(x, t, self.y) - w * self.score(x, t, self.null)


class ClassifierGuidance(eqx.Module):
    """Classifier-guided score for label `y` with scale `w` (Dhariwal & Nichol 2021, Sec. 4.1
    and Alg. 1; Song et al. 2021, eq. 14 / App. I.1):
    ∇ₓ log p_t(x | y) ≈ s(x, t) + w ∇ₓ log p_φ(y | x, t), from an unconditional score `score(x, t)`
    and a noise-conditioned classifier `classifier(x, t) -> logits`. With w = 0 it is the
    unconditional score; with w = 1 and the exact posterior p_t(y | x) it is the exact
    class-conditional score (Bayes' rule)."""

    score: Callable[[Float[Array, "*d"], Float[ArrayLike, ""]], Float[Array, "*d"]]
    classifier: Callable[[Float[Array, "*d"], Float[ArrayLike, ""]], Float[Array, " k"]]
    y: Int[Array, ""]
    w: Float[Array, ""]

    def __init__(self, score, classifier, y: Int[ArrayLike, ""], w: Float[ArrayLike, ""]):
        self.score = score
        self.classifier = classifier
        self.y = jnp.asarray(y)
        self.w = jnp.asarray(w, dtype=float)

    def log_posterior(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """log p_φ(y | x, t)."""
        return jax.nn.log_softmax(self.classifier(x, t))[self.y]

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, "*d"]:
        grad = jax.grad(self.log_posterior)(x, t)
        return self.score(x, t) + self.w.astype(x.dtype) * grad
