"""The few-step samplers on flow-matching paths x_t = a x0 + b ε, driven by the EXACT velocity
field of an analytic Gaussian mixture (`GaussianMixture.velocity`, closed form), float64,
against independent answers:

- DDIM on the rectified-flow path is Euler on the velocity (Gao et al. 2024), to rounding;
- on `VPPath` (the VP kernel) every method gives what it gives on `VPSDE` with the exact score:
  the velocity -> x0-prediction conversion against Tweedie's formula;
- local order on the rectified-flow path: each formula driven along the exact trajectory on a
  window uniform in r = σ/α (as `test_samplers_frontier.test_local_order`), error ∝ h^(order+1);
- global order to a tight adaptive reference: on a grid refined at both ends (cosine in t)
  each method shows its theory (UniPC-3: 4, DEIS-tAB3: 3, DPM-Solver++ 2M/2S: 2, DDIM: 1).
  On the usual uniform grid every method measures about 2: the first step from the pure-noise
  prior (λ = -∞, `solvers.base.FromPureNoise`) has error O(e^{2λ1}) = O(h²);
- every method reaches the reference at 50 uniform steps, the stochastic ones the mixture;
  NFE counted equals NFE reported; one-line errors for processes and grids without the maths.
"""

import math

import diffrax
import jax
import jax.numpy as jnp
import pytest

import sdegen
from sdegen.data import GaussianMixture
from sdegen.metrics import sliced_wasserstein
from sdegen.solvers import DEIS, IPNDM, DPMSolverPP2S, DPMSolverPPMultistep, UniPC, time_grid
from sdegen.solvers.methods import denoiser_terms

SMOOTH = GaussianMixture([0.4, 0.6], [[-1.0, 0.0], [1.0, 0.5]], [0.7, 0.5])
ONE_EVAL = ("ddim", "dpm2m", "dpm3m", "ipndm", "deis", "unipc", "unipc_bh1")
TOLERANCE = {"ddim": 6e-2, "dpm2m": 1.5e-2, "dpm3m": 3e-2, "dpm2s": 3e-3, "ipndm": 5e-4,
             "deis": 1.5e-3, "unipc": 1.5e-3, "unipc_bh1": 5e-4, "edm_heun": 4e-3}
"""RMS distance to the reference at 50 uniform steps (measured about half of each; dpm3m's
published weights make a poor job of the long last step in λ a uniform grid ends with)."""
GLOBAL_ORDER = {"ddim": 1, "dpm2m": 2, "dpm2s": 2, "deis": 3, "unipc": 4}


def _rms(x, y):
    return float(jnp.sqrt(jnp.mean(jnp.sum((x - y) ** 2, axis=1))))


def _cosine_ts(n, t_eps=1e-3):
    """t_i = 1 - (1 - t_eps)(1 - cos(π i/N))/2: steps O(h²) in t at both ends."""
    u = jnp.linspace(0.0, 1.0, n + 1)
    return 1.0 - (1.0 - t_eps) * 0.5 * (1.0 - jnp.cos(jnp.pi * u))


@pytest.fixture(scope="module")
def flow():
    """Rectified flow (LinearPath, σ_min = 0), the exact velocity, x_T and the end point of a
    tight Tsit5 solve from it."""
    path = sdegen.LinearPath()
    velocity = SMOOTH.velocity(path)
    x_T = path.prior_sample(jax.random.key(0), (32, 2))
    ref = sdegen.sample(path, velocity, key=jax.random.key(1), x_T=x_T, rtol=1e-11,
                        atol=1e-11)
    return path, velocity, x_T, ref


def test_ddim_is_euler_on_the_velocity(flow):
    path, velocity, x_T, _ = flow
    kw = dict(key=jax.random.key(1), x_T=x_T, num_steps=10)
    euler = sdegen.sample(path, velocity, method="ode", solver=diffrax.Euler(), grid="uniform",
                          **kw)
    ddim = sdegen.sample(path, velocity, method="ddim", **kw)
    assert _rms(euler, ddim) < 1e-12


