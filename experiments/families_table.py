"""The classic families against the continuous-time models: one table of test NLL, sample
quality and cost on 8gaussians, checkerboard and the 8x8 digits.

Rows, all trained by the one loop (`sdegen.train.train`) at equal budget (the same optimiser
steps and batch size per dataset):

- VP diffusion, twice, the same noise-predicting MLP (Ho et al. 2020's ε parameterisation) and
  VP SDE β ∈ [0.1, 20] (Song et al. 2021, ICLR): "σ² weighting" follows Song et al.'s sample-
  quality recipe, denoising score matching with λ(t) = σ(t)² and t ~ U[1e-5, 1]
  (`vp_*.yaml`); "likelihood IS" follows the likelihood recipe of Song, Durkan, Murray & Ermon
  2021 ("Maximum Likelihood Training of Score-Based Diffusion Models", NeurIPS, Thm. 1 and
  Sec. 5): λ(t) = g(t)², which makes the loss a bound on the KL to the data, with t drawn by
  importance sampling q(t) ∝ g²/σ² (`objective.weighting=likelihood_is`, `vp_lik_*.yaml`), the
  setting that paper reports NLL with; on the digits this row also uses EDM preconditioning
  (Karras et al. 2022, Table 1, σ_d = 0.5; `model.parameterisation=edm`), which took its test
  NLL from +22 to −46 nats at this budget, while on 8gaussians it made the NLL worse (4.26
  against 3.31 nats), so the toy rows keep the noise parameterisation (measured in issue 23;
  `benchmarks/digits_nll_outliers.py`). Both rows are scored by the exact PF-ODE likelihood
  at t_eps = 1e-5. (That paper's variational dequantisation is not used: every continuous row
  here sees the same uniform dequantisation.);
- flow matching on the linear path (Lipman et al. 2023, the OT path with σ_min = 0, as their
  likelihood tables use): exact flow NLL at t = 0 via `sdegen.log_prob` (exact Jacobian trace);
- samples of both by the adaptive probability-flow ODE;
- a CNF trained by maximum likelihood (Grathwohl et al. 2019, FFJORD; Hutchinson trace in
  training, light RNODE penalties of Finlay et al. 2020; toy data only, `--models cnf`);
- the VAE (Kingma & Welling 2014, trained by the 8-sample IWAE bound of Burda et al. 2016):
  test NLL = the IWAE bound with k samples (a stochastic lower bound on log p, so its NLL is an
  upper bound);
- the Helmholtz machine (Dayan et al. 1995; wake–sleep, Hinton et al. 1995), binarised digits
  only, beside a Bernoulli VAE on the same binary data: NLL by importance sampling through the
  recognition model / the IWAE bound. A binary NLL on {0,1}^64 is a different quantity from the
  dequantised continuous NLL: the table keeps them on separate dataset rows ("digits (binary)");
- the GAN (Goodfellow et al. 2014, non-saturating, R1 of Mescheder et al. 2018): no likelihood.

Digits are the sklearn 8x8 digits (17 grey levels). Continuous models see them dequantised,
x = (k + u)/17 ∈ [0, 1)^64, flattened for the MLPs; their NLL is nats per image of that
continuous density, and bits/dim = (NLL + 64 ln 17)/(64 ln 2) bounds the discrete 17-level NLL
(Theis et al. 2016). Binary digits: pixels > 8 → 1; bits/dim = NLL/(64 ln 2).

NLL report (`sdegen.runs.nll`): per row the mean ± standard error of the per-example NLL, the
median, and the number of test examples beyond the robust threshold median + 3.5 · 1.4826 · MAD
(Iglewicz & Hoaglin's modified z-score, one-sided), with the mean over the rest. On the digits,
a handful of test images set the mean (issue 23); each digits row's run directory gets
`nll_extremes.png`, its worst-scored test images above typical ones.

Sample metric: sliced 2-Wasserstein distance (256 directions) between model samples and the test
set, in data space (pixel space, 64-d, for digits), beside the same distance of training data to
the test set (the floor). Sampling time: wall time of drawing the test set's number of samples,
measured on a second call after a warm-up call that compiles.

Settings: full — 2000 steps, batch 256 for every model, 1000 toy test points / the 179 test digits,
ODE rtol = atol = 1e-4, k = 512 importance samples: 446 s on 2 free CPU cores before the three
likelihood-weighted rows were added (2026-11-28; 2194 s when the cores were shared with other
jobs at load ~14); with them 1518 s on 2 cores shared with two other jobs' training
(2026-12-01), the CNF left out (add `--models cnf`, toy only). `--small` — 150 steps, batch 64,
6 runs (`SMALL_PAIRS`), k = 32: a smoke test of every code
path, its numbers mean nothing; 450 s wall at load ~16 but 152 s of CPU (≈ 2.5-3 min on 2 free
cores). At 2000 steps the GAN collapses (a ring on 8gaussians, near-identical digits).

Outputs in `OUT/families_table/`: `metrics.json` (one record per run and the settings),
`table.md`, `samples.png` (side-by-side samples: rows datasets, columns models) and
`runs/{full,small}/<model>_<dataset>/` (each run directory).

    python experiments/families_table.py [--small] [--out results] [--models ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np
from matplotlib.figure import Figure

from sdegen import config as C
from sdegen.experiment import cli, write_metrics
from sdegen.likelihood import log_prob
from sdegen.metrics import sliced_wasserstein
from sdegen.runs import draw
from sdegen.runs.families import generate, nll_units, test_log_prob
from sdegen.runs.images import nll_extremes_figure
from sdegen.runs.nll import OUTLIER_RULE, format_nll, nll_summary
from sdegen.train import keys, load_run, train

NAME = "families_table"
META = {
    "paper": "Kingma & Welling 2014, Auto-Encoding Variational Bayes; Burda et al. 2016, "
             "Importance Weighted Autoencoders; Dayan et al. 1995, The Helmholtz Machine; "
             "Goodfellow et al. 2014, Generative Adversarial Nets",
    "reproduces": "no published table: the families compared with diffusion / flow matching / "
                  "CNF inside one framework at equal budget (issue 8)",
    "published": None,
    "full_cost": "~10 min on 2 free CPU cores (446 s before the likelihood rows; 1518 s with "
                 "them on shared cores; no CNF)",
}

DATASETS = ("8gaussians", "checkerboard", "digits", "digits_binary")
MODELS = ("vp", "vp_lik", "fm", "cnf", "vae", "helmholtz", "vae_bernoulli", "gan")
LABELS = {"vp": "VP diffusion (σ² weighting)",
          "vp_lik": "VP diffusion (likelihood IS; EDM on digits)", "fm": "FM",
          "cnf": "CNF (max-lik)", "vae": "VAE",
          "helmholtz": "Helmholtz (wake-sleep)", "vae_bernoulli": "VAE (Bernoulli)",
          "gan": "GAN"}
APPLIES = {"8gaussians": ("vp", "vp_lik", "fm", "cnf", "vae", "gan"),
           "checkerboard": ("vp", "vp_lik", "fm", "cnf", "vae", "gan"),
           "digits": ("vp", "vp_lik", "fm", "vae", "gan"),
           "digits_binary": ("helmholtz", "vae_bernoulli")}
"""Which models each dataset gets: the CNF on toy data only (its max-lik training solves an
ODE per step); the binary models on binary digits only."""

SETTINGS = {
    "full": {"steps": 2000, "batch": 256, "n_test_toy": 1000, "tol": 1e-4, "k": 512},
    "small": {"steps": 150, "batch": 64, "n_test_toy": 200, "tol": 1e-3, "k": 32},
}
SMALL_PAIRS = (("8gaussians", "vp"), ("8gaussians", "vp_lik"), ("8gaussians", "vae"),
               ("8gaussians", "gan"), ("digits", "fm"), ("digits_binary", "helmholtz"))
"""`--small` (CI): one run per code path — exact ODE NLL on toy and on flattened digits, the
IWAE bound, importance sampling, no-likelihood GAN — each compile is most of its cost."""


CONFIGS = Path(__file__).resolve().parents[1] / "configs"
"""Each row's model is a shipped YAML; the experiment only sets its budget and tolerances."""


