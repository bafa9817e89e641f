"""Earth loaders (real files when present, a tiny fixture always), vMF densities and the
classical baselines."""

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdegen.data.sphere import (
    EARTH_FILES,
    earth_splits,
    latlon_to_unit,
    load_earth,
    read_latlon_csv,
    unit_to_latlon,
)
from sdegen.errors import DataError
from sdegen.vmf import VMFMixture, fit_vmf_kde, fit_vmf_mixture, vmf_log_prob, vmf_sample

HERE = Path(__file__).resolve().parent
EARTH = HERE.parents[1] / "shared" / "data" / "earth"  # ../shared/data/earth of the worktree


@pytest.mark.skipif(not (EARTH / "volerup.csv").is_file(),
                    reason=f"earth CSVs not found in {EARTH} (not part of the repository)")
@pytest.mark.parametrize("name", list(EARTH_FILES))
def test_earth_loaders_sizes_and_unit_norm(name):
    latlon = load_earth(name, EARTH)
    assert latlon.shape == (EARTH_FILES[name][1], 2)
    x = latlon_to_unit(latlon)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(unit_to_latlon(x)[:, 0], latlon[:, 0], atol=1e-9)
    tr, va, te = earth_splits(latlon, seed=0)
    assert len(tr) + len(va) + len(te) == len(latlon)
    tr_b, _, te_b = earth_splits(latlon, seed=0, protocol="dedup")
    assert not (set(map(tuple, np.round(te_b, 12))) & set(map(tuple, np.round(tr_b, 12))))


def test_fixture_parses_comments_header_and_crlf():
    quakes = read_latlon_csv(HERE / "data" / "quakes_tiny.csv")  # 2 comments, header, CRLF
    np.testing.assert_array_equal(quakes, [[10.5, -20.25], [-45.0, 179.9], [89.9, 0.0]])
    fire = read_latlon_csv(HERE / "data" / "fire_tiny.csv")  # 1 comment, no header, LF
    np.testing.assert_array_equal(fire, [[1.0, 2.0], [-3.5, -4.5]])


def test_missing_file_and_malformed_rows_give_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not found.*set data.path"):
        load_earth("volcano", tmp_path)
    with pytest.raises(DataError, match="unknown earth dataset 'volcanoes'"):
        load_earth("volcanoes", tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("lat,lon\n1.0,2.0\n3.0;4.0\n")
    with pytest.raises(DataError, match=r"bad.csv:3: malformed row '3.0;4.0'"):
        read_latlon_csv(bad)
    bad.write_text("lat,lon\n1.0,2.0\n95.0,4.0")
    with pytest.raises(DataError, match=r"bad.csv:3: latitude 95.0 .* out of range"):
        read_latlon_csv(bad)
    bad.write_text("lat,lon\n1.0,2.0,3.0")
    with pytest.raises(DataError, match="malformed row"):
        read_latlon_csv(bad)
    short = tmp_path / "volerup.csv"
    short.write_text("# c\nLatitude,Longitude\n1,2")
    with pytest.raises(DataError, match="1 rows, expected 827"):
        load_earth("volcano", tmp_path)


@pytest.mark.parametrize("kappa", [1e-3, 1.0, 30.0, 1e4])
def test_vmf_density_integrates_to_one(kappa):
    # vMF depends on c = <mu, x> only: ∫ p dA = 2π ∫ p(c) dc; substitute c = 1 - s so that
    # Gauss–Legendre resolves the peak of width 1/kappa
    mu = jnp.array([0.6, 0.0, 0.8])
    s_max = min(2.0, 60.0 / kappa)
    u, w = np.polynomial.legendre.leggauss(200)
    s = (u + 1) * s_max / 2
    c = 1 - s
    # build points with <mu, x> = c: x = c mu + sqrt(1 - c²) e, e ⟂ mu
    e = np.array([0.8, 0.0, -0.6])
    x = c[:, None] * np.asarray(mu)[None] + np.sqrt(1 - c**2)[:, None] * e[None]
    p = np.exp(np.asarray(jax.vmap(lambda xx: vmf_log_prob(xx, mu, kappa))(jnp.asarray(x))))
    assert 2 * math.pi * np.sum(w * p) * s_max / 2 == pytest.approx(1.0, abs=1e-9)
    # exact sampler: E<mu, X> = coth κ − 1/κ
    xs = jax.vmap(lambda k: vmf_sample(k, mu, kappa))(jax.random.split(jax.random.key(0), 4000))
    c_s = np.asarray(xs @ mu)
    mean = 1 / math.tanh(kappa) - 1 / kappa if kappa > 1e-2 else kappa / 3
    assert abs(c_s.mean() - mean) < 4 * c_s.std() / np.sqrt(len(c_s)) + 1e-12


def test_baselines_recover_a_known_mixture():
    true = VMFMixture([0.6, 0.4], [[0, 0, 1.0], [1.0, 0, 0]], [50.0, 10.0])
    train = true.sample(jax.random.key(0), 1500)
    val = true.sample(jax.random.key(1), 300)
    test = true.sample(jax.random.key(2), 1000)
    entropy = -float(jnp.mean(jax.vmap(true.log_prob)(test)))
    mix = fit_vmf_mixture(train, 2, key=jax.random.key(3), n_iter=60)
    order = jnp.argsort(-mix.kappas)
    np.testing.assert_allclose(mix.mus[order], true.mus, atol=0.03)
    np.testing.assert_allclose(mix.kappas[order], true.kappas, rtol=0.15)
    nll_mix = -float(jnp.mean(jax.vmap(mix.log_prob)(test)))
    assert abs(nll_mix - entropy) < 0.02
    kde = fit_vmf_kde(train, val, kappas=np.exp(np.linspace(0, np.log(1e3), 13)))
    nll_kde = -float(jnp.mean(kde.log_prob_batch(test)))
    assert entropy < nll_kde < entropy + 0.1  # a KDE pays a little for its smoothing
