"""Energy fields: −∇E is the analytic score; compositions of energies equal the closed-form
densities they stand for; an energy field plugs into log_prob and DSM unchanged."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import sdegen
from sdegen.data import GaussianMixture, MixtureEnergy
from sdegen.energy import DenoiserEnergy, EnergyField, mixture, negation, product, tempered
from sdegen.nets import TimeMLP
from sdegen.objectives import dsm_loss

SDE = sdegen.VPSDE()
POINTS = jnp.array([[0.3, -0.2], [-2.1, 0.4], [1.5, 1.2], [3.0, -3.0]])


@eqx.filter_jit
def _vmapped(fn, xs, t):
    return jax.vmap(fn, in_axes=(0, None))(xs, t)


def _on_points(fn, t):
    """fn(x, t) on every row of POINTS, jitted (one compile instead of many small ops)."""
    return _vmapped(fn, POINTS, t)


def _gauss(mean, std):
    return GaussianMixture(jnp.ones(1), jnp.asarray(mean, dtype=float)[None],
                           jnp.asarray(std, dtype=float)[None])


@pytest.mark.parametrize("t", [1e-3, 0.1, 0.5, 1.0])
def test_energy_field_score_is_the_analytic_score(mixture, t):
    field = EnergyField(MixtureEnergy(mixture, SDE))
    got = _on_points(field, t)
    want = _on_points(mixture.score(SDE), t)
    assert jnp.allclose(got, want, rtol=1e-10, atol=1e-10)


def test_denoiser_energy_represents_a_gaussian_exactly():
    """E = ‖x − c(t) x‖² / 2σ(t)² with (1 − c)² = σ² / (α² s² + σ²) is the N(0, s²) marginal."""
    s = 0.7

    def net(x, t):
        a, sig = SDE.alpha(t), SDE.std(t)
        return (1.0 - sig / jnp.sqrt(a**2 * s**2 + sig**2)) * x

    field = EnergyField(DenoiserEnergy(net, SDE))
    exact = _gauss([0.0, 0.0], s).score(SDE)
    for t in (0.05, 0.5):
        got = _on_points(field, t)
        want = _on_points(exact, t)
        assert jnp.allclose(got, want, rtol=1e-10, atol=1e-10)


def test_compositions_match_closed_forms():
    a, b = _gauss([-1.0, 0.0], 0.5), _gauss([1.0, 1.0], 1.0)
    ea, eb = MixtureEnergy(a, SDE), MixtureEnergy(b, SDE)
    t = 0.0
    # mixture of normalised energies = -log of the GaussianMixture density
    both = GaussianMixture([0.25, 0.75], [[-1.0, 0.0], [1.0, 1.0]], [0.5, 1.0])
    e_mix = mixture([ea, eb], [1.0, 3.0])
    got = _on_points(e_mix, t)
    assert jnp.allclose(got, -jax.vmap(both.log_prob)(POINTS), rtol=1e-12)
    # product of two isotropic Gaussians ∝ N(μ, s²): precisions add; log-ratios are exact
    prec = 1 / 0.5**2 + 1 / 1.0**2
    mu = (jnp.array([-1.0, 0.0]) / 0.5**2 + jnp.array([1.0, 1.0]) / 1.0**2) / prec
    prod_exact = _gauss(mu, prec**-0.5)
    got = _on_points(product(ea, eb), t)
    want = -jax.vmap(prod_exact.log_prob)(POINTS)
    assert jnp.allclose(got - got[0], want - want[0], rtol=1e-10, atol=1e-10)
    # tempering by 2 doubles the variance; negation a / b^γ subtracts precisions
    got = _on_points(tempered(ea, 2.0), t)
    want = -jax.vmap(_gauss([-1.0, 0.0], 0.5 * 2**0.5).log_prob)(POINTS)
    assert jnp.allclose(got - got[0], want - want[0], rtol=1e-10, atol=1e-10)
    prec_neg = 1 / 0.5**2 - 0.5 / 1.0**2
    mu_neg = (jnp.array([-1.0, 0.0]) / 0.5**2 - 0.5 * jnp.array([1.0, 1.0])) / prec_neg
    got = _on_points(negation(ea, eb, 0.5), t)
    want = -jax.vmap(_gauss(mu_neg, prec_neg**-0.5).log_prob)(POINTS)
    assert jnp.allclose(got - got[0], want - want[0], rtol=1e-10, atol=1e-10)


def test_bad_compositions_are_clear_errors():
    e = MixtureEnergy(_gauss([0.0, 0.0], 1.0), SDE)
    with pytest.raises(ValueError, match="temperature must be positive"):
        tempered(e, 0.0)
    with pytest.raises(ValueError, match="one weight per energy"):
        mixture([e, e], [1.0])
    with pytest.raises(ValueError, match="weights must be positive"):
        mixture([e, e], [1.0, -1.0])


@pytest.mark.slow  # ~40 s on 2 busy cores, mostly compiling the augmented ODE
def test_energy_field_works_with_log_prob_and_dsm(mixture):
    """log_prob of the energy field equals the analytic density (PF-ODE with −∇E unchanged);
    DSM trains an energy network (finite loss, gradients through the double derivative)."""
    sde = sdegen.VPSDE(beta_max=40.0)  # p_T = N(0, I) to < 1e-4 nats (as test_likelihood)
    field = EnergyField(MixtureEnergy(mixture, sde))
    lp = sdegen.log_prob(sde, field, POINTS, rtol=1e-5, atol=1e-5)
    want = jax.vmap(mixture.log_prob_t, in_axes=(None, 0, None))(sde, POINTS, 1e-5)
    assert jnp.allclose(lp, want, atol=2e-3), (lp, want)

    net = TimeMLP(2, key=jax.random.key(0), width=16, depth=2)
    energy_model = EnergyField(DenoiserEnergy(net, SDE))
    loss, grads = eqx.filter_value_and_grad(
        lambda m: dsm_loss(SDE, m, POINTS[0], jax.random.key(1), t_eps=1e-3)
    )(energy_model)
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_array))
    assert jnp.isfinite(loss) and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(float(jnp.abs(g).max()) > 0 for g in leaves)


def test_config_builds_an_energy_field():
    from sdegen import config

    cfg = config.from_dict({}, ["model.parameterisation=energy", "model.width=8"])
    field = config.build_field(cfg, (2,), jax.random.key(0))
    assert isinstance(field, EnergyField) and isinstance(field.energy, DenoiserEnergy)
