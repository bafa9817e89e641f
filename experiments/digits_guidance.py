"""Guided class-conditional digits: classifier-free and classifier guidance over a grid of w.

A class-conditional VP-SDE score model trained with label dropout (`configs/images/
digits_cond_mlp.yaml`; Ho & Salimans 2022) samples each digit class under classifier-free
guidance s̃ = (1 + w) s(x, t, y) − w s(x, t, ∅) (their eq. 6), and its null-class (unconditional)
score is steered by a noise-conditioned classifier p_φ(y | x_t, t) (`configs/images/
digits_classifier.yaml`) as s + w ∇ log p_φ(y | x_t, t) (Dhariwal & Nichol 2021, Alg. 1). Both are
field transforms (`sdegen.guidance`) sampled by `sdegen.sample(method="sde")` (Euler–Maruyama;
the ODE samplers amplify the small-t errors of these CPU-small models).

The flow-matching row: a class-conditional velocity on the linear path, trained with the same
label dropout (`configs/images/digits_cond_fm.yaml`; Lipman et al. 2023), guided by the same
`ClassifierFreeGuidance` wrapper, (1 + w) v(x, t, y) − w v(x, t, ∅) — the guided flow of Zheng
et al. 2023 ("Guided flows for generative modeling and decision making") with ω = 1 + w — and
sampled by its ODE (`sdegen.sample(method="ode")`, adaptive Tsit5).

For each w: the accuracy of the samples under the classifier at t = t_feat (did we get the
class we asked for?), the Fréchet distance between classifier features of the samples and of the
test digits (`sdegen.metrics.feature_distance`, the CPU-scale analogue of FID; the distance of
the training digits to the test digits is its floor), and the mean per-class pixel std
(diversity). The expected picture (Ho & Salimans 2022, Fig. 1/Table 1): accuracy rises with w,
diversity falls, the feature distance is lowest at a small w.

Outputs in `OUT/digits_guidance/`: `metrics.json`, `grid_cfg.png` (diffusion and FM rows),
`grid_classifier.png`, `tradeoff.png`, `runs/` (the three trained models).

    python experiments/digits_guidance.py [--small] [--out results]
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import sdegen
from sdegen.conditional import ClassifierFreeGuidance, ClassifierGuidance
from sdegen.data.digits import DIGITS_LEVELS, digits_splits
from sdegen.experiment import cli, train_from_config, write_metrics
from sdegen.metrics import feature_distance

NAME = "digits_guidance"
META = {
    "paper": "Ho & Salimans 2022, Classifier-Free Diffusion Guidance; Dhariwal & Nichol 2021, "
             "Diffusion Models Beat GANs on Image Synthesis; Zheng et al. 2023, Guided Flows "
             "for Generative Modeling and Decision Making",
    "reproduces": "the guidance trade-off of Ho & Salimans 2022 Fig. 1/Table 1 (class accuracy "
                  "up and diversity down as w grows), on 8x8 digits",
    "published": None,
    "full_cost": "~12 min on 2 CPU cores",
}
SETTINGS = {
    "full": {"steps": 6000, "clf_steps": 4000, "width": 256, "n_per_class": 50, "num_steps": 500,
             "fm_steps": 6000, "fm_tol": 1e-4, "ws": [0.0, 0.5, 1.0, 2.0, 4.0]},
    "small": {"steps": 1500, "clf_steps": 500, "width": 128, "n_per_class": 8, "num_steps": 200,
              "fm_steps": 1000, "fm_tol": 1e-3, "ws": [0.0, 1.0, 3.0]},
}
T_FEAT = 1e-3  # the classifier's time input when it classifies / embeds clean images


def train_models(s: dict, out_dir: Path, overrides: tuple[str, ...] = ()):
    """(process, conditional score, classifier) trained by `sdegen.train` from the shipped
    digits configs; runs in `out_dir/runs/`."""
    common = (f"model.width={s['width']}", *overrides)
    _, process, score = train_from_config("configs/images/digits_cond_mlp.yaml",
                                          out_dir / "runs" / "score", s["steps"], common)
    _, _, classifier = train_from_config("configs/images/digits_classifier.yaml",
                                         out_dir / "runs" / "classifier", s["clf_steps"], common)
    return process, score, classifier


def train_flow(s: dict, out_dir: Path, overrides: tuple[str, ...] = ()):
    """(path, conditional velocity) of the class-conditional FM config; run in
    `out_dir/runs/fm`."""
    _, path, velocity = train_from_config("configs/images/digits_cond_fm.yaml",
                                          out_dir / "runs" / "fm", s["fm_steps"],
                                          (f"model.width={s['width']}", *overrides))
    return path, velocity


def clean_digits(split: str, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """A split's digits at pixel-bin centres (k + ½)/17 in [0, 1), with labels."""
    x, y = digits_splits(seed)[split]
    return jnp.asarray((x + 0.5) / DIGITS_LEVELS, jnp.float32), jnp.asarray(y)


def accuracy(classifier, x, y) -> float:
    logits = jax.jit(jax.vmap(lambda v: classifier(v, T_FEAT)))(x)
    return float(jnp.mean(jnp.argmax(logits, -1) == y))


