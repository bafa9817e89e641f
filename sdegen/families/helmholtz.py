"""The Helmholtz machine (Dayan, Hinton, Neal & Zemel 1995, "The Helmholtz Machine") trained by
the wake–sleep algorithm (Hinton, Dayan, Frey & Neal 1995, "The wake-sleep algorithm for
unsupervised neural networks"): layers of binary stochastic units with a top-down generative
model p and a bottom-up recognition model q. Acts on ONE binary example; batch with `jax.vmap`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def _bernoulli_logp(h, logits):
    return jnp.sum(h * jax.nn.log_sigmoid(logits) + (1 - h) * jax.nn.log_sigmoid(-logits))


class HelmholtzMachine(eqx.Module):
    """Sigmoid belief network with `sizes = (d, h1, ..., hL)`.

    - Generative model: h_L ~ Bern(σ(b)), then h_{l-1} | h_l ~ Bern(σ(G_l h_l + c_l)) down to
      x = h_0.
    - Recognition model: h_l | h_{l-1} ~ Bern(σ(R_l h_{l-1} + r_l)) up from x.
    """

    top_logits: Float[Array, " top"]
    generative: list[eqx.nn.Linear]   # generative[l-1]: h_l -> logits of h_{l-1}
    recognition: list[eqx.nn.Linear]  # recognition[l-1]: h_{l-1} -> logits of h_l

    def __init__(self, sizes: Sequence[int], *, key: PRNGKeyArray):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must be (d, h1, ...) with positive entries, got {sizes}")
        keys = jax.random.split(key, 2 * (len(sizes) - 1))
        self.top_logits = jnp.zeros(sizes[-1])
        self.generative = [eqx.nn.Linear(sizes[i + 1], sizes[i], key=keys[2 * i])
                           for i in range(len(sizes) - 1)]
        self.recognition = [eqx.nn.Linear(sizes[i], sizes[i + 1], key=keys[2 * i + 1])
                            for i in range(len(sizes) - 1)]

    def recognise(self, x: Float[Array, " d"], key: PRNGKeyArray
                  ) -> tuple[list[Array], Float[Array, ""]]:
        """Hidden states h_1..h_L ~ q(· | x) and log q(h | x)."""
        hs, log_q, below = [], 0.0, x
        for layer, k in zip(self.recognition, jax.random.split(key, len(self.recognition)),
                            strict=True):
            logits = layer(below)
            h = jax.random.bernoulli(k, jax.nn.sigmoid(logits)).astype(x.dtype)
            log_q = log_q + _bernoulli_logp(h, logits)
            hs.append(h)
            below = h
        return hs, log_q

    def log_recognition(self, x: Float[Array, " d"], hs: Sequence[Array]) -> Float[Array, ""]:
        """log q(h | x) of given hidden states."""
        below, out = x, 0.0
        for layer, h in zip(self.recognition, hs, strict=True):
            out = out + _bernoulli_logp(h, layer(below))
            below = h
        return out

    def log_joint(self, x: Float[Array, " d"], hs: Sequence[Array]) -> Float[Array, ""]:
        """log p(x, h) of the generative model."""
        out = _bernoulli_logp(hs[-1], self.top_logits)
        states = [x, *hs]
        for i, layer in enumerate(self.generative):
            out = out + _bernoulli_logp(states[i], layer(states[i + 1]))
        return out

    def dream(self, key: PRNGKeyArray) -> tuple[Float[Array, " d"], list[Array]]:
        """A 'fantasy' (x, h) ~ p(x, h), ancestral sampling from the top."""
        keys = jax.random.split(key, len(self.generative) + 1)
        dtype = self.top_logits.dtype
        h = jax.random.bernoulli(keys[-1], jax.nn.sigmoid(self.top_logits)).astype(dtype)
        hs = [h]
        for i in reversed(range(len(self.generative))):
            logits = self.generative[i](hs[0])
            hs.insert(0, jax.random.bernoulli(keys[i], jax.nn.sigmoid(logits)).astype(dtype))
        return hs[0], hs[1:]

    def generate(self, key: PRNGKeyArray) -> Float[Array, " d"]:
        """One draw x ~ p(x)."""
        return self.dream(key)[0]


def wake_sleep_loss(model: HelmholtzMachine, x: Float[Array, " d"], key: PRNGKeyArray
                    ) -> Float[Array, ""]:
    """One wake–sleep step as a surrogate loss whose gradient is the algorithm's update
    (Hinton et al. 1995):

    - wake: h ~ q(· | x) and the generative weights follow ∇ log p(x, h);
    - sleep: (x', h') ~ p and the recognition weights follow ∇ log q(h' | x').

    Binary samples carry no gradient, so −log p(x, h) only moves the generative weights and
    −log q(h' | x') only the recognition weights: their sum, minimised by any optimiser, gives
    both phases at once. It is not the gradient of one objective (wake–sleep is not)."""
    k_wake, k_sleep = jax.random.split(key)
    hs, _ = model.recognise(x, k_wake)
    hs = [jax.lax.stop_gradient(h) for h in hs]
    x_dream, h_dream = model.dream(k_sleep)
    h_dream = [jax.lax.stop_gradient(h) for h in h_dream]
    return -model.log_joint(x, hs) - model.log_recognition(jax.lax.stop_gradient(x_dream),
                                                           h_dream)


def helmholtz_log_prob(model: HelmholtzMachine, x: Float[Array, " d"], key: PRNGKeyArray,
                       k: int = 256) -> Float[Array, ""]:
    """Importance-sampled log p(x) ≈ log (1/k) Σᵢ p(x, hᵢ)/q(hᵢ | x), hᵢ ~ q(· | x), the
    recognition model as proposal (a stochastic lower bound in expectation, by Jensen; cf. Burda
    et al. 2016). Exact as k → ∞."""

    def log_w(kk):
        hs, log_q = model.recognise(x, kk)
        return model.log_joint(x, hs) - log_q

    lw = jax.vmap(log_w)(jax.random.split(key, k))
    return jax.nn.logsumexp(lw) - math.log(k)
