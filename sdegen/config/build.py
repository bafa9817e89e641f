"""The one explicit mapping from config names to library objects: one table per axis.

- `PROCESSES`: `process.kind` -> how to build the process, what its field is, where it lives.
- `OBJECTIVES`: `objective.kind` -> how to build the loss, and what it trains.
- `MODELS`: `model.kind` -> how to build the network (or the whole classic-family model).
- `DATASETS`: `data.name` -> its data world (`WORLDS`) and how to build its `DataSource`.
- sampling methods: `sdegen.solvers.METHODS`.

The schema's choices (`config.schema`), the consistency rules (`config.rules`), the CLI's help
and `sdegen list` all read these tables; a name outside them is an error everywhere. Each entry
builds objects that the library takes directly (`sdegen.fit`, `sdegen.sample`,
`sdegen.log_prob`), so a researcher's own process, loss or network needs no entry at all unless
configs should name it. Builders take the parsed `Config` (or its section) and import the
library lazily, so reading the names costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

# ---- processes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessEntry:
    """`build(process_cfg)`; `field`: what the trained field is ("score", "velocity", or "none"
    for the classic families); `space`: "euclidean", "sphere" or "none"."""

    build: Callable[[Any], Any]
    field: str
    space: str
    doc: str


def _vp(c):
    from ..processes import VPSDE

    return VPSDE(beta_min=c.beta_min, beta_max=c.beta_max)


def _subvp(c):
    from ..processes import SubVPSDE

    return SubVPSDE(beta_min=c.beta_min, beta_max=c.beta_max)


def _ve(c):
    from ..processes import VESDE

    try:
        return VESDE(sigma_min=c.sigma_min, sigma_max=c.sigma_max)
    except ValueError as err:
        raise ConfigError(f"process: {err}") from None


def _flow_linear(c):
    from ..processes import LinearPath

    return LinearPath(sigma_min=c.path_sigma_min)


def _flow_vp(c):
    from ..processes import VPPath

    return VPPath(beta_min=c.beta_min, beta_max=c.beta_max)


def _cnf(c):
    from ..processes import CNF

    return CNF()


def _sphere_bm(c):
    from ..processes import SphereBrownian

    return SphereBrownian(beta_min=c.beta_min, beta_max=c.beta_max)


def _sphere_geodesic(c):
    from ..processes import SphereGeodesicPath

    return SphereGeodesicPath()


PROCESSES: dict[str, ProcessEntry] = {
    "vp": ProcessEntry(_vp, "score", "euclidean", "variance-preserving SDE (Song et al. 2021)"),
    "subvp": ProcessEntry(_subvp, "score", "euclidean", "sub-VP SDE (Song et al. 2021)"),
    "ve": ProcessEntry(_ve, "score", "euclidean", "variance-exploding SDE (Song et al. 2021)"),
    "flow_linear": ProcessEntry(_flow_linear, "velocity", "euclidean",
                                "linear flow-matching path (Lipman et al. 2023)"),
    "flow_vp": ProcessEntry(_flow_vp, "velocity", "euclidean",
                            "VP flow-matching path (Lipman et al. 2023)"),
    "cnf": ProcessEntry(_cnf, "velocity", "euclidean",
                        "continuous normalizing flow, max-likelihood (FFJORD)"),
    "sphere_bm": ProcessEntry(_sphere_bm, "score", "sphere",
                              "Brownian motion on S^2 (RSGM, De Bortoli et al. 2022)"),
    "sphere_geodesic": ProcessEntry(_sphere_geodesic, "velocity", "sphere",
                                    "geodesic flow-matching path on S^2 (RFM, Chen & Lipman 2024)"),
    "none": ProcessEntry(lambda c: None, "none", "none",
                         "no forward process: the classic families (model.kind=vae|helmholtz|gan)"),
}


def build_process(cfg):
    """The process of a `ProcessConfig`; None for process.kind=none (the classic families)."""
    return entry(PROCESSES, "process.kind", cfg.kind).build(cfg)


# ---- objectives -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectiveEntry:
    """`build(cfg, process, num_classes) -> loss` for `sdegen.fit` (per-example, or a
    `BatchLoss`); `trains`: the process kinds it trains (None: any process), or for the classic
    families the model kind; `labels`: whether it trains on labelled batches."""

    build: Callable[..., Callable]
    trains: tuple[str, ...] | None
    doc: str
    family: bool = False
    labels: bool = False


def _score_kw(o):
    return dict(t_eps=o.t_eps, weighting=o.weighting)


def _t_eps(o):
    return dict(t_eps=o.t_eps)


def _dsm(cfg, process, num_classes):
    from ..objectives import dsm_loss

    o = cfg.objective
    if num_classes is None:
        return lambda model, x0, key: dsm_loss(process, model, x0, key, **_score_kw(o))
    from ..conditional import conditional_dsm_loss

    return lambda model, example, key: conditional_dsm_loss(
        process, model, example, key, null=num_classes, p_uncond=o.label_dropout,
        t_eps=o.t_eps, weighting=o.weighting)


def _ssm(cfg, process, num_classes):
    from ..objectives import ssm_loss

    return lambda model, x0, key: ssm_loss(process, model, x0, key, **_score_kw(cfg.objective))


def _fm(cfg, process, num_classes):
    from ..objectives import fm_loss

    o = cfg.objective
    if num_classes is None:
        return lambda model, x0, key: fm_loss(process, model, x0, key, **_t_eps(o))
    from ..conditional import conditional_fm_loss

    return lambda model, example, key: conditional_fm_loss(
        process, model, example, key, null=num_classes, p_uncond=o.label_dropout, t_eps=o.t_eps)


def _ot_cfm(cfg, process, num_classes):
    from ..fit import BatchLoss
    from ..objectives import ot_cfm_loss

    o = cfg.objective
    if num_classes is None:
        return BatchLoss(lambda model, x0, key: ot_cfm_loss(process, model, x0, key,
                                                            t_eps=o.t_eps))
    from ..conditional import conditional_ot_cfm_loss

    return BatchLoss(lambda model, batch, key: conditional_ot_cfm_loss(
        process, model, batch, key, null=num_classes, p_uncond=o.label_dropout, t_eps=o.t_eps))


def _maxlik(cfg, process, num_classes):
    from ..fit import BatchLoss
    from ..objectives import maxlik_loss

    o = cfg.objective
    return BatchLoss(lambda model, x0, key: maxlik_loss(
        process, model, x0, key, t_eps=o.t_eps, trace=o.trace, kinetic=o.kinetic,
        frobenius=o.frobenius, rtol=o.train_tol, atol=o.train_tol))


def _classifier(cfg, process, num_classes):
    from ..conditional import classifier_loss

    t_eps = cfg.objective.t_eps
    return lambda model, example, key: classifier_loss(process, model, example, key,
                                                       t_eps=t_eps)


def _sphere(name):
    def build(cfg, process, num_classes):
        from ..objectives import SPHERE_OBJECTIVES

        objective, t_eps = SPHERE_OBJECTIVES[name], cfg.objective.t_eps
        return lambda model, x0, key: objective(process, model, x0, key, t_eps=t_eps)

    return build


def _family(name):
    def build(cfg, process, num_classes):
        from ..families import family_loss
        from ..fit import BatchLoss

        o = cfg.objective
        return BatchLoss(lambda model, x0, key: family_loss(name, model, x0, key, k=o.k,
                                                            r1_gamma=o.r1))

    return build


SCORE_SDES = ("vp", "subvp", "ve")
PATHS = ("flow_linear", "flow_vp")

OBJECTIVES: dict[str, ObjectiveEntry] = {
    "dsm": ObjectiveEntry(_dsm, SCORE_SDES, "denoising score matching (Vincent 2011; Song "
                          "et al. 2021, eq. 7)", labels=True),
    "ssm": ObjectiveEntry(_ssm, SCORE_SDES, "sliced score matching (Song et al. 2019)"),
    "fm": ObjectiveEntry(_fm, PATHS, "flow matching (Lipman et al. 2023)", labels=True),
    "ot_cfm": ObjectiveEntry(_ot_cfm, PATHS, "minibatch OT conditional flow matching "
                             "(Tong et al. 2024)", labels=True),
    "maxlik": ObjectiveEntry(_maxlik, None, "maximum likelihood through the ODE (FFJORD, "
                             "Grathwohl et al. 2019; RNODE regularisers)"),
    "classifier": ObjectiveEntry(_classifier, None, "noise-conditioned classifier p(y | x_t, t) "
                                 "for guidance (Dhariwal & Nichol 2021)", labels=True),
    "elbo": ObjectiveEntry(_family("elbo"), ("vae",), "VAE evidence lower bound (Kingma & "
                           "Welling 2014)", family=True),
    "iwae": ObjectiveEntry(_family("iwae"), ("vae",), "importance-weighted bound (Burda et "
                           "al. 2016)", family=True),
    "wake_sleep": ObjectiveEntry(_family("wake_sleep"), ("helmholtz",), "wake-sleep (Hinton "
                                 "et al. 1995)", family=True),
    "gan": ObjectiveEntry(_family("gan"), ("gan",), "non-saturating GAN with R1 (Goodfellow et "
                          "al. 2014; Mescheder et al. 2018)", family=True),
    "rdsm": ObjectiveEntry(_sphere("rdsm"), ("sphere_bm",), "Riemannian denoising score "
                           "matching (De Bortoli et al. 2022)"),
    "rism": ObjectiveEntry(_sphere("rism"), ("sphere_bm",), "Riemannian implicit score "
                           "matching (Huang et al. 2022)"),
    "rfm": ObjectiveEntry(_sphere("rfm"), ("sphere_geodesic",), "Riemannian flow matching "
                          "(Chen & Lipman 2024)"),
}


def build_loss(cfg, process, num_classes: int | None = None) -> Callable:
    """The loss of the config's objective for `sdegen.fit`: per-example `loss(model, example,
    key)`, or a `BatchLoss`. With `num_classes` examples are (x, label) pairs."""
    return entry(OBJECTIVES, "objective.kind", cfg.objective.kind).build(cfg, process,
                                                                         num_classes)


# ---- data -------------------------------------------------------------------------------------

WORLDS: dict[str, str] = {
    "toy2d": "analytic 2-D densities on R^2 (`sdegen.data.toy2d`)",
    "images": "images (H, W, C), dequantised (`sdegen.data.digits`, `sdegen.data.images`)",
    "sphere": "points on S^2: earth events and a synthetic vMF mixture (`sdegen.data.sphere`)",
}
"""The data worlds; each dataset belongs to one (`DATASETS`), and `sdegen.runs` has one
evaluation adapter per world (plus one for the classic families)."""


@dataclass(frozen=True)
class DatasetEntry:
    world: str
    build: Callable[[Any], Any]


def _toy(name):
    def build(cfg):
        from ..data import TOY_DATASETS
        from ..data.source import AnalyticSource

        return AnalyticSource(TOY_DATASETS[name], shape=(2,))

    return build


def _digits(cfg):
    from ..data.digits import DIGITS_LEVELS, binarize, digits_splits
    from ..data.source import ArraySource, DequantizedSource, LabelledSource

    d = cfg.data
    split = digits_splits(cfg.seed)
    (train, train_y), (test, test_y) = split["train"], split["test"]
    if d.holdout >= 0:
        train, train_y = train[train_y != d.holdout], train_y[train_y != d.holdout]
    if d.conditional:
        x_tr, x_te = (binarize(train), binarize(test)) if d.binarize else (train, test)
        return LabelledSource(x_tr, train_y, x_te, test_y, 0 if d.binarize else DIGITS_LEVELS, 10)
    if d.binarize:
        return ArraySource(binarize(train), binarize(test))
    return DequantizedSource(train, test, DIGITS_LEVELS)


def _image_files(name):
    def build(cfg):
        from ..data.digits import binarize
        from ..data.images import IMAGE_LEVELS, load_cifar10, load_mnist
        from ..data.source import ArraySource, DequantizedSource

        d = cfg.data
        if not d.path:
            raise ConfigError(f"data.name={name} reads files: set data.path to the folder "
                              f"holding them (see sdegen/data/images.py for the layout)")
        split = (load_mnist if name == "mnist" else load_cifar10)(d.path)
        train, test = split["train"][0], split["test"][0]
        if d.binarize:
            half = IMAGE_LEVELS // 2 - 1
            return ArraySource(binarize(train, half), binarize(test, half))
        return DequantizedSource(train, test, IMAGE_LEVELS)

    return build


def _sphere_data(name):
    def build(cfg):
        from ..data.sphere import sphere_source

        return sphere_source(name, cfg.data.path, cfg.seed, cfg.data.protocol)

    return build


TOY_NAMES = ("8gaussians", "checkerboard", "moons", "2spirals", "pinwheel", "rings", "swissroll")
EARTH_NAMES = ("volcano", "earthquake", "flood", "fire")

DATASETS: dict[str, DatasetEntry] = {
    **{n: DatasetEntry("toy2d", _toy(n)) for n in TOY_NAMES},
    "digits": DatasetEntry("images", _digits),
    "mnist": DatasetEntry("images", _image_files("mnist")),
    "cifar10": DatasetEntry("images", _image_files("cifar10")),
    "vmf_mixture": DatasetEntry("sphere", _sphere_data("vmf_mixture")),
    **{n: DatasetEntry("sphere", _sphere_data(n)) for n in EARTH_NAMES},
}


def build_data(cfg):
    """The config's dataset as a `sdegen.data.source.DataSource`."""
    d = cfg.data
    if d.binarize and DATASETS[d.name].world != "images":
        raise ConfigError(f"data.binarize applies to images ({', '.join(names_in('images'))}), "
                          f"not data.name={d.name}; remove it")
    return entry(DATASETS, "data.name", d.name).build(cfg)


def names_in(world: str) -> tuple[str, ...]:
    """The datasets of one data world."""
    return tuple(n for n, e in DATASETS.items() if e.world == world)


def data_world(cfg) -> str:
    """The world a run's evaluation belongs to: its dataset's, or "families" for the classic
    families (ancestral sampling and their own likelihood bounds)."""
    if MODELS[cfg.model.kind].family:
        return "families"
    return DATASETS[cfg.data.name].world


# ---- models -----------------------------------------------------------------------------------


def _int_list(key: str, value: list) -> tuple[int, ...]:
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ConfigError(f"config key '{key}' must be a list of positive integers, got "
                          f"{value!r}; e.g. [1, 2]")
    return tuple(value)


def _mlp(cfg, shape, key):
    from ..nets import Flattened, TimeMLP

    m = cfg.model
    net = TimeMLP(math.prod(shape), key=key, width=m.width, depth=m.depth, n_freq=m.n_freq,
                  max_freq=m.max_freq)
    return net if len(shape) == 1 else Flattened(net)  # images: the MLP sees the flat example


def _unet(cfg, shape, key):
    from ..nets import UNet

    m = cfg.model
    if len(shape) != 3:
        raise ConfigError(f"model.kind=unet takes images (H, W, C), but data.name="
                          f"{cfg.data.name!r} has examples of shape {tuple(shape)}; use "
                          "model.kind=mlp")
    mults = _int_list("model.channel_mults", m.channel_mults)
    if not mults:
        raise ConfigError("config key 'model.channel_mults' must not be empty; e.g. [1, 2]")
    try:
        return UNet(shape, key=key, channels=m.channels, channel_mults=mults,
                    num_res_blocks=m.num_res_blocks,
                    attn_resolutions=_int_list("model.attn_resolutions", m.attn_resolutions),
                    num_classes=m.num_classes, n_freq=m.n_freq, max_freq=m.max_freq)
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None


def _vae(cfg, shape, key):
    from ..families import VAE

    m = cfg.model
    return VAE.mlp(math.prod(shape), m.latent_dim, key=key, width=m.width, depth=m.depth,
                   likelihood=m.decoder)


def _gan(cfg, shape, key):
    from ..families import GAN

    m = cfg.model
    return GAN.mlp(math.prod(shape), m.latent_dim, key=key, width=m.width, depth=m.depth)


def _helmholtz(cfg, shape, key):
    from ..families import HelmholtzMachine

    m = cfg.model  # binary layers (dim, width × (depth − 1), latent_dim)
    return HelmholtzMachine((math.prod(shape), *[m.width] * (m.depth - 1), m.latent_dim),
                            key=key)


@dataclass(frozen=True)
class ModelEntry:
    """`build(cfg, shape, key)` -> the network (wrapped into a field by `build_field`), or for
    a classic `family` the whole model."""

    build: Callable[..., Any]
    doc: str
    family: bool = False


MODELS: dict[str, ModelEntry] = {
    "mlp": ModelEntry(_mlp, "time-conditioned MLP (`nets.TimeMLP`; images are flattened)"),
    "unet": ModelEntry(_unet, "DDPM++-style UNet on (H, W, C) images (`nets.UNet`)"),
    "vae": ModelEntry(_vae, "variational autoencoder (`families.VAE`)", family=True),
    "helmholtz": ModelEntry(_helmholtz, "Helmholtz machine (`families.HelmholtzMachine`)",
                            family=True),
    "gan": ModelEntry(_gan, "GAN with R1 (`families.GAN`)", family=True),
}


def _conditional_net(cfg, shape, key, num_classes: int):
    from ..nets import ClassTimeMLP, TimeClassifier

    m = cfg.model
    kw = dict(key=key, width=m.width, depth=m.depth, n_freq=m.n_freq, max_freq=m.max_freq)
    if cfg.objective.kind == "classifier":
        if m.kind != "mlp":
            raise ConfigError("objective.kind=classifier trains an MLP classifier; set "
                              "model.kind=mlp")
        return TimeClassifier(tuple(shape), num_classes, **kw)
    if m.kind == "mlp":
        return ClassTimeMLP(tuple(shape), num_classes, **kw)
    if m.num_classes != num_classes:
        raise ConfigError(f"data.conditional=true with {num_classes} classes needs "
                          f"model.num_classes={num_classes}, got {m.num_classes}")
    return None


def build_field(cfg, shape: tuple[int, ...], key, data=None):
    """The trainable model of a config (an `eqx.Module`) for examples of `shape`: a score for
    SDEs, the velocity network itself for flows and CNFs, the whole VAE / Helmholtz machine /
    GAN for the classic families. `data`: the config's built `DataSource`, if at hand."""
    m = cfg.model
    model = entry(MODELS, "model.kind", m.kind)
    if model.family:  # they act on the flattened example
        return model.build(cfg, shape, key)
    process = PROCESSES[cfg.process.kind]
    if process.space == "sphere":
        from ..nets import TangentMLP
        from ..processes import SphereScore

        net = TangentMLP(key=key, dim=shape[0], width=m.width, depth=m.depth, n_freq=m.n_freq,
                         max_freq=m.max_freq, activation=m.activation, x_freq=m.x_freq,
                         x_scale=m.x_scale)
        if process.field == "score":
            return SphereScore(net, build_process(cfg.process))
        return net
    net = None
    if cfg.data.conditional:  # labelled batches: a classifier, or a class-conditional field
        num_classes = (data if data is not None else build_data(cfg)).num_classes
        net = _conditional_net(cfg, shape, key, num_classes)
    if net is None:
        net = model.build(cfg, shape, key)
    if process.field == "velocity" or cfg.objective.kind == "classifier":
        return net
    if m.parameterisation == "energy":
        from ..energy import DenoiserEnergy, EnergyField

        return EnergyField(DenoiserEnergy(net, build_process(cfg.process)))
    from ..fields import ScoreField

    return ScoreField(net, build_process(cfg.process), m.parameterisation, m.sigma_data)


def build_optimizer(t):
    """`sdegen.fit.adam` with a `TrainConfig`'s settings."""
    from ..fit import adam

    return adam(t.lr, warmup=t.warmup, grad_clip=t.grad_clip, schedule=t.lr_schedule,
                steps=t.steps)


# ---- lookup -----------------------------------------------------------------------------------


def entry(table: dict, key: str, name: str):
    """`table[name]`, or a one-line ConfigError naming the valid choices (never a default)."""
    try:
        return table[name]
    except (KeyError, TypeError):
        import difflib

        close = difflib.get_close_matches(str(name), list(table), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"config key '{key}' must be one of {', '.join(table)}, got "
                          f"{name!r}{hint}") from None
