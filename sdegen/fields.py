"""Turn a network's output into a score field for a given linear SDE."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from .processes import AbstractLinearSDE

PARAMETERISATIONS = ("score", "noise", "edm")


class ScoreField(eqx.Module):
    """Score ∇ₓ log p_t(x) from a network `net(x, t)` (or `net(x, t, y)` for a label y), on
    examples of any shape (vectors, (H, W, C) images).

    - `"score"`: the network is the score.
    - `"noise"`: the network predicts the noise ε of x_t = α(t) x0 + σ(t) ε, and the score is
      -net(x, t) / σ(t) (Ho et al. 2020, eq. 11; Song et al. 2021, App. C): its output stays
      O(1) as t → 0 while the score grows like 1/σ(t).
    - `"edm"`: EDM preconditioning (Karras et al. 2022, Table 1 and eq. 7). With the noise
      level σ̂ = σ(t)/α(t) of the rescaled state x̂ = x/α(t) = x0 + σ̂ ε, the denoiser is
      D(x̂; σ̂) = c_skip x̂ + c_out F(c_in x̂, c_noise) with c_skip = σ_d²/(σ̂² + σ_d²),
      c_out = σ̂ σ_d / √(σ̂² + σ_d²), c_in = 1/√(σ̂² + σ_d²), c_noise = ¼ ln σ̂, where
      F = `net` and σ_d = `sigma_data`; the network then sees unit-variance inputs and targets
      at every noise level. The score follows from Tweedie's formula,
      ∇ log p_t(x) = (α(t) D − x) / σ(t)² (Karras et al. 2022, eq. 3, rescaled by α).
    """

    net: Callable[..., Float[Array, "*d"]]
    sde: AbstractLinearSDE
    parameterisation: str = eqx.field(static=True, default="noise")
    sigma_data: float = eqx.field(static=True, default=0.5)

    def __check_init__(self):
        if self.parameterisation not in PARAMETERISATIONS:
            raise ValueError(
                f"unknown parameterisation {self.parameterisation!r}; "
                f"choose one of {PARAMETERISATIONS}"
            )

    def _net(self, x, t, y):
        return self.net(x, t) if y is None else self.net(x, t, y)

    def __call__(
        self, x: Float[Array, "*d"], t: Float[ArrayLike, ""], y: Int[ArrayLike, ""] | None = None
    ) -> Float[Array, "*d"]:
        if self.parameterisation == "edm":
            return self._edm_score(x, t, y)
        out = self._net(x, t, y)
        if self.parameterisation == "noise":
            return -out / self.sde.std(t)
        return out

    def _edm_score(self, x, t, y):
        alpha, std = self.sde.alpha(t), self.sde.std(t)
        sigma = std / alpha
        sd2 = self.sigma_data**2
        norm = jnp.sqrt(sigma**2 + sd2)
        x_hat = x / alpha
        f = self._net(x_hat / norm, jnp.log(sigma) / 4, y)
        denoised = (sd2 / norm**2) * x_hat + (sigma * self.sigma_data / norm) * f
        return (alpha * denoised - x) / std**2