@pytest.mark.parametrize("method", ["dpm3m"] + [pytest.param(m, marks=pytest.mark.slow)
                                               for m in ("unipc", "ipndm", "deis")])
def test_vp_path_equals_vp_sde(method):
    """The velocity -> D conversion (paths) against Tweedie's formula on the score (SDEs)."""
    sde, path = sdegen.VPSDE(), sdegen.VPPath()
    x_T = sde.prior_sample(jax.random.key(0), (16, 2))
    kw = dict(key=jax.random.key(1), x_T=x_T, method=method, num_steps=10)
    via_score = sdegen.sample(sde, SMOOTH.score(sde), **kw)
    via_velocity = sdegen.sample(path, SMOOTH.velocity(path), **kw)
    assert _rms(via_score, via_velocity) < 1e-9


@pytest.fixture(scope="module")
def local_problem():
    """LinearPath on a window uniform in r from 4 to 1/4 (t from 0.8 to 0.2) with 32 steps,
    and the exact trajectory at its points (Tsit5 at rtol = atol = 1e-12 from t = T)."""
    path = sdegen.LinearPath()
    velocity = SMOOTH.velocity(path)
    r = jnp.linspace(4.0, 0.25, 33)
    ts = path.time_of_noise_ratio(r)
    x_T = path.prior_sample(jax.random.key(0), (8, 2))
    exact = sdegen.sample(path, velocity, key=jax.random.key(1), x_T=x_T, t_eps=float(ts[-1]),
                          save_ts=jnp.concatenate([jnp.ones(1), ts]), rtol=1e-12, atol=1e-12,
                          max_steps=100_000)
    return path, velocity, 1.0 - ts, exact[1:]


@pytest.mark.parametrize("make,order", [
    (lambda p: IPNDM(p, solver_order=4), 4),
    (lambda p: DEIS(p, solver_order=3), 3),
    (lambda p: DEIS(p, solver_order=3, basis="log_rho"), 3),
    (lambda p: DPMSolverPPMultistep(p, lower_order_final=False, published=False), 3),
    (lambda p: DPMSolverPPMultistep(p, lower_order_final=False), 2),  # published weights
    (lambda p: UniPC(p, solver_order=3, corrector=False, lower_order_final=False), 3),
    (lambda p: DPMSolverPP2S(p), 2),
])
def test_local_order_on_rectified_flow(local_problem, local_rate, make, order):
    path, velocity, s, exact = local_problem
    solver = make(path)
    terms = denoiser_terms(path, velocity)
    rate = local_rate(solver, terms, s, exact)
    assert order + 0.5 < rate < order + 1.8, f"{type(solver).__name__}: local rate {rate:.2f}"


def _err(flow, method, n, ts=None):
    path, velocity, x_T, ref = flow
    x, stats = sdegen.sample(path, velocity, key=jax.random.key(1), x_T=x_T, method=method,
                             num_steps=n, ts=ts, return_stats=True)
    assert stats.nfe == (n if method in ONE_EVAL else 2 * n - 1)
    return _rms(x, ref)


@pytest.mark.parametrize("method", [m if m == "unipc" else
                                    pytest.param(m, marks=pytest.mark.slow)
                                    for m in GLOBAL_ORDER])
def test_global_order_on_rectified_flow(flow, method):
    """25 -> 50 steps of the cosine grid (refined at both ends: the first step from pure noise
    is O(h^4) there)."""
    rate = math.log2(_err(flow, method, 25, _cosine_ts(25)) / _err(flow, method, 50,
                                                                    _cosine_ts(50)))
    order = GLOBAL_ORDER[method]
    assert order - 0.4 < rate < order + 1.0, f"{method}: observed global order {rate:.2f}"


def test_uniform_grid_caps_the_order_at_two(flow):
    """The first step from λ = -∞ costs O(h²) on a uniform grid, whatever the method."""
    rate = math.log2(_err(flow, "unipc", 50) / _err(flow, "unipc", 100))
    assert 1.6 < rate < 2.6, f"unipc on the uniform grid: observed order {rate:.2f}"