def guided_samples(process, make_field, key, n_per_class: int, num_steps: int, **ode):
    """(10·n, 8, 8, 1) samples, `n` per class, of the field `make_field(y)`: Euler–Maruyama with
    `num_steps` steps, or with `ode` options (rtol, atol, t_eps) the adaptive ODE."""
    how = (dict(method="ode", **ode) if ode else dict(method="sde", num_steps=num_steps))
    xs = []
    for c in range(10):
        xs.append(sdegen.sample(process, make_field(c), key=jax.random.fold_in(key, c),
                                shape=(n_per_class, 8, 8, 1), **how))
    return jnp.clip(jnp.concatenate(xs), 0.0, 1.0)


def draw_grid(rows: dict, path: Path, title: str) -> None:
    fig = Figure(figsize=(6.5, 0.7 * len(rows) + 0.5), layout="constrained")
    axes = fig.subplots(len(rows), 10, squeeze=False)
    for r, (label, x) in enumerate(rows.items()):
        for c in range(10):
            ax = axes[r, c]
            ax.imshow(np.asarray(x[c])[..., 0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=120)


def main(small: bool = False, out: str | Path = "results") -> dict:
    s = SETTINGS["small" if small else "full"]
    out_dir = Path(out) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    process, score, clf = train_models(s, out_dir)
    path, velocity = train_flow(s, out_dir)
    x_test, y_test = clean_digits("test")
    x_train, _ = clean_digits("train")
    feats = lambda x: clf.features(x, T_FEAT)  # noqa: E731
    results = {
        "classifier_test_accuracy": accuracy(clf, x_test, y_test),
        "feature_distance_train_vs_test": feature_distance(feats, x_train, x_test),
        "cfg": {}, "classifier_guidance": {}, "fm_cfg": {},
    }
    labels = jnp.repeat(jnp.arange(10), s["n_per_class"])
    grids = {"cfg": {}, "classifier_guidance": {}, "fm_cfg": {}}
    key = jax.random.key(0)
    ode = {"rtol": s["fm_tol"], "atol": s["fm_tol"], "t_eps": 0.0}
    for w in s["ws"]:
        fields = {"cfg": (process, lambda y, w=w: ClassifierFreeGuidance(score, y, w, null=10),
                          {}),
                  "classifier_guidance": (process, lambda y, w=w: ClassifierGuidance(
                      score, clf, y, w), {}),
                  "fm_cfg": (path, lambda y, w=w: ClassifierFreeGuidance(velocity, y, w,
                                                                         null=10), ode)}
        for kind, (proc, make, how) in fields.items():
            x = guided_samples(proc, make, jax.random.fold_in(key, int(w * 100)),
                               s["n_per_class"], s["num_steps"], **how)
            per_class_std = jnp.mean(jnp.stack([
                jnp.mean(jnp.std(x[labels == c], axis=0)) for c in range(10)]))
            results[kind][str(w)] = {
                "class_accuracy": accuracy(clf, x, labels),
                "feature_distance_to_test": feature_distance(feats, x, x_test),
                "mean_per_class_pixel_std": float(per_class_std),
            }
            grids[kind][f"w={w}"] = x[:: s["n_per_class"]]
            print(kind, w, results[kind][str(w)], flush=True)
    both = {**{f"VP {k}": v for k, v in grids["cfg"].items()},
            **{f"FM {k}": v for k, v in grids["fm_cfg"].items()}}
    draw_grid(both, out_dir / "grid_cfg.png",
              "classifier-free guidance, diffusion (VP) and flow matching (FM) (rows: w; "
              "columns: class 0-9)")
    draw_grid(grids["classifier_guidance"], out_dir / "grid_classifier.png",
              "classifier guidance (rows: w; columns: class 0-9)")
    fig = Figure(figsize=(9, 3), layout="constrained")
    axes = fig.subplots(1, 3)
    for kind, marker, label in (("cfg", "o-", "classifier-free, diffusion (VP)"),
                                ("classifier_guidance", "s--", "classifier, diffusion (VP)"),
                                ("fm_cfg", "^-.", "classifier-free, flow matching")):
        ws = [float(w) for w in results[kind]]
        for ax, name in zip(axes, ("class_accuracy", "feature_distance_to_test",
                                   "mean_per_class_pixel_std"), strict=True):
            ax.plot(ws, [results[kind][str(w)][name] for w in s["ws"]], marker, label=label)
            ax.set_xlabel("guidance scale w")
            ax.set_title(name.replace("_", " "), fontsize=9)
    axes[0].legend(fontsize=7, loc="lower right")
    floor = axes[1].axhline(results["feature_distance_train_vs_test"], color="k", ls=":",
                            label="train vs test digits")
    axes[1].legend(handles=[floor], fontsize=7, loc="upper center")
    fig.savefig(out_dir / "tradeoff.png", dpi=130)
    metrics = {"experiment": NAME, "small": small, "setting": s,
               "sampler": "sde (Euler-Maruyama); fm_cfg: ode (adaptive Tsit5)",
               "t_feat": T_FEAT, "results": results,
               "wall_s": round(time.perf_counter() - t0, 1)}
    write_metrics(out_dir, metrics)
    print(f"-> {out_dir}")
    return metrics


if __name__ == "__main__":
    cli(main, __doc__)
