"""Velocity-field processes: flow-matching probability paths and the continuous normalizing
flow. Their field *is* the velocity of the generative ODE, so `ode_velocity(field) = field`.

**Time convention.** As for the SDEs, data sit at t = 0 and noise at t = T = 1. Lipman et al.
2023 ("Flow Matching for Generative Modeling", ICLR) run the other way (noise x₀ at their
t' = 0, data x₁ at t' = 1): every formula below is theirs with t' = 1 - t, and the velocity
changes sign (dx/dt = -dx/dt'). The fields are smooth at t = 0, so generation and the likelihood
may integrate to t = 0 exactly (`regular_at_zero`), unlike a score, which blows up there.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..typing import Field, Scalar
from .base import AbstractProcess
from .sde import VPSDE


class AbstractVelocityProcess(AbstractProcess):
    """A process whose learned field is the generative velocity itself, with the standard
    normal prior N(0, I) at t = T."""

    regular_at_zero: ClassVar[bool] = True

    def prior_sample(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """Draw from N(0, I) with the given (possibly batched) shape."""
        return jax.random.normal(key, shape)

    def prior_logp(self, z: Float[Array, "*d"]) -> Scalar:
        """Log-density of ONE example under N(0, I), in nats."""
        return -0.5 * jnp.sum(z**2) - 0.5 * z.size * math.log(2 * math.pi)

    def ode_velocity(self, field: Field) -> Field:
        """The field is the velocity dx/dt in forward time t."""
        return field


class CNF(AbstractVelocityProcess):
    """Continuous normalizing flow (Chen et al. 2018, "Neural ODEs", Sec. 4; Grathwohl et al.
    2019, FFJORD): dx/dt = v(x, t) carries data at t = 0 to N(0, I) at t = T, and the model is
    trained by maximum likelihood through the instantaneous change of variables (Chen et al.
    2018, Thm. 1; `sdegen.objectives.maxlik_loss`). It has no prescribed path in between."""

    T: float = 1.0


class AbstractProbabilityPath(AbstractVelocityProcess):
    """A conditional probability path p_t(x | x0) = N(a(t) x0, b(t)² I) from data x0 at t = 0 to
    (about) N(0, I) at t = T, written x_t = a(t) x0 + b(t) ε (Lipman et al. 2023, eq. 10), with
    its conditional velocity u_t(x_t | x0) = a'(t) x0 + b'(t) ε (eq. 13 in terms of ε). Flow
    matching regresses the field on u_t (`sdegen.objectives.fm_loss`)."""

    T: eqx.AbstractVar[float]

    @abc.abstractmethod
    def coefficients(self, t: Scalar) -> tuple[Scalar, Scalar, Scalar, Scalar]:
        """(a(t), b(t), a'(t), b'(t)) of the path x_t = a(t) x0 + b(t) ε."""

    def conditional(
        self, x0: Float[Array, "*d"], eps: Float[Array, "*d"], t: Scalar
    ) -> tuple[Float[Array, "*d"], Float[Array, "*d"]]:
        """(x_t, u_t(x_t | x0)) for data `x0` paired with noise `eps` (Lipman et al. 2023,
        eqs. 10 and 13; Tong et al. 2024, eq. 14 when the pair comes from an OT coupling)."""
        a, b, da, db = self.coefficients(t)
        return a * x0 + b * eps, da * x0 + db * eps

    # The path as a Gaussian schedule: the few-step samplers of `sdegen.solvers` read these
    # exactly as they read a linear SDE's (same names, same meaning).

    def alpha(self, t: Scalar) -> Scalar:
        """Mean coefficient α(t) = a(t) of the path."""
        return self.coefficients(t)[0]

    def std(self, t: Scalar) -> Scalar:
        """Kernel standard deviation σ(t) = b(t) of the path."""
        return self.coefficients(t)[1]

    def marginal(self, x0: Float[Array, "*d"], t: Scalar) -> tuple[Float[Array, "*d"], Scalar]:
        """Mean and std of p_t(x | x0) = N(a(t) x0, b(t)² I)."""
        a, b, _, _ = self.coefficients(t)
        return a * x0, b

    def noise_ratio(self, t: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
        """r(t) = b(t)/a(t) = e^{-λ(t)}, λ the half log-SNR (as `AbstractLinearSDE.noise_ratio`);
        infinite where a(t) = 0 (a pure-noise prior)."""
        return self.std(t) / self.alpha(t)

    def time_of_noise_ratio(self, r: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
        """The time t in [0, T] with r(t) = r, for r increasing in t: bisection to machine
        precision (64 halvings); paths with a closed form override it."""
        r = jnp.asarray(r, dtype=float)

        def halve(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            above = self.noise_ratio(mid) >= r
            return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

        lo, hi = jax.lax.fori_loop(0, 64, halve, (jnp.zeros_like(r), jnp.full_like(r, self.T)))
        return 0.5 * (lo + hi)

    @property
    def pure_noise_prior(self) -> bool:
        """Whether a(T) = 0: the prior carries no signal (λ(T) = -∞, r(T) = ∞), as for the
        rectified-flow path. The few-step samplers then bridge the first step of their grid
        exactly (`sdegen.solvers.base.FromPureNoise`) and noise-ratio grids are undefined."""
        with jax.ensure_compile_time_eval():
            return bool(self.coefficients(float(self.T))[0] == 0.0)

    def data_prediction(self, velocity: Field) -> Field:
        """The x0-prediction D(x, t) = E[x0 | x_t = x] of the velocity field. Since
        x = a D + b E and v = a' D + b' E, with E = E[ε | x_t = x] the noise prediction
        (the marginal velocity is the conditional expectation of u_t, Lipman et al. 2023,
        Thm. 1; the flow-matching / diffusion equivalence of Kingma & Gao 2023, "Understanding
        diffusion objectives", App. D, and Gao et al. 2024, "Diffusion meets flow matching"):
        D = (b' x - b v) / (b' a - b a'), E = (x - a D)/b. The denominator is -a b λ'(t) > 0,
        finite where a = 0 (LinearPath: D = (1 - σ_min) x - b v). Both identities hold for any
        coupling of (x0, ε), so the deterministic few-step samplers are exact for OT-CFM fields
        too; the stochastic ones also assume ε ~ N(0, I) independent of x0."""

        def d(x, t):
            a, b, da, db = self.coefficients(t)
            return (db * x - b * velocity(x, t)) / (db * a - b * da)

        return d


class LinearPath(AbstractProbabilityPath):
    r"""The optimal-transport / rectified path (Lipman et al. 2023, eqs. 20–21; Liu et al. 2023
    rectified flow when σ_min = 0): in Lipman's time μ_{t'} = t' x₁, σ_{t'} = 1 - (1 - σ_min)t'.
    With t = 1 - t' and x0 the data: x_t = (1 - t) x0 + (σ_min + (1 - σ_min) t) ε, so
    u_t = (1 - σ_min) ε - x0, constant along each conditional path. With an OT coupling of
    (x0, ε) this is OT-CFM (Tong et al. 2024, Sec. 3.2); σ_min = 0 gives I-CFM's straight lines.
    """

    sigma_min: float = 0.0
    T: float = 1.0

    def __check_init__(self):
        if not (isinstance(self.sigma_min, int | float) and 0.0 <= self.sigma_min < 1.0):
            raise ValueError(f"sigma_min must lie in [0, 1), got {self.sigma_min!r}")

    def coefficients(self, t):
        s = self.sigma_min
        one = jnp.ones_like(jnp.asarray(t, dtype=float))
        return 1.0 - t, s + (1.0 - s) * t, -one, (1.0 - s) * one

    def time_of_noise_ratio(self, r):
        # r = (σ_min + (1 - σ_min) t)/(1 - t)  =>  t = (r - σ_min)/(r + 1 - σ_min)
        r = jnp.asarray(r, dtype=float)
        s = self.sigma_min
        return jnp.where(jnp.isinf(r), self.T, (r - s) / (r + 1.0 - s))


class VPPath(AbstractProbabilityPath):
    r"""The variance-preserving diffusion path (Lipman et al. 2023, Sec. 4.1, eqs. 18–19): in
    their time μ_{t'} = α_{1-t'} x₁, σ_{t'} = √(1 - α²_{1-t'}), α_s = e^{-½∫₀ˢβ}. With t = 1 - t'
    this is exactly the VP-SDE kernel x_t = α(t) x0 + √(1 - α(t)²) ε of `VPSDE` (Song et al.
    2021, eq. 29), whose α(t) it reuses; α'(t) = -½β(t) α(t) and σ'(t) = -α(t) α'(t) / σ(t).
    The velocity is singular like 1/σ(t) at t = 0, so train with t_eps > 0."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: float = 1.0

    @property
    def sde(self) -> VPSDE:
        return VPSDE(beta_min=self.beta_min, beta_max=self.beta_max, T=self.T)

    def __check_init__(self):
        self.sde  # noqa: B018 -- VPSDE validates beta_min, beta_max

    def coefficients(self, t):
        sde = self.sde
        a, b = sde.alpha(t), sde.std(t)
        da = -0.5 * sde.beta(t) * a
        return a, b, da, -a * da / b

    def time_of_noise_ratio(self, r):
        return self.sde.time_of_noise_ratio(r)
