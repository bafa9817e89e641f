"""Digits inpainting: squares, half-images and random pixels, by replacement and by the Tweedie
conditional-score correction.

An unconditional VP-SDE score model (the null class of `configs/images/digits_cond_mlp.yaml`)
completes held-out test digits given a mask, by `sdegen.inpaint.inpaint`: `"replace"` (the
replacement method = Song et al. 2021, App. I.2) and `"tweedie"` (the conditional-SDE score
∇ log p_t(x) + ∇ log p(y | x_t) with the Tweedie Gaussian posterior; Boys et al. 2023), both
through `sdegen.sample(method="sde")`. Reported per mask and method: the RMSE of the completed
(unobserved) pixels against the true digit, beside two references — the training-mean image
(what a model that ignores the observation gets) and the nearest training digit on the observed
pixels (a non-parametric imputer).

Outputs in `OUT/digits_inpainting/`: `metrics.json`, `inpainting.png`, `run/`.

    python experiments/digits_inpainting.py [--small] [--out results]
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from sdegen.conditional import half_mask, inpaint, random_mask, square_mask
from sdegen.data.digits import DIGITS_LEVELS, digits_splits
from sdegen.experiment import cli, train_from_config, write_metrics

NAME = "digits_inpainting"
META = {
    "paper": "Song et al. 2021, Score-Based Generative Modeling through SDEs (App. I.2); "
             "Boys et al. 2023, Tweedie Moment Projected Diffusions for Inverse Problems",
    "reproduces": "the inpainting figure of Song et al. 2021 (Fig. 9), on 8x8 digits",
    "published": None,
    "full_cost": "~10 min on 2 CPU cores",
}
CONFIG = "configs/images/digits_cond_mlp.yaml"
SETTINGS = {
    "full": {"steps": 6000, "width": 256, "n_digits": 24, "num_steps": 500},
    "small": {"steps": 1500, "width": 128, "n_digits": 4, "num_steps": 200},
}
SHAPE = (8, 8, 1)


def masks() -> dict:
    return {"square 4x4": square_mask(SHAPE, 2, 2, 4), "top half": half_mask(SHAPE, "top"),
            "random 30%": random_mask(jax.random.key(7), SHAPE, 0.3)}


def main(small: bool = False, out: str | Path = "results") -> dict:
    s = SETTINGS["small" if small else "full"]
    out_dir = Path(out) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # called as score(x, t): the null-class (unconditional) score
    cfg, process, score = train_from_config(CONFIG, out_dir / "run", s["steps"],
                                            (f"model.width={s['width']}",))
    split = digits_splits(cfg.seed)
    train_x = np.asarray((split["train"][0] + 0.5) / DIGITS_LEVELS, np.float32)
    test_x = np.asarray((split["test"][0][: s["n_digits"]] + 0.5) / DIGITS_LEVELS, np.float32)
    mean_image = train_x.mean(0)
    results, shown = {}, {}
    for m_name, mask in masks().items():
        m = np.asarray(mask)
        hole = ~m
        errs = {"replace": [], "tweedie": [], "training_mean": [], "nearest_neighbour": []}
        for i, x in enumerate(test_x):
            key = jax.random.fold_in(jax.random.key(1), i)
            for method in ("replace", "tweedie"):
                comp = np.asarray(inpaint(process, score, jnp.asarray(x), mask, key=key, n=1,
                                          method=method, num_steps=s["num_steps"]))[0]
                comp = np.clip(comp, 0.0, 1.0)
                errs[method].append(np.mean((comp[hole] - x[hole]) ** 2))
                if i < 3:
                    shown[(m_name, i, method)] = comp
            errs["training_mean"].append(np.mean((mean_image[hole] - x[hole]) ** 2))
            nn = train_x[np.argmin(np.sum(((train_x - x) * m) ** 2, axis=(1, 2, 3)))]
            errs["nearest_neighbour"].append(np.mean((nn[hole] - x[hole]) ** 2))
        results[m_name] = {k: float(np.sqrt(np.mean(v))) for k, v in errs.items()}
        print(m_name, "RMSE of unobserved pixels:", results[m_name], flush=True)
    fig = Figure(figsize=(6, 1.4 * 3 * len(results) / 1.6), layout="constrained")
    rows = [(m_name, i) for m_name in results for i in range(min(3, len(test_x)))]
    axes = fig.subplots(len(rows), 4, squeeze=False)
    for r, (m_name, i) in enumerate(rows):
        mask = np.asarray(masks()[m_name])
        x = test_x[i]
        panels = [x, np.where(mask, x, np.nan), shown[(m_name, i, "replace")],
                  shown[(m_name, i, "tweedie")]]
        for c, (img, title) in enumerate(zip(panels, ("digit", "observed", "replace",
                                                      "tweedie"), strict=True)):
            ax = axes[r, c]
            ax.imshow(img[..., 0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(m_name, fontsize=7)
    fig.savefig(out_dir / "inpainting.png", dpi=120)
    metrics = {"experiment": NAME, "small": small, "setting": s, "sampler": "sde",
               "rmse_unobserved": results, "wall_s": round(time.perf_counter() - t0, 1)}
    write_metrics(out_dir, metrics)
    print(f"-> {out_dir}")
    return metrics


if __name__ == "__main__":
    cli(main, __doc__)
