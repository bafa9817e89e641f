"""Digits latent edits: PF-ODE encode/decode, an attribute direction from class a to class b,
z' = z + a·v sweeps, and a temperature grid.

An unconditional VP-SDE score model (the null class of `configs/images/digits_cond_mlp.yaml`)
encodes digits to prior latents by its probability-flow ODE (`sdegen.encode`; Song et al. 2021,
Sec. 4.3, "uniquely identifiable encoding") and decodes them back (`sdegen.decode`). The
attribute direction is GLOW's (Kingma & Dhariwal 2018, Sec. 5.3): v = mean z(class b) −
mean z(class a) over training digits (`sdegen.attribute_direction`); held-out class-a digits are
decoded from z + a·v for a sweep of a (`sdegen.edit`). The temperature grid decodes τ·z,
z ~ N(0, I) (GLOW, Sec. 5.2; `sdegen.sample(temperature=τ)`).

Reported: the encode→decode reconstruction error; along the sweep, the fraction of edited digits
whose pixels correlate more with the class-b mean image than with the class-a one (a
model-free read-out of "has it become a b?"); per temperature, the mean pixel std across
samples (diversity).

Outputs in `OUT/digits_latent_edits/`: `metrics.json`, `edits.png`, `temperature.png`, `run/`.

    python experiments/digits_latent_edits.py [--small] [--out results]
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import sdegen
from sdegen.data.digits import DIGITS_LEVELS, digits_splits
from sdegen.experiment import cli, train_from_config, write_metrics

NAME = "digits_latent_edits"
META = {
    "paper": "Kingma & Dhariwal 2018, Glow (Sec. 5.2-5.3); Song et al. 2021, Score-Based "
             "Generative Modeling through SDEs (Sec. 4.3)",
    "reproduces": "GLOW's attribute manipulation and temperature figures (Figs. 5, 8), with a "
                  "PF-ODE encoder on 8x8 digits",
    "published": None,
    "full_cost": "~8 min on 2 CPU cores",
}
CONFIG = "configs/images/digits_cond_mlp.yaml"
SETTINGS = {
    "full": {"steps": 6000, "width": 256, "n_group": 150, "n_edit": 8, "tol": 1e-5,
             "temperatures": [0.4, 0.6, 0.8, 1.0], "n_temp": 64},
    "small": {"steps": 1500, "width": 128, "n_group": 40, "n_edit": 4, "tol": 1e-3,
              "temperatures": [0.5, 0.8, 1.0], "n_temp": 16},
}
CLASS_A, CLASS_B = 1, 0  # thin strokes → round strokes
SWEEP = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]


def main(small: bool = False, out: str | Path = "results") -> dict:
    s = SETTINGS["small" if small else "full"]
    out_dir = Path(out) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # score(x, t): the null-class (unconditional) score
    cfg, process, score = train_from_config(CONFIG, out_dir / "run", s["steps"],
                                            (f"model.width={s['width']}",))
    kw = dict(rtol=s["tol"], atol=s["tol"])
    split = digits_splits(cfg.seed)

    def group(name, c, n):
        x, y = split[name]
        return jnp.asarray((x[y == c][:n] + 0.5) / DIGITS_LEVELS, jnp.float32)

    xa, xb = group("train", CLASS_A, s["n_group"]), group("train", CLASS_B, s["n_group"])
    za, zb = sdegen.encode(process, score, xa, **kw), sdegen.encode(process, score, xb, **kw)
    recon = sdegen.decode(process, score, za, **kw)
    v = sdegen.attribute_direction(za, zb)
    mean_a, mean_b = xa.mean(0).ravel(), xb.mean(0).ravel()

    def closer_to_b(x):
        flat = x.reshape(x.shape[0], -1)
        corr = lambda m: jnp.array([jnp.corrcoef(f, m)[0, 1] for f in flat])  # noqa: E731
        return float(jnp.mean(corr(mean_b) > corr(mean_a)))

    held_out = group("test", CLASS_A, s["n_edit"])
    z = sdegen.encode(process, score, held_out, **kw)
    sweep = {a: jnp.clip(sdegen.decode(process, score, sdegen.edit(z, v, a), **kw), 0, 1)
             for a in SWEEP}
    temps = {tau: jnp.clip(sdegen.sample(process, score, key=jax.random.key(5),
                                         shape=(s["n_temp"], 8, 8, 1), temperature=tau, **kw),
                           0, 1) for tau in s["temperatures"]}
    metrics = {
        "experiment": NAME, "small": small, "setting": s, "class_a": CLASS_A,
        "class_b": CLASS_B,
        "reconstruction_max_abs_error": float(jnp.max(jnp.abs(recon - xa))),
        "reconstruction_rms_error": float(jnp.sqrt(jnp.mean((recon - xa) ** 2))),
        "fraction_closer_to_class_b": {str(a): closer_to_b(x) for a, x in sweep.items()},
        "temperature_mean_pixel_std": {str(t): float(jnp.mean(jnp.std(x, axis=0)))
                                       for t, x in temps.items()},
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    print({k: metrics[k] for k in ("reconstruction_max_abs_error", "fraction_closer_to_class_b",
                                   "temperature_mean_pixel_std")}, flush=True)
    fig = Figure(figsize=(1.1 * len(SWEEP), 1.1 * s["n_edit"] + 0.4), layout="constrained")
    axes = fig.subplots(s["n_edit"], len(SWEEP), squeeze=False)
    for c, (a, x) in enumerate(sweep.items()):
        for r in range(s["n_edit"]):
            axes[r, c].imshow(np.asarray(x[r])[..., 0], cmap="gray_r", vmin=0, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[0, c].set_title(f"a={a}", fontsize=8)
    fig.suptitle(f"z + a·v, v = mean z({CLASS_B}) − mean z({CLASS_A})", fontsize=9)
    fig.savefig(out_dir / "edits.png", dpi=120)
    n_show = 8
    fig = Figure(figsize=(1.0 * n_show, 1.0 * len(temps) + 0.3), layout="constrained")
    axes = fig.subplots(len(temps), n_show, squeeze=False)
    for r, (tau, x) in enumerate(temps.items()):
        for c in range(n_show):
            axes[r, c].imshow(np.asarray(x[c])[..., 0], cmap="gray_r", vmin=0, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(f"τ={tau}", fontsize=8)
    fig.savefig(out_dir / "temperature.png", dpi=120)
    write_metrics(out_dir, metrics)
    print(f"-> {out_dir}")
    return metrics


if __name__ == "__main__":
    cli(main, __doc__)
