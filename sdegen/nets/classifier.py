"""Label-conditioned and label-predicting MLP networks on one example (any shape, flattened)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from .mlp import FourierTime


class ClassTimeMLP(eqx.Module):
    """Class-conditional field `net(x, t, y) -> shape of x` on ONE example: an MLP on
    [flatten(x), Fourier(t), e_y] with a learned embedding e_y of the label. Row `num_classes`
    of the embedding is the *null* class: `y=None` (or `y == num_classes`) asks for the
    unconditional field, which label dropout trains (Ho & Salimans 2022, Sec. 3.2)."""

    time_embed: FourierTime
    label_embed: eqx.nn.Embedding
    mlp: eqx.nn.MLP
    num_classes: int = eqx.field(static=True)

    def __init__(self, shape: tuple[int, ...], num_classes: int, *, key: PRNGKeyArray,
                 width: int = 128, depth: int = 3, n_freq: int = 16, max_freq: float = 64.0,
                 embed: int = 16):
        k1, k2 = jax.random.split(key)
        dim = int(jnp.prod(jnp.asarray(shape)))
        self.num_classes = int(num_classes)
        self.time_embed = FourierTime(n_freq, max_freq)
        self.label_embed = eqx.nn.Embedding(num_classes + 1, embed, key=k1)
        self.mlp = eqx.nn.MLP(dim + 2 * n_freq + embed, dim, width, depth,
                              activation=jax.nn.silu, key=k2)

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""],
                 y: Int[ArrayLike, ""] | None = None) -> Float[Array, "*d"]:
        y = self.num_classes if y is None else y
        h = jnp.concatenate([x.reshape(-1), self.time_embed(t).astype(x.dtype),
                             self.label_embed(jnp.asarray(y)).astype(x.dtype)])
        return self.mlp(h).reshape(x.shape)


class TimeClassifier(eqx.Module):
    """Noise-conditioned classifier `clf(x, t) -> logits` on ONE example: an MLP on
    [flatten(x), Fourier(t)] — the p_φ(y | x_t, t) of classifier guidance (Dhariwal & Nichol
    2021, Sec. 4), trained on noised data. `features(x, t)` is its last hidden layer (used as
    the feature extractor of a Fréchet distance)."""

    time_embed: FourierTime
    hidden: eqx.nn.MLP
    head: eqx.nn.Linear

    def __init__(self, shape: tuple[int, ...], num_classes: int, *, key: PRNGKeyArray,
                 width: int = 128, depth: int = 3, n_freq: int = 16, max_freq: float = 64.0):
        k1, k2 = jax.random.split(key)
        dim = int(jnp.prod(jnp.asarray(shape)))
        self.time_embed = FourierTime(n_freq, max_freq)
        self.hidden = eqx.nn.MLP(dim + 2 * n_freq, width, width, depth - 1,
                                 activation=jax.nn.silu, final_activation=jax.nn.silu, key=k1)
        self.head = eqx.nn.Linear(width, num_classes, key=k2)

    def features(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, " w"]:
        return self.hidden(jnp.concatenate([x.reshape(-1), self.time_embed(t).astype(x.dtype)]))

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, " k"]:
        return self.head(self.features(x, t))
