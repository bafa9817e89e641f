"""Metropolis-corrected samplers with exact energies: tempered targets p^(1/τ) against
quadrature, the product of two Gaussians against its closed form, and acceptance → 1 as the
step shrinks. Each check also shows it can fail (the untempered samples, large steps)."""

import jax
import jax.numpy as jnp
import pytest

import sdegen
from sdegen.data import GaussianMixture, GridDensity, MixtureEnergy
from sdegen.energy import product, tempered
from sdegen.energy.mcmc import HMC, MALA, run_chain
from sdegen.metrics import sliced_wasserstein

SDE = sdegen.VPSDE()
N = 2000
# overlapping modes: the chains must move mass between them, and can within a few hundred steps
TWO_MODES = GaussianMixture([0.3, 0.7], [[-0.8, 0.0], [0.8, 0.4]], [0.6, 0.7])
KERNELS = {  # step sizes as arrays: one compile per kernel type, whatever the value
    "mala": lambda s: MALA(step_size=jnp.asarray(s)),
    "hmc": lambda s: HMC(step_size=jnp.asarray(s), n_leapfrog=4),
}


def _sw(a, b):
    return float(sliced_wasserstein(jax.random.key(0), a, b))


@pytest.mark.parametrize("kernel,temperature", [("mala", 0.5), ("hmc", 2.0)])
def test_tempered_chains_match_quadrature(kernel, temperature):
    """MALA/HMC on E/τ at the data end sample p^(1/τ): sliced W to samples of the quadrature
    density is at the true-vs-true floor; the untempered p is measurably farther."""
    energy = tempered(MixtureEnergy(TWO_MODES, SDE), temperature)
    grid = GridDensity(lambda y: -energy(y, 0.0), -7.0, 7.0, 200)
    ref, ref2 = grid.sample(jax.random.key(1), N), grid.sample(jax.random.key(2), N)
    floor = _sw(ref, ref2)
    x0 = 3.0 * jax.random.normal(jax.random.key(3), (N, 2))  # over-dispersed start
    step = {"mala": 0.15, "hmc": 0.35}[kernel] * temperature**0.5
    x, acc = run_chain(energy, x0, key=jax.random.key(4), kernel=KERNELS[kernel](step),
                       n_steps=400)
    sw = _sw(x, ref)
    assert sw < 2.0 * floor, f"{kernel} τ={temperature}: sliced W {sw:.4f}, floor {floor:.4f}"
    assert 0.5 < float(acc[-100:].mean()) < 1.0
    untempered = TWO_MODES.sample(jax.random.key(5), N)
    assert _sw(untempered, ref) > 3.0 * floor  # the check resolves a change of temperature


@pytest.mark.parametrize("kernel", ["mala", "hmc"])
def test_acceptance_tends_to_one_for_small_steps(mixture, kernel):
    energy = MixtureEnergy(mixture, SDE)
    x0 = mixture.sample(jax.random.key(0), 200)
    rates = {}
    for step in (1e-4, 1e-2, 1.0):
        _, acc = run_chain(energy, x0, key=jax.random.key(1), kernel=KERNELS[kernel](step),
                           n_steps=20, t=0.05)
        rates[step] = float(acc.mean())
    assert rates[1e-4] > 0.999, rates
    assert rates[1e-4] >= rates[1e-2] > rates[1.0], rates
    assert rates[1.0] < 0.8, rates  # a large step is rejected often: the test is not vacuous


def test_annealed_product_of_gaussians_matches_closed_form():
    """Annealed MALA along the reverse VP process on E_a + E_b (each the exact diffused
    energy of one Gaussian) samples the product N(μ, s²I), s⁻² = s_a⁻² + s_b⁻²."""
    (ma, sa), (mb, sb) = ([-1.0, 0.0], 0.8), ([1.0, 1.0], 0.6)
    ea = MixtureEnergy(GaussianMixture([1.0], [ma], [sa]), SDE)
    eb = MixtureEnergy(GaussianMixture([1.0], [mb], [sb]), SDE)
    prec = sa**-2 + sb**-2
    mu = (jnp.array(ma) * sa**-2 + jnp.array(mb) * sb**-2) / prec
    exact = GaussianMixture([1.0], mu[None], [prec**-0.5])
    x, info = sdegen.annealed_mcmc(SDE, product(ea, eb), key=jax.random.key(0), shape=(N, 2),
                                   num_steps=100, n_corrector=2, return_info=True)
    ref, ref2 = exact.sample(jax.random.key(1), N), exact.sample(jax.random.key(2), N)
    sw, floor = _sw(x, ref), _sw(ref2, ref)
    assert sw < 2.0 * floor, (sw, floor)
    se = prec**-0.5 / N**0.5
    assert jnp.all(jnp.abs(x.mean(0) - mu) < 4 * se), (x.mean(0), mu)
    var = jnp.var(x, axis=0)
    assert jnp.allclose(var, 1 / prec, rtol=0.12), (var, 1 / prec)
    assert info.acceptance.shape == (100,) and 0.5 < info.mean_acceptance <= 1.0
    assert info.nfe == 100 * (1 + 2 * (1 + 2) + 2)  # predictor, 2 × (snr rule + MALA), SMC
    assert info.ess is not None and info.ess.min() > 0.05


def test_mcmc_errors_are_clear():
    energy = MixtureEnergy(TWO_MODES, SDE)
    with pytest.raises(ValueError, match="must be batched"):
        run_chain(energy, jnp.zeros(2), key=jax.random.key(0), kernel=MALA(), n_steps=2)
    with pytest.raises(ValueError, match="n_leapfrog"):
        HMC(n_leapfrog=0)
    with pytest.raises(ValueError, match="shape must be batched"):
        sdegen.annealed_mcmc(SDE, energy, key=jax.random.key(0), shape=(4,))
