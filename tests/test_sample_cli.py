"""`sdegen sample RUN` and `sdegen evaluate RUN` options on tiny trained runs: chunked draws
equal one batch, `--step`/`--no-ema` restore what they name (checked against restoring the
checkpoint directly), default outputs never overwrite, class labels and guidance go through
`ClassifierFreeGuidance`, `--png-dir` writes readable PNGs, bad values are one-line errors,
and the shell completion finds commands, config names, dotted keys and steps."""

import argparse
import io
import json
import os
import sys

import jax
import numpy as np
import pytest

import sdegen
from sdegen import config as C
from sdegen.bpd import bits_per_dim
from sdegen.cli import build_parser, main
from sdegen.runs import sample_run
from sdegen.train import ema_model, init_state, keys, restore, train

TOY = {"name": "toy", "model": {"width": 8, "depth": 1}, "eval": {"n_test": 12},
       "sample": {"n": 10, "method": "ddim", "num_steps": 4},
       "train": {"steps": 4, "ckpt_every": 2, "batch_size": 16, "warmup": 1}}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A VP score model on 8gaussians with checkpoints at steps 2 and 4."""
    run = tmp_path_factory.mktemp("runs") / "toy"
    train(C.from_dict({**TOY, "out_dir": str(run)}), progress=False)
    return run


def _load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _direct(run, step, *, use_ema=True, n=10, seed=0, field_of=None):
    """Samples of checkpoint `step` by restoring it and calling `sdegen.sample` directly."""
    cfg = C.load(run / "config.yaml")
    state = restore(run, init_state(cfg)[0], step)
    assert state.step == step
    field = ema_model(state) if use_ema else state.model
    if field_of is not None:
        field = field_of(field)
    s, data = cfg.sample, C.build_data(cfg)
    return np.asarray(sdegen.sample(
        C.build_process(cfg.process), field, key=jax.random.fold_in(keys(cfg)["sample"], seed),
        shape=(n, *data.shape), method=s.method, num_steps=s.num_steps, t_eps=s.t_eps,
        rho=s.rho, eta=s.eta))


def test_chunks_equal_one_batch(toy_run, tmp_path):
    """Fixed grid (ddim): the same samples to rounding; adaptive ode: to its tolerance (steps
    are chosen per chunk); the last chunk (10 = 4 + 4 + 2) is padded."""
    for method, rtol in (("ddim", 1e-10), ("ode", 3e-3)):  # 4 training steps: |x| ~ 100
        one = sample_run(toy_run, method=method, out=tmp_path / f"one-{method}.npz")
        chunked = sample_run(toy_run, method=method, batch_size=4,
                             out=tmp_path / f"chunked-{method}.npz", progress=True)
        a, b = _load(one)["x"], _load(chunked)["x"]
        assert a.shape == b.shape == (10, 2)
        np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-10)
        assert (tmp_path / f"chunked-{method}.png").is_file()


def test_step_and_ema_restore_what_they_name(toy_run, tmp_path, capsys):
    newest = _load(sample_run(toy_run, out=tmp_path / "newest.npz"))
    older = _load(sample_run(toy_run, step=2, out=tmp_path / "old.npz"))
    raw = _load(sample_run(toy_run, step=2, ema=False, out=tmp_path / "raw.npz"))
    assert int(newest["step"]) == 4 and int(older["step"]) == 2 and not bool(raw["ema"])
    np.testing.assert_allclose(older["x"], _direct(toy_run, 2), atol=1e-10)
    np.testing.assert_allclose(raw["x"], _direct(toy_run, 2, use_ema=False), atol=1e-10)
    np.testing.assert_allclose(newest["x"], _direct(toy_run, 4), atol=1e-10)
    assert np.abs(older["x"] - newest["x"]).max() > 1e-6  # the step changes the samples
    assert "step 2, raw weights" in capsys.readouterr().out


def test_default_outputs_never_overwrite(toy_run):
    first = toy_run / "samples.npz"
    assert not first.exists()
    assert sample_run(toy_run) == first and (toy_run / "samples.png").is_file()
    second = sample_run(toy_run, seed=3)
    assert second == toy_run / "samples-step4-ddim-seed3-n10.npz"
    third = sample_run(toy_run, seed=3)
    assert third == toy_run / "samples-step4-ddim-seed3-n10-2.npz"
    assert third.with_suffix(".png").is_file()
    assert int(_load(second)["seed"]) == 3
    np.testing.assert_array_equal(_load(second)["x"], _load(third)["x"])  # seeded
    assert np.abs(_load(first)["x"] - _load(second)["x"]).max() > 1e-6


@pytest.mark.parametrize("args,needle", [
    (["--batch-size", "-4"], "--batch-size must be a positive integer, got -4"),
    (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["--n", "0"], "--n must be a positive integer"),
    (["--seed", "-1"], "--seed must be an integer >= 0"),
    (["--step", "3"], "(complete steps: [2, 4])"),
    (["--step", "-2"], "--step must be a checkpoint step"),
    (["--out", "x.txt"], "--out must name a .npz file"),
    (["--guidance", "1.5"], "add --label"),
    (["--label", "0"], "--label needs a class-conditional run"),
    (["--png-dir", "pngs"], "--png-dir writes images, but this run's data (8gaussians)"),
])
def test_bad_sample_options_are_one_line(toy_run, args, needle, capsys):
    assert main(["sample", str(toy_run), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def test_evaluate_first_n_test_examples_of_a_step(toy_run, capsys):
    assert main(["evaluate", str(toy_run), "--n-test", "5", "--step", "2", "--grid", "3"]) == 0
    result = json.loads((toy_run / "eval.json").read_text())
    assert result["n_test"] == 5 and result["step"] == 2 and result["ema"] is True
    cfg = C.load(toy_run / "config.yaml")  # independent: the first 5 of the full test set
    test = C.build_data(cfg).test_set(keys(cfg)["test"], cfg.eval.n_test)[:5]
    field = ema_model(restore(toy_run, init_state(cfg)[0], 2))
    e = cfg.eval
    lp = sdegen.log_prob(C.build_process(cfg.process), field, test, rtol=e.rtol, atol=e.atol,
                         t_eps=e.t_eps, max_steps=e.max_steps)
    assert result["test_nll_nats"] == pytest.approx(-float(lp.mean()), abs=1e-8)
    assert "(step 2, EMA weights): 5 test examples" in capsys.readouterr().out
    assert main(["evaluate", str(toy_run), "--n-test", "0"]) == 2
    assert "--n-test must be a positive integer" in capsys.readouterr().err


COND = ["model.width=16", "model.depth=1", "train.steps=2", "train.batch_size=8",
        "train.warmup=1", "sample.method=ddim", "sample.num_steps=3"]


def test_label_guidance_and_png_export(tmp_path, capsys):
    """A class-conditional digits MLP: `--label 3 --guidance 2` equals sampling the
    `ClassifierFreeGuidance` field directly; `--png-dir` writes one 8x8 grey PNG per sample with
    the 17 grey levels of the dequantised data."""
    from PIL import Image

    from sdegen.conditional import ClassifierFreeGuidance
    from sdegen.runs.export import to_uint8

    run = tmp_path / "cond"
    assert main(["train", "configs/images/digits_cond_mlp.yaml", f"out_dir={run}",
                 "--no-progress", *COND]) == 0
    pngs = tmp_path / "pngs"
    assert main(["sample", str(run), "--n", "5", "--batch-size", "2", "--label", "3",
                 "--guidance", "2", "--png-dir", str(pngs), "--no-progress"]) == 0
    got = _load(run / "samples.npz")
    assert int(got["label"]) == 3 and float(got["guidance"]) == 2.0
    want = _direct(run, 2, n=5, field_of=lambda f: ClassifierFreeGuidance(f, 3, 2.0, null=10))
    np.testing.assert_allclose(got["x"], want, atol=1e-10)
    files = sorted(pngs.iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(5)]
    for f, x in zip(files, got["x"], strict=True):
        with Image.open(f) as img:
            assert img.size == (8, 8) and img.mode == "L"
            np.testing.assert_array_equal(np.asarray(img), to_uint8(x, 17)[..., 0])
    assert "5 PNGs of 8x8" in capsys.readouterr().out
    assert main(["sample", str(run), "--n", "2", "--png-dir", str(pngs)]) == 2  # not mixed
    assert "already holds 5 PNGs" in capsys.readouterr().err
    assert main(["sample", str(run), "--label", "10"]) == 2
    assert "--label must be a class in 0..9" in capsys.readouterr().err
    # evaluate scores x alone (the labelled test set is (x, y) pairs) with the null-class
    # field: the same bits/dim as sdegen.log_prob of the restored EMA field, computed here
    assert main(["evaluate", str(run), "--n-test", "3", "--no-progress",
                 "eval.rtol=1e-4", "eval.atol=1e-4"]) == 0
    res = json.loads((run / "eval.json").read_text())
    cfg = C.load(run / "config.yaml")
    field = ema_model(restore(run, init_state(cfg)[0], 2))
    x = C.build_data(cfg).test_set(keys(cfg)["test"], cfg.eval.n_test)[0][:3]
    lp = sdegen.log_prob(C.build_process(cfg.process), field, x, trace="exact", rtol=1e-4,
                         atol=1e-4, t_eps=cfg.eval.t_eps)
    want = float(np.mean(bits_per_dim(lp, 64, 17)))
    assert res["n_test"] == 3 and "null class" in res["conditioning"]
    np.testing.assert_allclose(res["test_bpd"], want, rtol=1e-5)


def test_to_uint8_inverts_the_dequantisation():
    from sdegen.runs.export import to_uint8

    k = np.arange(17)
    x = (k + np.linspace(0.0, 0.999, 17)) / 17  # x = (k + u) / 17
    np.testing.assert_array_equal(to_uint8(x.reshape(1, 17, 1, 1), 17).ravel(),
                                  np.round(k * 255 / 16))
    np.testing.assert_array_equal(to_uint8(np.array([[[[-0.5]], [[1.7]]]]), 256).ravel(),
                                  [0, 255])


def test_completers_read_the_schema_configs_and_steps(toy_run, monkeypatch):
    from sdegen import completion as comp

    keys_ = comp.config_keys()
    assert "train.steps" in keys_ and "sample.method" in keys_ and "seed" in keys_
    assert keys_["process.kind"] == tuple(C.PROCESSES)
    assert comp.complete_overrides("train.st") == ["train.steps="]
    assert comp.complete_overrides("process.kind=f") == ["process.kind=flow_linear",
                                                    "process.kind=flow_vp"]
    assert comp.complete_overrides("eval.use_ema=") == ["eval.use_ema=true", "eval.use_ema=false"]
    assert "toy2d/demo" in comp.complete_config("toy2d/de")
    monkeypatch.chdir(toy_run.parent)
    (toy_run.parent / "mine.yaml").write_text("name: mine\n")
    assert {"mine.yaml", "toy/"} <= set(comp.complete_config(""))
    line = argparse.Namespace(run_dir=str(toy_run))
    assert comp.complete_steps("", parsed_args=line) == ["2", "4"]


def test_shell_completion_end_to_end(toy_run, capsys, monkeypatch):
    """`sdegen completion bash` prints argcomplete's code; argcomplete, fed a command line as
    the shell would, completes commands, config keys and checkpoint steps."""
    pytest.importorskip("argcomplete")
    import argcomplete
    import argcomplete.io

    from sdegen.completion import attach

    class Finder(argcomplete.CompletionFinder):
        def _init_debug_stream(self):  # not fd 9, which may be pytest's own
            argcomplete.io.debug_stream = sys.stderr

    assert main(["completion", "bash"]) == 0
    assert "complete " in capsys.readouterr().out

    def complete(line):
        parser = build_parser()
        attach(parser)
        out = io.StringIO()
        env = {"_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
               "_ARGCOMPLETE_IFS": "\n"}
        monkeypatch.setattr(os, "environ", {**os.environ, **env})
        Finder()(parser, output_stream=out, exit_method=lambda code: None)
        return [word.strip() for word in out.getvalue().split("\n")]

    assert "completion" in complete("sdegen ")
    assert "train.steps=" in complete("sdegen train toy2d/demo train.st")
    assert complete(f"sdegen sample {toy_run} --step ") == ["2", "4"]


def test_completion_without_argcomplete_is_one_line(monkeypatch, capsys):
    import builtins

    real = builtins.__import__

    def no_argcomplete(name, *a, **k):
        if name == "argcomplete":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_argcomplete)
    assert main(["completion", "zsh"]) == 2
    assert "pip install 'sdegen[completion]'" in capsys.readouterr().err


def test_family_chunks_equal_one_batch():
    """Ancestral draws and the likelihood estimate of a (untrained) VAE: in chunks, from the
    same per-example keys, they equal one batch."""
    from types import SimpleNamespace

    from sdegen.runs import families

    cfg = C.load("configs/families/vae_8gaussians.yaml", ["model.width=8", "model.depth=1",
                                                          "eval.k=3"])
    data = C.build_data(cfg)
    model = C.build_field(cfg, data.shape, jax.random.key(0))
    run = SimpleNamespace(cfg=cfg, field=model, data=data, progress=False,
                          keys={"eval": jax.random.key(1)})
    key = jax.random.key(2)
    one, how, nfe = families.draw(run, 7, key)
    chunked, _, _ = families.draw(run, 7, key, batch_size=3)
    assert how == "ancestral" and nfe is None and chunked.shape == (7, 2)
    np.testing.assert_allclose(chunked, one, rtol=1e-12)
    test = data.test_set(jax.random.key(3), families.PROGRESS_CHUNK + 5)
    plain = families.log_prob(run, test)
    shown = families.log_prob(SimpleNamespace(**{**vars(run), "progress": True}), test)
    np.testing.assert_allclose(shown, plain, rtol=1e-10)
