"""Forward SDEs dx = f(x, t) dt + g(t) dW on [0, T] (Song et al. 2021, "Score-Based Generative
Modeling through Stochastic Differential Equations", eq. 5) and the three linear instances of
their Section 3.4 / Appendix B: VP (eq. 11), sub-VP (eq. 17) and VE (eq. 9).

Every function acts on ONE example `x` of any shape; batch with `jax.vmap`.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..typing import Field, Scalar
from .base import AbstractDiffusion


class AbstractSDE(AbstractDiffusion):
    """Forward SDE `dx = f(x, t) dt + g(t) dW`, t in [0, T] (Song et al. 2021, eq. 5). Its
    field is the score ∇ₓ log p_t(x); its generative ODE is the probability flow (eq. 13)."""

    T: eqx.AbstractVar[float]

    @abc.abstractmethod
    def drift(self, x: Float[Array, "*d"], t: Scalar) -> Float[Array, "*d"]:
        """The drift f(x, t)."""

    @abc.abstractmethod
    def diffusion(self, t: Scalar) -> Scalar:
        """The scalar diffusion coefficient g(t)."""

    @abc.abstractmethod
    def marginal(
        self, x0: Float[Array, "*d"], t: Scalar
    ) -> tuple[Float[Array, "*d"], Float[Array, ""]]:
        """Mean and standard deviation of the Gaussian transition kernel p_t(x | x0)."""

    @abc.abstractmethod
    def prior_std(self) -> float:
        """Standard deviation of the isotropic Gaussian prior p_T used for generation."""

    def prior_sample(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """Draw from the prior N(0, prior_std² I) with the given (possibly batched) shape."""
        return self.prior_std() * jax.random.normal(key, shape)

    def prior_logp(self, z: Float[Array, "*d"]) -> Scalar:
        """Log-density of ONE example under the prior N(0, prior_std² I), in nats."""
        s = self.prior_std()
        n = z.size
        return -0.5 * jnp.sum(z**2) / s**2 - n * (math.log(s) + 0.5 * math.log(2 * math.pi))

    def ode_velocity(self, field: Field) -> Field:
        """The probability-flow velocity of this SDE with score `field` (eq. 13)."""
        from .dynamics import probability_flow  # dynamics builds on this module

        return probability_flow(self, field)


class AbstractLinearSDE(AbstractSDE):
    """An SDE with affine drift f(x, t) = -½ β(t) x (or 0), whose kernel is
    p_t(x | x0) = N(α(t) x0, σ(t)² I). The closed forms α(t), σ(t) make Gaussian-mixture
    data analytic at every t (the test oracle of `sdegen.data.GaussianMixture`)."""

    @abc.abstractmethod
    def alpha(self, t: Scalar) -> Scalar:
        """Mean coefficient α(t): E[x_t | x0] = α(t) x0."""

    @abc.abstractmethod
    def std(self, t: Scalar) -> Scalar:
        """Kernel standard deviation σ(t) (exact for the SDE as written)."""

    def marginal(self, x0, t):
        return self.alpha(t) * x0, self.std(t)

    def noise_ratio(self, t: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
        """r(t) = σ(t) / α(t): the noise level of the rescaled state x / α(t) = x0 + r(t) ε.

        This is the σ of EDM (Karras et al. 2022, "Elucidating the design space of
        diffusion-based generative models", eq. 4 with s(t) = α(t)) and e^{-λ(t)} of DPM-Solver
        (Lu et al. 2022, λ = log(α/σ) the half log-SNR). Increasing in t."""
        return self.std(t) / self.alpha(t)

    @abc.abstractmethod
    def time_of_noise_ratio(self, r: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
        """The inverse of `noise_ratio`: the forward time t with σ(t)/α(t) = r (closed form)."""


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


class AbstractBetaSDE(AbstractLinearSDE):
    """The VP family: drift -½β(t) x with the linear schedule β(t) = β_min + t(β_max - β_min),
    so α(t) = exp(-¼t²(β_max-β_min) - ½tβ_min) (Song et al. 2021, eq. 29)."""

    beta_min: eqx.AbstractVar[float]
    beta_max: eqx.AbstractVar[float]

    def __check_init__(self):
        _check_positive("beta_min", self.beta_min)
        _check_positive("beta_max", self.beta_max)

    def beta(self, t: Scalar) -> Scalar:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def _log_alpha(self, t):
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def drift(self, x, t):
        return -0.5 * self.beta(t) * x

    def alpha(self, t):
        return jnp.exp(self._log_alpha(t))

    def prior_std(self):
        return 1.0

    def _time_of_log_alpha(self, neg_log_alpha):
        """Root t >= 0 of ¼(β_max-β_min) t² + ½β_min t = -log α, in the cancellation-free form
        t = 2c / (b + √(b² + 4ac)) (also right when β_max = β_min)."""
        a = 0.25 * (self.beta_max - self.beta_min)
        b = 0.5 * self.beta_min
        return 2.0 * neg_log_alpha / (b + jnp.sqrt(b**2 + 4.0 * a * neg_log_alpha))


class VPSDE(AbstractBetaSDE):
    r"""Variance-preserving SDE, dx = -½β(t) x dt + √β(t) dW with β(t) = β_min + t(β_max - β_min)
    (Song et al. 2021, eq. 11; the continuous limit of DDPM, Ho et al. 2020).

    Kernel: α(t) = exp(-¼t²(β_max-β_min) - ½tβ_min), σ(t)² = 1 - α(t)² (eq. 29). Prior N(0, I).
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: float = 1.0

    def diffusion(self, t):
        return jnp.sqrt(self.beta(t))

    def std(self, t):
        return jnp.sqrt(-jnp.expm1(2.0 * self._log_alpha(t)))

    def time_of_noise_ratio(self, r):
        # r² = (1 - α²)/α²  =>  -log α = ½ log(1 + r²)
        return self._time_of_log_alpha(0.5 * jnp.log1p(r**2))


class SubVPSDE(AbstractBetaSDE):
    r"""Sub-VP SDE, dx = -½β(t) x dt + √(β(t)(1 - exp(-2∫₀ᵗβ))) dW (Song et al. 2021, eq. 17).

    Kernel: α(t) as for VP, σ(t) = 1 - α(t)² (eq. 29), always below the VP variance. Prior N(0, I).
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: float = 1.0

    def diffusion(self, t):
        return jnp.sqrt(self.beta(t) * -jnp.expm1(4.0 * self._log_alpha(t)))

    def std(self, t):
        return -jnp.expm1(2.0 * self._log_alpha(t))

    def time_of_noise_ratio(self, r):
        # r = (1 - α²)/α  =>  α = 2 / (r + √(r² + 4))  =>  -log α = asinh(r / 2)
        return self._time_of_log_alpha(jnp.arcsinh(0.5 * r))


class VESDE(AbstractLinearSDE):
    r"""Variance-exploding SDE, dx = √(d σ(t)²/dt) dW with σ(t) = σ_min (σ_max/σ_min)^t
    (Song et al. 2021, eq. 9; the continuous limit of SMLD/NCSN).

    Kernel: α(t) = 1 and σ(t)² - σ_min² **exactly** for the SDE as written (x at t = 0 is the
    data, not data + N(0, σ_min²)); Song et al. use σ(t)² (eq. 29), which differs by σ_min².
    Prior N(0, σ_max² I), as in Song et al.
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    T: float = 1.0

    def __check_init__(self):
        _check_positive("sigma_min", self.sigma_min)
        _check_positive("sigma_max", self.sigma_max)
        if self.sigma_max <= self.sigma_min:
            raise ValueError(
                f"sigma_max ({self.sigma_max}) must exceed sigma_min ({self.sigma_min})"
            )

    def sigma(self, t: Scalar) -> Scalar:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def drift(self, x, t):
        return jnp.zeros_like(x)

    def diffusion(self, t):
        return self.sigma(t) * math.sqrt(2.0 * math.log(self.sigma_max / self.sigma_min))

    def alpha(self, t):
        return jnp.ones_like(jnp.asarray(t, dtype=float))

    def std(self, t):
        return jnp.sqrt(self.sigma(t) ** 2 - self.sigma_min**2)

    def time_of_noise_ratio(self, r):
        # r² = σ_min² ((σ_max/σ_min)^{2t} - 1)
        log_ratio = math.log(self.sigma_max / self.sigma_min)
        return jnp.log1p((r / self.sigma_min) ** 2) / (2.0 * log_ratio)

    def prior_std(self):
        return self.sigma_max
