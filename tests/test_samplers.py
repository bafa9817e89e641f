"""Few-step samplers (EDM Heun/churn, DDIM, DPM-Solver++(2M), PF-ODE predictor–corrector) on
analytic Gaussian mixtures: each deterministic sampler converges to a tight adaptive reference
solve of the same probability-flow ODE at its theoretical order; the stochastic ones reproduce
the mixture; NFE equals counted field calls."""

import math

import jax
import jax.numpy as jnp
import pytest

import sdegen
from sdegen.data import GaussianMixture
from sdegen.metrics import sliced_wasserstein
from sdegen.solvers import time_grid

ORDERS = {"ddim": 1, "edm_heun": 2, "dpm2m": 2}
TOLERANCE = {"ddim": 0.1, "edm_heun": 0.01, "dpm2m": 0.01}  # RMS error at STEPS[1]
STEPS = (24, 48)  # error ratio measured between these two step counts


def test_time_of_noise_ratio_inverts_noise_ratio(sdes, sde_name):
    sde = sdes[sde_name]
    t = jnp.linspace(1e-4, 1.0, 50)
    r = jax.vmap(sde.noise_ratio)(t)
    assert jnp.allclose(sde.time_of_noise_ratio(r), t, rtol=1e-10, atol=1e-12)
    for grid in ("karras", "logsnr", "uniform"):
        ts = time_grid(sde, grid, 10, 1e-3)
        assert ts.shape == (11,) and ts[0] == 0.0 and math.isclose(float(ts[-1]), 1.0 - 1e-3)
        assert jnp.all(jnp.diff(ts) > 0), grid
    # the log-SNR grid is uniform in log r, the Karras grid in r^(1/7)
    log_r = jnp.log(jax.vmap(sde.noise_ratio)(1.0 - time_grid(sde, "logsnr", 10, 1e-3)))
    assert jnp.allclose(jnp.diff(log_r), log_r[1] - log_r[0], rtol=1e-8)
    r7 = jax.vmap(sde.noise_ratio)(1.0 - time_grid(sde, "karras", 10, 1e-3)) ** (1 / 7)
    assert jnp.allclose(jnp.diff(r7), r7[1] - r7[0], rtol=1e-8)


def test_deterministic_samplers_converge_at_their_order(sdes, sde_name):
    """Per-sample RMS error to the endpoint of a tight Tsit5 solve of the same PF-ODE from the
    same x_T. On VP, halving the step divides it by about 2^order (the order is the method's;
    the schedule code is shared); on every SDE, each sampler is close to the reference at
    STEPS[1]."""
    name = sde_name
    sde = sdes[name]
    # overlapping components: a smooth flow, so the asymptotic regime starts at few steps
    mixture = GaussianMixture([0.4, 0.6], [[-1.0, 0.0], [1.0, 0.5]], [0.7, 0.5])
    score = mixture.score(sde)
    x_T = sde.prior_sample(jax.random.key(0), (32, 2))
    ref = sdegen.sample(sde, score, key=jax.random.key(1), x_T=x_T, method="ode",
                        rtol=1e-10, atol=1e-10)

    def err(method, n):
        x, stats = sdegen.sample(sde, score, key=jax.random.key(1), x_T=x_T, method=method,
                                 num_steps=n, return_stats=True)
        assert stats.nfe == n * (2 if method == "edm_heun" else 1)
        return float(jnp.sqrt(jnp.mean(jnp.sum((x - ref) ** 2, axis=1))))

    for method, order in ORDERS.items():
        fine = err(method, STEPS[1])
        assert fine < TOLERANCE[method], f"{name}/{method}: error {fine:.2e} at {STEPS[1]}"
        if name == "vp":
            rate = math.log2(err(method, STEPS[0]) / fine)
            assert order - 0.3 < rate < order + 0.6, f"{method}: observed order {rate:.2f}"


@pytest.fixture(scope="module")
def floor(mixture):
    a, b = mixture.sample(jax.random.key(10), 2000), mixture.sample(jax.random.key(11), 2000)
    return a, float(sliced_wasserstein(jax.random.key(0), a, b))


@pytest.mark.parametrize("name,method,steps", [("ve", "edm_churn", 64), ("vp", "pc_ode", 300)])
def test_stochastic_samplers_match_the_mixture(mixture, floor, name, method, steps, sdes):
    sde = sdes[name]
    ref, sw_floor = floor
    x = sdegen.sample(sde, mixture.score(sde), key=jax.random.key(1), shape=(2000, 2),
                      method=method, num_steps=steps, snr=0.05)
    sw = float(sliced_wasserstein(jax.random.key(0), x, ref))
    assert sw < 2.0 * sw_floor, f"{name}/{method}: sliced W {sw:.4f} vs floor {sw_floor:.4f}"


@pytest.mark.parametrize("method,per_step", [("edm_churn", 2), ("pc_ode", 2)])
def test_nfe_matches_counted_field_evaluations(mixture, nfe_counter, method, per_step, sdes):
    sde = sdes["vp"]
    counted, calls = nfe_counter(mixture.score(sde))

    _, stats = sdegen.sample(sde, counted, key=jax.random.key(0), x_T=jnp.zeros((1, 2)),
                             method=method, num_steps=3, return_stats=True)
    assert stats.nfe == len(calls) == 3 * per_step


def test_bad_options_are_clear_errors(mixture, sdes):
    sde = sdes["vp"]

    class NotLinear(sdegen.AbstractSDE):
        T: float = 1.0

        def drift(self, x, t):
            return -x**3

        def diffusion(self, t):
            return 1.0

        def marginal(self, x0, t):
            raise NotImplementedError

        def prior_std(self):
            return 1.0

    with pytest.raises(ValueError, match="needs a linear SDE"):
        sdegen.sample(NotLinear(), mixture.score(sde), key=jax.random.key(0), shape=(4, 2),
                      method="dpm2m", num_steps=4)
    with pytest.raises(ValueError, match="unknown time grid"):
        sdegen.sample(sde, mixture.score(sde), key=jax.random.key(0), shape=(4, 2),
                      method="ddim", num_steps=4, grid="cosine")


def test_config_and_cli_accept_every_sampling_method():
    """The config schema and the CLI list the same methods as `sdegen.sample`."""
    import dataclasses

    from sdegen import cli, config
    from sdegen.sample import METHODS

    field = next(f for f in dataclasses.fields(config.SampleConfig) if f.name == "method")
    assert set(field.metadata["choices"]) == set(METHODS)
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command" or a.choices)
    choices = next(a.choices for a in sub.choices["sample"]._actions if a.dest == "method")
    assert set(choices) == set(METHODS)
