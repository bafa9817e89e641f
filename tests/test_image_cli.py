"""`sdegen train | sample | evaluate` on the digits UNet config, with tiny sizes: checkpoints,
a sample grid and test bits/dim consistent with the test NLL."""

import json
import math
from pathlib import Path

import pytest

from sdegen.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # three UNet compiles (train step, sampler, exact-trace likelihood): ~1-3 min
def test_digits_unet_train_sample_evaluate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    tiny = ["model.channels=4", "train.batch_size=8", "sample.num_steps=5"]
    assert main(["train", str(REPO / "configs/images/digits_vp.yaml"), "train.steps=3",
                 f"out_dir={run}", "--no-progress", *tiny]) == 0
    assert (run / "checkpoints" / "3").is_dir()
    assert main(["sample", str(run), "--n", "4"]) == 0
    assert (run / "samples.png").stat().st_size > 0
    assert main(["evaluate", str(run), "eval.n_test=3", "eval.rtol=1e-3", "eval.atol=1e-3"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert result["trace"] == "exact" and result["n_test"] == 3 and result["levels"] == 17
    d = 64
    want = (result["test_nll_nats"] + d * math.log(17)) / (d * math.log(2))
    assert math.isclose(result["test_bpd"], want, rel_tol=1e-9)
    assert (run / "samples_grid.png").stat().st_size > 0
