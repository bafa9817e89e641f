"""Energy-parameterised fields and the algebra of energies.

An *energy* is any callable on ONE example, `energy(x, t) -> scalar`, read as an unnormalised
negative log-density of the noised marginal: p_t(x) ∝ exp(−E(x, t)) at every t. Its score is
−∇ₓE (`EnergyField`), so an energy model trains with the existing DSM objective and samples
with every existing sampler and `log_prob` unchanged — and it also gives what a free-form score
cannot: density *ratios* at a fixed t, hence Metropolis–Hastings corrections (`sdegen.mcmc`),
exact tempering p^(1/τ) and composition of models.

Composition (Du, Durkan, Strudel, Tenenbaum, Dieleman, Fergus, Sohl-Dickstein, Doucet &
Grathwohl 2023, "Reduce, Reuse, Recycle", Sec. 3; Du, Li & Mordatch 2020):

- product  ∏ᵢ pᵢ^{wᵢ}  →  Σᵢ wᵢ Eᵢ                      (`WeightedSum`, `product`)
- tempering p^{1/τ}     →  E / τ                         (`tempered`; Boltzmann p ∝ exp(−E/τ))
- negation  p_a / p_b^γ →  E_a − γ E_b, "a but not b"    (`negation`)
- mixture  Σᵢ πᵢ pᵢ     →  −log Σᵢ πᵢ exp(−Eᵢ)          (`Mixture`; needs *normalised* pᵢ, e.g.
  analytic ones, to mean what it says: an unnormalised energy's constant shifts its weight).

Note that the composition acts on the energies at each t separately: the product of two
diffused marginals is not the diffusion of the product, so the reverse SDE driven by the
summed scores is biased — the Metropolis-corrected samplers of `sdegen.mcmc` fix that at each t.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..processes import AbstractLinearSDE
from ..typing import Energy


def _checked(energies, weights, what):
    energies = tuple(energies)
    weights = jnp.asarray(weights, dtype=float)
    if len(energies) == 0 or weights.shape != (len(energies),):
        raise ValueError(
            f"{what} needs one weight per energy, got {len(energies)} energies "
            f"and weights of shape {weights.shape}"
        )
    return energies, weights


class EnergyField(eqx.Module):
    """The score field −∇ₓE(x, t) of a scalar energy (Salimans & Ho 2021, "Should EBMs model
    the energy or the score?": a *constrained*, conservative score model).

    A field like any other: pass it to `sdegen.sample`, `sdegen.log_prob` or `dsm_loss`. The
    energy stays reachable as `.energy` for the Metropolis tests of `sdegen.mcmc`.
    """

    energy: Energy

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, "*d"]:
        return -jax.grad(lambda y: self.energy(y, t))(x)


class DenoiserEnergy(eqx.Module):
    """A scalar energy from a vector network `net(x, t) -> R^d` (e.g. `nets.TimeMLP`):
    E(x, t) = ‖x − f(x, t)‖² / (2 σ(t)²) with f = `net`, the parameterisation of Salimans & Ho
    (2021) (there for images: the energy keeps the score network's architecture; Du et al. 2023
    train energy-parameterised diffusion models the same way). Dividing by the kernel variance
    σ(t)² of the linear SDE keeps f O(1) at every t while the score grows like 1/σ(t) as
    t → 0 — the same reason the "noise" parameterisation of `fields.ScoreField` divides by σ(t).

    Gaussian data N(0, s² I) is represented exactly: f(x, t) = c(t) x with
    (1 − c)² = σ(t)² / (α(t)² s² + σ(t)²).
    """

    net: Callable[[Float[Array, "*d"], Float[ArrayLike, ""]], Float[Array, "*d"]]
    sde: AbstractLinearSDE

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        r = x - self.net(x, t)
        return 0.5 * jnp.sum(r**2) / self.sde.std(t) ** 2


class WeightedSum(eqx.Module):
    """E(x, t) = Σᵢ wᵢ Eᵢ(x, t): the energy of the (unnormalised) product ∏ᵢ pᵢ^{wᵢ}.
    Products (all wᵢ = 1), tempering (one term, w = 1/τ) and negation (w_b = −γ) are all
    instances (Du et al. 2023, Sec. 3, "products" and "negation")."""

    energies: tuple[Energy, ...]
    weights: Float[Array, " k"]

    def __init__(
        self, energies: Sequence[Energy], weights: Float[ArrayLike, " k"] | Sequence[float]
    ):
        self.energies, self.weights = _checked(energies, weights, "WeightedSum")

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        values = jnp.stack([e(x, t) for e in self.energies])
        return jnp.sum(self.weights.astype(values.dtype) * values)


class Mixture(eqx.Module):
    """E(x, t) = −log Σᵢ πᵢ exp(−Eᵢ(x, t)): the energy of the mixture Σᵢ πᵢ pᵢ (Du et al. 2023,
    Sec. 3, "mixtures"), by logsumexp. Exact only when each exp(−Eᵢ) is normalised at every t
    (otherwise component i's weight is scaled by its unknown normalising constant)."""

    energies: tuple[Energy, ...]
    weights: Float[Array, " k"]

    def __init__(
        self, energies: Sequence[Energy], weights: Float[ArrayLike, " k"] | Sequence[float]
    ):
        self.energies, w = _checked(energies, weights, "Mixture")
        if not bool(jnp.all(w > 0)):
            raise ValueError(f"Mixture weights must be positive, got {w.tolist()}")
        self.weights = w / jnp.sum(w)

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""]) -> Float[Array, ""]:
        neg = jnp.stack([-e(x, t) for e in self.energies])
        return -jax.scipy.special.logsumexp(neg + jnp.log(self.weights).astype(neg.dtype))


def product(*energies: Energy) -> WeightedSum:
    """Energy of the product p₁ p₂ ⋯ (sum of energies)."""
    return WeightedSum(energies, jnp.ones(len(energies)))


def tempered(energy: Energy, temperature: float) -> WeightedSum:
    """Energy of p^{1/τ} (Boltzmann distribution at temperature τ): E / τ."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return WeightedSum((energy,), jnp.array([1.0 / temperature]))


def negation(energy: Energy, other: Energy, strength: float = 0.5) -> WeightedSum:
    """Energy of p_a / p_b^γ ("a but not b", Du et al. 2023, Sec. 3): E_a − γ E_b. The result
    is normalisable only if E_a grows faster than γ E_b; for Gaussians, γ below the ratio of
    their precisions."""
    if not strength > 0:
        raise ValueError(f"negation strength must be positive, got {strength}")
    return WeightedSum((energy, other), jnp.array([1.0, -strength]))


def mixture(energies: Sequence[Energy], weights: Sequence[float] | None = None) -> Mixture:
    """Energy of the mixture Σᵢ πᵢ pᵢ (equal weights by default)."""
    energies = tuple(energies)
    return Mixture(energies, jnp.ones(len(energies)) if weights is None else weights)
