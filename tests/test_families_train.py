"""The classic families through the ordinary CLI: `sdegen train | sample | evaluate` on a few
steps, with the evaluated test NLL checked against an exact log-likelihood (quadrature over a 1-D
latent for the VAE, enumeration of the hidden states for the Helmholtz machine), and the config
mismatches that must be refused."""

import itertools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdegen import ConfigError
from sdegen import config as C
from sdegen.cli import main
from sdegen.train import keys, load_run

TINY = ["train.steps=3", "train.batch_size=16", "train.ckpt_every=3", "model.width=16",
        "model.depth=1"]


def _train_sample_evaluate(tmp_path, overrides, n=64, k=256):
    run = tmp_path / "run"
    assert main(["train", "configs/toy2d/demo.yaml", *overrides, *TINY, f"out_dir={run}",
                 "--no-progress"]) == 0
    assert main(["sample", str(run), "--n", "12"]) == 0
    assert main(["evaluate", str(run), f"eval.n_test={n}", f"eval.k={k}"]) == 0
    assert (run / "samples.png").is_file() and (run / "eval.png").is_file()
    cfg, model = load_run(run, overrides=[f"eval.n_test={n}"])
    test = C.build_data(cfg).test_set(keys(cfg)["test"], n)
    return cfg, model, test, np.load(run / "samples.npz")["x"], \
        json.loads((run / "eval.json").read_text())


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])


@pytest.mark.slow  # 90 s on 2 loaded cores
def test_vae_cli_nll_matches_quadrature(tmp_path, in_repo):
    cfg, model, test, x, ev = _train_sample_evaluate(
        tmp_path, ["process.kind=none", "model.kind=vae", "model.latent_dim=1",
                   "objective.kind=elbo"])
    assert x.shape == (12, 2)
    z = jnp.linspace(-10.0, 10.0, 4001)
    dz = z[1] - z[0]

    def exact(xi):  # log ∫ p(x | z) p(z) dz on a fine grid (1-D latent)
        return jax.nn.logsumexp(jax.vmap(lambda zi: model.log_joint(xi, zi[None]))(z)) \
            + jnp.log(dz)

    nll = float(-jnp.mean(jax.vmap(exact)(test)))
    # the IWAE bound is below log p(x); with k = 256 draws on a 1-D latent it is close to it
    assert nll - 3 * ev["test_nll_stderr"] <= ev["test_nll_nats"] <= nll + 0.05, (ev, nll)


@pytest.mark.slow  # 75 s on 2 loaded cores
def test_helmholtz_cli_nll_matches_enumeration(tmp_path, in_repo):
    cfg, model, test, x, ev = _train_sample_evaluate(
        tmp_path, ["data.name=digits", "data.binarize=true", "process.kind=none",
                   "model.kind=helmholtz", "model.latent_dim=4", "objective.kind=wake_sleep"],
        n=32, k=512)
    assert x.shape == (12, 8, 8, 1) and set(np.unique(x)) <= {0.0, 1.0}
    hs = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=4)))  # all 16 top states

    def exact(xi):
        return jax.nn.logsumexp(jax.vmap(lambda h: model.log_joint(xi.reshape(-1), [h]))(hs))

    nll = float(-jnp.mean(jax.vmap(exact)(test)))
    assert abs(ev["test_nll_nats"] - nll) < 0.05, (ev, nll)
    assert ev["bits_per_dim"] == pytest.approx(ev["test_nll_nats"] / (64 * np.log(2)))


def test_gan_cli_samples_and_evaluates(tmp_path, in_repo):
    cfg, model, test, x, ev = _train_sample_evaluate(
        tmp_path, ["process.kind=none", "model.kind=gan", "objective.kind=gan"], n=64)
    assert x.shape == (12, 2) and np.isfinite(x).all()
    assert ev["test_nll_nats"] is None and np.isfinite(ev["sliced_w_model_vs_test"])


@pytest.mark.parametrize("overrides,needle", [
    (["process.kind=none", "model.kind=gan", "objective.kind=elbo"],
     "model.kind=gan is trained by objective.kind=gan, got elbo"),
    (["process.kind=none", "model.kind=vae"], "is trained by objective.kind=elbo or iwae, got dsm"),
    (["model.kind=vae", "objective.kind=iwae"], "set process.kind=none (got vp)"),
    (["objective.kind=wake_sleep"], "objective.kind=wake_sleep trains model.kind=helmholtz"),
    (["process.kind=none"], "process.kind=none is for the classic families"),
    (["process.kind=none", "model.kind=helmholtz", "objective.kind=wake_sleep",
      "data.name=digits"], "set data.binarize=true"),
])
def test_family_config_mismatch_is_one_line(overrides, needle, capsys, in_repo):
    with pytest.raises(ConfigError) as err:
        C.from_dict({}, overrides)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert main(["train", "configs/toy2d/demo.yaml", *overrides, "train.steps=1"]) == 2
    assert needle in capsys.readouterr().err


def test_mlp_field_on_images_acts_on_the_flattened_example():
    cfg = C.from_dict({"data": {"name": "digits"}, "model": {"width": 8, "depth": 1}})
    field = C.build_field(cfg, (8, 8, 1), jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (8, 8, 1))
    out = field(x, 0.3)
    assert out.shape == (8, 8, 1)
    # the noise-parameterised score of the row-major flattened image, reshaped back
    flat = -field.net.net(x.reshape(-1), 0.3) / field.sde.std(0.3)
    np.testing.assert_allclose(np.asarray(out)[:, :, 0], np.asarray(flat).reshape(8, 8),
                               rtol=1e-12)
