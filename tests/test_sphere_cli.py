"""Sphere runs through the config and the CLI: `sdegen train configs/sphere/...`, `sample`,
`evaluate` (tiny shapes), and the config errors for sphere/Euclidean mismatches."""

import json
import math

import numpy as np
import pytest

from sdegen import ConfigError, DataError
from sdegen import config as C
from sdegen.cli import main
from sdegen.likelihood import log_prob
from sdegen.train import keys, load_run

TINY = ["train.batch_size=8", "model.width=8", "model.depth=1", "model.x_freq=2",
        "model.n_freq=2", "train.warmup=1"]


def test_rfm_vmf_mixture_train_evaluate(tmp_path, capsys):
    run = tmp_path / "rfm"
    assert main(["train", "configs/sphere/rfm_vmf_mixture.yaml", "train.steps=3", *TINY,
                 f"out_dir={run}", "--no-progress"]) == 0
    assert main(["evaluate", str(run), "eval.n_test=8", "--grid", "3"]) == 0
    res = json.loads((run / "eval.json").read_text())
    assert res["uniform_nll_nats"] == pytest.approx(math.log(4 * math.pi))
    # independent path: the EMA field of the run, the exact trace, the run's eval settings
    cfg, field = load_run(run)
    test = C.build_data(cfg).test_set(keys(cfg)["test"], 8)
    lp = log_prob(C.build_process(cfg.process), field, test, trace="exact", t_eps=1e-3,
                  rtol=1e-4, atol=1e-4)
    assert res["test_nll_nats"] == pytest.approx(-float(lp.mean()), abs=1e-6)
    # the true mixture beats uniform on its own samples (its entropy is ~1.3 nats)
    assert res["ideal_nll_nats"] < math.log(4 * math.pi) - 0.5
    assert (run / "density.png").stat().st_size > 0
    assert "uniform 2.531" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sde", "ode"])
def test_rsgm_vmf_mixture_train_sample(tmp_path, method):
    run = tmp_path / "rsgm"
    assert main(["train", "configs/sphere/rsgm_vmf_mixture.yaml", "train.steps=2", *TINY,
                 "sample.num_steps=10", f"out_dir={run}", "--no-progress"]) == 0
    assert main(["sample", str(run), "--n", "6", "--method", method]) == 0
    x = np.load(run / "samples.npz")["x"]
    assert x.shape == (6, 3)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)  # on S^2
    assert (run / "samples.png").stat().st_size > 0


@pytest.mark.parametrize("overrides, needle", [
    (["data.name=8gaussians"], "runs on the sphere S^2 but data.name=8gaussians lives in R^d"),
    (["process.kind=vp", "objective.kind=dsm"], "needs a sphere process"),
    (["objective.kind=rdsm"], "objective.kind=rdsm trains process.kind=sphere_bm"),
    (["objective.kind=fm"], "is trained with objective.kind=rfm"),
    (["data.protocol=dedup"], "applies to the earth datasets"),
])
def test_sphere_config_mismatches(overrides, needle):
    with pytest.raises(ConfigError, match=needle.replace("^", r"\^")):
        C.load("configs/sphere/rfm_vmf_mixture.yaml", overrides)


def test_sphere_process_refuses_pc_sampler_and_toy_tangent_options():
    with pytest.raises(ConfigError, match="not defined on S\\^2"):
        C.load("configs/sphere/rsgm_vmf_mixture.yaml", ["sample.method=pc"])
    with pytest.raises(ConfigError, match="configure the tangent MLP"):
        C.load("configs/toy2d/demo.yaml", ["model.activation=sin"])


def test_earth_config_missing_files_is_one_clear_error(tmp_path):
    cfg = C.load("configs/sphere/rfm_flood.yaml", [f"data.path={tmp_path}"])
    with pytest.raises(DataError, match="earth data file not found.*set data.path"):
        C.build_data(cfg)