def config_path(model: str, dataset: str) -> Path:
    """The shipped YAML of one row: the toy2d configs for the diffusion / flow rows on toy data,
    configs/families/ for the rest (digits_binary is `digits` with `data.binarize: true`)."""
    if model in ("vp", "vp_lik", "fm", "cnf") and not dataset.startswith("digits"):
        return CONFIGS / "toy2d" / f"{model}_{dataset}.yaml"
    return CONFIGS / "families" / f"{model}_{dataset.removesuffix('_binary')}.yaml"


def make_config(model: str, dataset: str, setting: str, runs_root: Path,
                extra: tuple[str, ...] = ()) -> C.Config:
    s = SETTINGS[setting]
    image = dataset.startswith("digits")
    flow = model in ("fm", "cnf")
    lr = {"gan": 5e-4 if image else 1e-3}.get(model, 1e-3 if image else 2e-3)
    t_eps = (0.0, 0.0) if flow else (1e-3, 1e-5)
    overrides = {
        "name": f"{model}_{dataset}",
        "seed": 0,
        "out_dir": str(runs_root / setting / f"{model}_{dataset}"),
        # one budget for every row
        "train.steps": s["steps"], "train.batch_size": s["batch"], "train.lr": lr,
        "train.warmup": min(200, s["steps"] // 4), "train.ema_decay": 0.999,
        "train.ckpt_every": s["steps"], "train.log_every": 50,
        "sample.method": "ode", "sample.n": 5000, "sample.rtol": s["tol"],
        "sample.atol": s["tol"], "sample.t_eps": t_eps[0],
        "eval.n_test": 180 if image else s["n_test_toy"], "eval.rtol": s["tol"],
        "eval.atol": s["tol"], "eval.k": s["k"], "eval.t_eps": t_eps[1],
    }
    return C.load(config_path(model, dataset),
                  [f"{k}={v}" for k, v in overrides.items()] + list(extra))


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t0


def evaluate(cfg: C.Config) -> tuple[dict, np.ndarray]:
    """(record, samples) of a trained run: test NLL, sliced W, sampling time."""
    cfg, model = load_run(cfg.run_dir)
    k = keys(cfg)
    data = C.build_data(cfg)
    test = data.test_set(k["test"], cfg.eval.n_test)
    n = test.shape[0]
    family = cfg.model.kind != "mlp"
    t0 = time.perf_counter()
    if family:
        lp = test_log_prob(cfg, model, test, k["eval"])
    else:
        e = cfg.eval
        lp = log_prob(C.build_process(cfg.process), model, test, trace="exact", rtol=e.rtol,
                      atol=e.atol, t_eps=e.t_eps, max_steps=e.max_steps)
    t_lik = time.perf_counter() - t0
    if family:
        sampler = lambda key: generate(model, n, key, data.shape)  # noqa: E731
    else:
        sampler = lambda key: draw(cfg, model, n, key)[0]  # noqa: E731
    _timed(sampler, jax.random.fold_in(k["sample"], 1))  # compile
    x, t_sample = _timed(sampler, k["sample"])
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    sw = float(sliced_wasserstein(jax.random.key(0), flat(x), flat(test)))
    floor = float(sliced_wasserstein(jax.random.key(0), flat(data.train_batch(k["eval"], n)),
                                     flat(test)))
    summary = nll_summary(lp)
    nll = summary["test_nll_nats"]
    if lp is not None and test.ndim == 4:  # images: the worst-scored test digits beside typical
        summary["nll_extremes_figure"] = str(nll_extremes_figure(
            test, lp, cfg.run_dir / "nll_extremes.png", title=f"{cfg.name} ({LABELS[_row(cfg)]})"))
    record = {
        **summary,
        "nll_estimator": {"vae": f"IWAE bound k={cfg.eval.k}",
                          "helmholtz": f"IS via recognition model k={cfg.eval.k}",
                          "gan": None}.get(cfg.model.kind, "exact ODE likelihood"),
        **(nll_units(cfg, nll) if nll is not None else {}),
        **({"bits_per_dim_median": nll_units(cfg, summary["test_nll_median"])["bits_per_dim"]}
           if nll is not None and nll_units(cfg, nll) else {}),
        "sliced_w_model_vs_test": sw,
        "sliced_w_data_vs_test": floor,
        "n_test": n,
        "likelihood_wall_s": round(t_lik, 2),
        "sample_wall_s": round(t_sample, 3),
    }
    return record, np.asarray(x)


def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def _row(cfg: C.Config) -> str:
    """The row (a key of LABELS) of a run, from its name `<model>_<dataset>`."""
    return next(m for m in sorted(MODELS, key=len, reverse=True) if cfg.name.startswith(m + "_"))


def format_table(records: list[dict]) -> str:
    head = ("| dataset | model | test NLL mean ± s.e. (nats/example) | median | outliers | "
            "mean without them | bits/dim (median) | NLL estimator | sliced W (data floor) | "
            "train s | sample s |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in records:
        nll = "—" if r["test_nll_nats"] is None else \
            f"{r['test_nll_nats']:.3f} ± {r['test_nll_stderr']:.3f}"
        out = "—" if r.get("test_nll_outliers") is None else \
            f"{r['test_nll_outliers']}/{r['n_test']} > {r['test_nll_outlier_threshold']:.2f}"
        bpd = _fmt(r.get("bits_per_dim"), ".3f")
        if r.get("bits_per_dim_median") is not None:
            bpd += f" ({r['bits_per_dim_median']:.3f})"
        rows.append(f"| {r['dataset']} | {LABELS[r['model']]} | {nll} | "
                    f"{_fmt(r.get('test_nll_median'), '.3f')} | {out} | "
                    f"{_fmt(r.get('test_nll_mean_inliers'), '.3f')} | "
                    f"{bpd} | {r['nll_estimator'] or '—'} | "
                    f"{r['sliced_w_model_vs_test']:.3f} ({r['sliced_w_data_vs_test']:.3f}) | "
                    f"{r['train_wall_s']:.0f} | {r['sample_wall_s']:.2f} |")
    return "\n".join(rows)


def _figure(samples: dict, records: list[dict], tests: dict, path: Path) -> Path:
    """Rows: datasets; columns: test data, then each model's samples (scatter / image grid)."""
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    ncol = 1 + max(sum(r["dataset"] == d for r in records) for d in datasets)
    fig = Figure(figsize=(2.4 * ncol, 2.5 * len(datasets)), layout="constrained")
    for i, ds in enumerate(datasets):
        panels = [("test data", tests[ds])] + [
            (LABELS[r["model"]], samples[(ds, r["model"])]) for r in records
            if r["dataset"] == ds]
        for j, (title, x) in enumerate(panels):
            ax = fig.add_subplot(len(datasets), ncol, i * ncol + j + 1)
            if x.ndim == 2:
                ax.scatter(x[:, 0], x[:, 1], s=0.5, alpha=0.5)
                ax.set_xlim(-5, 5)
                ax.set_ylim(-5, 5)
                ax.set_aspect("equal")
                ax.set_xticks([])
                ax.set_yticks([])
            else:  # a 5 × 5 grid of images
                imgs = np.clip(x[:25, ..., 0], 0, 1)
                imgs = np.pad(imgs, ((0, 25 - imgs.shape[0]), (1, 0), (1, 0)), constant_values=1)
                h, w = imgs.shape[1:]
                grid = imgs.reshape(5, 5, h, w).transpose(0, 2, 1, 3).reshape(5 * h, 5 * w)
                ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
                ax.set_axis_off()
            ax.set_title(f"{ds}: {title}", fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def main(small: bool = False, out: str | Path = "results", models=None, datasets=None) -> dict:
    """Train and evaluate every applicable (dataset, model) pair; write table, figure, metrics."""
    setting = "small" if small else "full"
    models = tuple(models or [m for m in MODELS if m != "cnf"])
    datasets = tuple(datasets or DATASETS)
    out_dir = Path(out) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty()
    t_start = time.perf_counter()
    pairs = [(ds, m) for ds in datasets for m in models if m in APPLIES[ds]]
    if small:
        pairs = [p for p in pairs if p in SMALL_PAIRS]
    records, samples, tests = [], {}, {}
    for ds, m in pairs:
        cfg = make_config(m, ds, setting, out_dir / "runs")
        t0 = time.perf_counter()
        train(cfg, progress=progress)
        t_train = time.perf_counter() - t0
        record, x = evaluate(cfg)
        records.append({"dataset": ds, "model": m, **record, "train_wall_s": round(t_train, 1),
                        "train_steps": cfg.train.steps, "batch_size": cfg.train.batch_size,
                        "run_dir": str(cfg.run_dir)})
        samples[(ds, m)] = x
        if ds not in tests:
            tests[ds] = np.asarray(C.build_data(cfg).test_set(keys(cfg)["test"],
                                                             cfg.eval.n_test))
        print(f"[{len(records)}/{len(pairs)}] {cfg.name}: train {t_train:.0f} s, "
              f"elapsed {time.perf_counter() - t_start:.0f} s", flush=True)
    table = format_table(records)
    wall = time.perf_counter() - t_start
    s = SETTINGS[setting]
    (out_dir / "table.md").write_text(
        f"{setting} setting: {s['steps']} steps, batch {s['batch']} for every model; total "
        f"wall {wall:.0f} s. Digits NLL: nats per image of the dequantised continuous density "
        f"(bits/dim = (NLL + 64 ln 17)/(64 ln 2)); digits (binary): a discrete NLL on "
        f"{{0,1}}^64, not comparable with it. VAE and Helmholtz NLLs are estimates from lower "
        f"bounds on log p (upper bounds on NLL). Outliers: {OUTLIER_RULE}.\n\n{table}\n")
    png = _figure(samples, records, tests, out_dir / "samples.png")
    metrics = {"experiment": NAME, "small": small, "setting": {"name": setting, **s},
               "runs": records, "wall_s": round(wall, 1)}
    path = write_metrics(out_dir, metrics)
    print(f"\n{table}\n\ntotal wall time {wall:.0f} s")
    print(f"figure  -> {png}\ntable   -> {out_dir / 'table.md'}\nmetrics -> {path}")
    return metrics


def headline(metrics: dict) -> dict:
    """Test NLL (nats; an upper bound for the VAE and Helmholtz rows) as mean ± s.e. (median;
    outliers/n > threshold), and sliced W to the test set of every run, as the experiments index
    shows them. The GAN has no likelihood."""
    out = {"test NLL cells": f"nats per example: mean ± s.e. (median; number of examples with "
                             f"{OUTLIER_RULE})"}
    for r in metrics["runs"]:
        name = f"{r['dataset']} {LABELS[r['model']]}"
        if r.get("test_nll_nats") is not None:
            out[f"test NLL {name}"] = format_nll(r, 3)
        out[f"sliced W {name}"] = r["sliced_w_model_vs_test"]
        out[f"sliced W {r['dataset']} train data (floor)"] = r["sliced_w_data_vs_test"]
    return out


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", default=None, choices=MODELS)
    parser.add_argument("--datasets", nargs="+", default=None, choices=DATASETS)


if __name__ == "__main__":
    cli(main, __doc__, _arguments)