@pytest.mark.parametrize("method", [m if m in ("ipndm", "dpm2s") else
                                    pytest.param(m, marks=pytest.mark.slow)
                                    for m in TOLERANCE])
def test_every_method_reaches_the_reference_on_rectified_flow(flow, method):
    err = _err(flow, method, 50)
    assert err < TOLERANCE[method], f"{method}: error {err:.2e} at 50 steps"


@pytest.mark.parametrize("method,kw", [("ddim", dict(eta=1.0)),
                                       pytest.param("dpm2m_sde", {}, marks=pytest.mark.slow)])
def test_stochastic_samplers_match_the_mixture_on_rectified_flow(mixture, method, kw):
    """DDIM η > 0 and SDE-DPM-Solver++ need only the path's Gaussian kernel (the kernel of the
    linear SDE dx = (a'/a) x dt + √(2 b b' - 2 (a'/a) b²) dW; Kingma et al. 2021, App. A)."""
    path = sdegen.LinearPath()
    ref, other = mixture.sample(jax.random.key(10), 2000), mixture.sample(jax.random.key(11), 2000)
    floor = float(sliced_wasserstein(jax.random.key(0), ref, other))
    x = sdegen.sample(path, mixture.velocity(path), key=jax.random.key(1), shape=(2000, 2),
                      method=method, num_steps=50, **kw)
    sw = float(sliced_wasserstein(jax.random.key(0), x, ref))
    assert sw < 2.0 * floor, f"{method}: sliced W {sw:.4f} vs floor {floor:.4f}"


@pytest.mark.parametrize("method,kw,nfe", [
    ("dpm2s", {}, 5), ("unipc", {}, 3), ("edm_heun", dict(lower_order_final=True), 4),
    pytest.param("dpm2m_sde", {}, 3, marks=pytest.mark.slow),
])
def test_nfe_matches_counted_field_evaluations_on_a_path(nfe_counter, method, kw, nfe):
    path = sdegen.LinearPath()
    counted, calls = nfe_counter(SMOOTH.velocity(path))
    _, stats = sdegen.sample(path, counted, key=jax.random.key(0), x_T=jnp.zeros((1, 2)),
                             method=method, num_steps=3, return_stats=True, **kw)
    assert stats.nfe == len(calls) == nfe


def test_paths_without_the_maths_are_one_line_errors():
    path = sdegen.LinearPath()
    velocity = SMOOTH.velocity(path)
    kw = dict(key=jax.random.key(0), shape=(4, 2), num_steps=4)
    for process, method, match in [
        (sdegen.CNF(), "unipc", "needs a linear SDE .* or a Gaussian flow-matching path"),
        (sdegen.SphereGeodesicPath(), "dpm3m", "needs a linear SDE"),
        (path, "deis", "infinite for LinearPath"),  # a noise-ratio grid needs r(T) < ∞
    ]:
        with pytest.raises(ValueError, match=match) as info:
            sdegen.sample(process, velocity, method=method,
                          grid="karras" if process is path else None, **kw)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="infinite for LinearPath"):
        time_grid(path, "logsnr", 4, 1e-3)
    with pytest.raises(ValueError, match="num_steps=3") as info:  # from pure noise: N - 1 own
        sdegen.sample(path, velocity, solver=UniPC(path, num_steps=4), method="unipc", **kw)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="t_eps=0 is for method='ode' only"):
        sdegen.sample(path, velocity, method="unipc", t_eps=0.0, **kw)


def test_config_takes_few_step_methods_on_paths():
    from sdegen import config
    from sdegen.errors import ConfigError

    cfg = config.from_dict({}, ["process.kind=flow_linear", "objective.kind=fm",
                                "sample.method=unipc"])
    assert cfg.sample.method == "unipc"
    with pytest.raises(ConfigError, match="needs an SDE"):
        config.from_dict({}, ["process.kind=flow_linear", "objective.kind=fm",
                              "sample.method=sde"])
    with pytest.raises(ConfigError, match="set sample.t_eps=1e-3"):
        config.from_dict({}, ["process.kind=flow_linear", "objective.kind=fm",
                              "sample.method=unipc", "sample.t_eps=0"])
