"""Test NLL on the four earth datasets on S^2 (Volcano, Earthquake, Flood, Fire; Mathieu & Nickel
2020), under two protocols, for the classical vMF baselines and sdegen's deep sphere models,
beside the published numbers (De Bortoli et al. 2022, "Riemannian Score-Based Generative
Modelling", Table 2; Rozen et al. 2021, Moser flow; Mathieu & Nickel 2020, Riemannian CNF and
mixture of Kent; uniform log 4π).

Protocols (5 seeds each):

- **A, standard** (the papers'): a random 80/10/10 split of all events.
- **B, de-duplicated**: exact duplicate locations are removed first, then split 80/10/10, so no
  test location also occurs in training.

Why both: protocol A is broken on Volcano — 827 events sit at only 267 distinct locations
(repeated eruptions), so most test points coincide exactly with a training point and a kernel
estimator's NLL falls without bound as its bandwidth shrinks (the two-bandwidth KDE takes its
narrow κ at the top of the grid, κ = 1e6, and its Volcano NLL is then set by the grid's end, not
by the data). Fire has many test points within ~1 km of a training point. A model's protocol-A
number therefore rewards memorising locations; protocol B measures density estimation. The
fractions are measured and written to `metrics.json` (`overlap`).

Models (all selected on the validation split only):

- `vmf_kde`: vMF kernel density estimate, κ on a log grid [1, 1e6];
- `vmf_kde2`: two-bandwidth vMF KDE, (κ1, κ2, w) on grid × grid × {0.05 … 0.95}, κ ≤ 1e6;
- `vmf_mixture`: vMF mixture by EM, K ∈ {5, 10, 20, 50, 100, 200}, κ cap 1e4;
- `rfm`: Riemannian flow matching (geodesic paths, uniform prior), `TangentMLP` velocity;
- `rsgm`: Brownian motion on S^2 + Riemannian denoising score matching, `SphereScore`;
  both evaluated with the exact Riemannian-divergence likelihood (`sdegen.log_prob`,
  t_eps = 1e-3, rtol = atol = 1e-4), best validation checkpoint of `n_evals` evaluations.

Outputs in `OUT/earth_nll/`: `metrics.json` (every run: NLL, selected hyper-parameters, wall
time), `nll_table.md` (mean ± std over seeds, beside the published numbers), `maps_*.png`
(Mollweide maps of the data and of the model densities).

    python experiments/earth_nll.py [--small] [--out results] [--data ../shared/data/earth]
        [--models vmf_kde,vmf_kde2,vmf_mixture,rfm,rsgm] [--datasets volcano,...]
        [--steps N] [--seeds N] [--evals N]

`--small` (the CI setting): Volcano only, one seed, protocol A and B, all baselines, deep
models 150 steps on a test subset (a smoke test; its deep-model numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import sdegen
from sdegen.data.sphere import EARTH_DATASETS, earth_splits, load_earth, unit_to_latlon
from sdegen.nets import TangentMLP
from sdegen.objectives import batch_loss
from sdegen.objectives_sphere import rdsm_loss, rfm_loss
from sdegen.processes import SphereScore
from sdegen.vmf import fit_two_bandwidth_kde, fit_vmf_kde, fit_vmf_mixture_selected

NAME = "earth_nll"
PROTOCOLS = ("standard", "dedup")
BASELINES = ("vmf_kde", "vmf_kde2", "vmf_mixture")
DEEP = ("rfm", "rsgm")
LABELS = {"volcano": "Volcano", "earthquake": "Earthquake", "flood": "Flood", "fire": "Fire"}
PUBLISHED = {  # nats, protocol A, mean over 5 seeds (order: volcano, earthquake, flood, fire)
    "RSGM (De Bortoli et al. 2022)": (-4.92, -0.19, 0.48, -1.33),
    "Moser flow (Rozen et al. 2021)": (-4.21, -0.16, 0.57, -1.28),
    "Riemannian CNF (Mathieu & Nickel 2020)": (-6.05, 0.14, 1.11, -0.80),
    "Mixture of Kent (Mathieu & Nickel 2020)": (-0.80, 0.33, 0.73, 1.18),
    "Uniform": (math.log(4 * math.pi),) * 4,
}
META = {
    "paper": "De Bortoli et al. 2022, Riemannian Score-Based Generative Modelling (NeurIPS); "
             "Rozen et al. 2021 (Moser flow); Mathieu & Nickel 2020 (Riemannian CNF)",
    "reproduces": "Table 2 of De Bortoli et al.: test NLL on the earth datasets (S^2)",
    "published": {f"{model}, {LABELS[ds]}": nll for model, row in PUBLISHED.items()
                  for ds, nll in zip(EARTH_DATASETS, row, strict=True)},
    "full_cost": "~2 h on 2 CPU cores (5 seeds x 2 protocols; deep models dominate)",
}
BRIEF_BASELINES = {  # measured in the issue (protocol A, 5 seeds): what ours must reproduce
    "vmf_kde": (-0.50, 0.29, 0.69, -1.05),
    "vmf_mixture": (-0.46, 0.08, 0.73, -1.12),
    "vmf_kde2": (-4.84, -0.34, 0.46, -2.42),
}


def overlap(train: np.ndarray, test: np.ndarray) -> dict:
    """Fractions of test points that coincide with a training point (< 1e-6 rad, 6 m) or lie
    within 1 km of one (Earth radius 6371 km)."""
    cos = np.max(test @ train.T, axis=1)
    d = np.arccos(np.clip(cos, -1, 1))
    return {"exact": float(np.mean(d < 1e-6)), "within_1km": float(np.mean(d < 1.0 / 6371.0))}


def fit_baseline(name, train, val, key):
    tr, va = jnp.asarray(train), jnp.asarray(val)
    if name == "vmf_kde":
        m = fit_vmf_kde(tr, va)
        return m.log_prob_batch, {"kappa": m.kappa}
    if name == "vmf_kde2":
        m = fit_two_bandwidth_kde(tr, va)
        return m.log_prob_batch, {"kappa1": m.kappa1, "kappa2": m.kappa2, "weight": m.weight}
    mix, k = fit_vmf_mixture_selected(tr, va, key=key)
    return jax.jit(jax.vmap(mix.log_prob)), {"K": k}


def _model(kind, key):
    net = TangentMLP(key=key, width=256, depth=4, n_freq=8, max_freq=16.0, activation="sin")
    if kind == "rfm":
        return sdegen.SphereGeodesicPath(), net
    return sdegen.SphereBrownian(beta_min=1e-3, beta_max=24.0), net


def _field(kind, process, net):
    return net if kind == "rfm" else SphereScore(net, process)


def fit_deep(kind, train, val, key, *, steps, batch, n_evals, lr=2e-3, tol=1e-4):
    """Train `kind` ("rfm" or "rsgm") with Adam + cosine decay and EMA 0.999; return the
    log-density function of the EMA model with the best validation NLL among `n_evals`
    evaluations, and its info."""
    k_init, k_loss = jax.random.split(key)
    process, net = _model(kind, k_init)
    objective = rfm_loss if kind == "rfm" else rdsm_loss
    sched = optax.warmup_cosine_decay_schedule(0.0, lr, min(200, steps // 10), steps, lr * 0.01)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(sched))
    params = eqx.filter(net, eqx.is_array)
    static = eqx.filter(net, eqx.is_array, inverse=True)
    opt_state = opt.init(params)
    ema = init = params
    data = jnp.asarray(train)

    @jax.jit
    def step(params, opt_state, ema, i):
        k = jax.random.fold_in(k_loss, i)
        idx = jax.random.randint(jax.random.fold_in(k, 1), (batch,), 0, data.shape[0])

        def loss_fn(p):
            field = _field(kind, process, eqx.combine(p, static))
            return batch_loss(objective, process, field, data[idx], k, t_eps=1e-3)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        ema = jax.tree_util.tree_map(lambda e, p: 0.999 * e + 0.001 * p, ema, params)
        return params, opt_state, ema, loss

    def log_prob(p):
        field = _field(kind, process, eqx.combine(p, static))
        return lambda x: sdegen.log_prob(process, field, jnp.asarray(x), t_eps=1e-3, rtol=tol,
                                         atol=tol)

    best = (np.inf, None, 0)
    eval_at = set(np.linspace(steps / n_evals, steps, n_evals).astype(int))
    losses = []
    for i in range(1, steps + 1):
        params, opt_state, ema, loss = step(params, opt_state, ema, i)
        losses.append(float(loss))
        if i in eval_at:
            # EMA without the initial weights' share (bias correction, as Adam's moments)
            d = 0.999**i
            use = jax.tree_util.tree_map(lambda e, p0, d=d: (e - d * p0) / (1 - d), ema, init)
            val_nll = -float(jnp.mean(log_prob(use)(val)))
            if val_nll < best[0]:
                best = (val_nll, use, i)
    return log_prob(best[1]), {"best_step": best[2], "val_nll": best[0],
                               "final_loss": float(np.mean(losses[-50:]))}


def run(names, models, protocols, seeds, data_path, *, steps, batch, n_evals, test_max):
    records = []
    fitted = {}
    for name in names:
        latlon = load_earth(name, data_path)
        for protocol in protocols:
            for seed in seeds:
                train, val, test = earth_splits(latlon, seed, protocol)
                ov = overlap(train, test)
                test_eval = test[:test_max] if test_max else test
                for model in models:
                    key = jax.random.key(seed)
                    t0 = time.perf_counter()
                    if model in BASELINES:
                        lp_fn, info = fit_baseline(model, train, val, key)
                    else:
                        lp_fn, info = fit_deep(model, train, val[:test_max or None], key,
                                               steps=steps, batch=batch, n_evals=n_evals)
                    t_fit = time.perf_counter() - t0
                    nll = -float(jnp.mean(lp_fn(jnp.asarray(test_eval))))
                    wall = time.perf_counter() - t0
                    rec = dict(dataset=name, protocol=protocol, seed=seed, model=model,
                               nll=nll, fit_s=t_fit, wall_s=wall, n_train=len(train),
                               n_test=len(test_eval), overlap=ov, **info)
                    records.append(rec)
                    fitted[(name, protocol, model)] = (lp_fn, train)
                    print(f"{name:10s} {protocol:8s} seed {seed} {model:12s} NLL {nll:8.3f} "
                          f"({wall:6.1f} s) {info}", flush=True)
    return records, fitted


def table(records, models, protocols, names) -> str:
    lines = []
    head = "| model | protocol | " + " | ".join(LABELS[n] for n in names) + " | wall s |"
    lines += [head, "|" + "---|" * (len(names) + 3)]
    for protocol in protocols:
        for model in models:
            cells, wall = [], 0.0
            for n in names:
                v = [r["nll"] for r in records
                     if r["model"] == model and r["protocol"] == protocol and r["dataset"] == n]
                wall += sum(r["wall_s"] for r in records if r["model"] == model
                            and r["protocol"] == protocol and r["dataset"] == n)
                cells.append(f"{np.mean(v):.2f} ± {np.std(v):.2f}" if v else "—")
            label = {"standard": "A", "dedup": "B"}[protocol]
            lines.append(f"| {model} (ours) | {label} | " + " | ".join(cells) + f" | {wall:.0f} |")
    idx = [EARTH_DATASETS.index(n) for n in names]
    for label, vals in BRIEF_BASELINES.items():
        lines.append(f"| {label} (issue's measurement) | A | "
                     + " | ".join(f"{vals[i]:.2f}" for i in idx) + " | |")
    for label, vals in PUBLISHED.items():
        lines.append(f"| {label} (published) | A | "
                     + " | ".join(f"{vals[i]:.2f}" for i in idx) + " | |")
    return "\n".join(lines)


def maps(fitted, names, protocol, models, path: Path, n_lon: int = 181) -> Path:
    """Mollweide maps: data (first column) and each model's density (log scale) on an
    `n_lon` × (n_lon // 2 + 1) longitude-latitude grid."""
    from sdegen.plot import sphere_maps

    lon = np.linspace(-np.pi, np.pi, n_lon)
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lon // 2 + 1)
    LON, LAT = np.meshgrid(lon, lat)
    grid = np.stack([np.cos(LAT) * np.cos(LON), np.cos(LAT) * np.sin(LON), np.sin(LAT)], -1)
    rows = []
    for n in names:
        lp_fn, train = fitted[(n, protocol, models[0])]
        dens = []
        for m in models:
            lp_fn, _ = fitted[(n, protocol, m)]
            dens.append((m, np.asarray(lp_fn(jnp.asarray(grid.reshape(-1, 3)))).reshape(LAT.shape)))
        rows.append((LABELS[n], unit_to_latlon(train), dens))
    return sphere_maps(rows, lon, lat, path)


def main(small: bool, out: Path, *, data_path: str = "../shared/data/earth",
         models: tuple[str, ...] | None = None, steps: int | None = None,
         n_seeds: int | None = None, names: tuple[str, ...] | None = None,
         n_evals: int | None = None) -> dict:
    out = Path(out) / NAME
    out.mkdir(parents=True, exist_ok=True)
    models = models or (BASELINES + DEEP)
    names = names or (("volcano",) if small else EARTH_DATASETS)
    seeds = tuple(range(n_seeds if n_seeds else (1 if small else 5)))
    steps = steps or (150 if small else 6000)
    t0 = time.perf_counter()
    records, fitted = run(names, models, PROTOCOLS, seeds, data_path, steps=steps,
                          batch=128 if small else 256,
                          n_evals=n_evals or (1 if small else 6),
                          test_max=200 if small else None)
    tab = table(records, models, PROTOCOLS, names)
    print(tab)
    (out / "nll_table.md").write_text(tab + "\n")
    figs = []
    for protocol in PROTOCOLS:
        # the deep models' exact likelihood on the map grid dominates a --small run: coarser
        figs.append(str(maps(fitted, names, protocol, list(models),
                             out / f"maps_{protocol}.png", n_lon=61 if small else 181)))
    metrics = {"records": records, "settings": {"small": small, "steps": steps,
                                                "seeds": list(seeds), "models": list(models)},
               "wall_s": time.perf_counter() - t0, "figures": figs, "table": tab}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def headline(metrics: dict) -> dict:
    """Mean test NLL over seeds per model and dataset, protocol A (the papers')."""
    cells: dict[str, list[float]] = {}
    for r in metrics["records"]:
        if r["protocol"] == "standard":
            cells.setdefault(f"sdegen {r['model']}, {LABELS[r['dataset']]}", []).append(r["nll"])
    return {k: float(np.mean(v)) for k, v in cells.items()}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--out", default="results")
    ap.add_argument("--data", default="../shared/data/earth")
    ap.add_argument("--models", default=None)
    ap.add_argument("--datasets", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--evals", type=int, default=None, help="validation evaluations per run")
    a = ap.parse_args()
    main(a.small, Path(a.out), data_path=a.data,
         models=tuple(a.models.split(",")) if a.models else None, steps=a.steps,
         n_seeds=a.seeds, names=tuple(a.datasets.split(",")) if a.datasets else None,
         n_evals=a.evals)
    sys.exit(0)
