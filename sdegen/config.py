"""Experiment configs: dataclass schema, YAML load, dotted `key=value` overrides, validation.

Every mistake is one `ConfigError` line naming the key and the fix: unknown keys suggest the
closest valid one, wrong types name the expected type, out-of-range values the allowed range.
This module is also the one explicit place that maps config names to classes (no registries).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .solvers import METHODS


def _choice(*options: str) -> dict:
    return {"choices": options}


def _positive() -> dict:
    return {"min": 0.0, "min_exclusive": True}


TOY_NAMES = ("8gaussians", "checkerboard", "moons", "2spirals", "pinwheel", "rings", "swissroll")
IMAGE_NAMES = ("digits", "mnist", "cifar10")
EARTH_NAMES = ("volcano", "earthquake", "flood", "fire")
SPHERE_NAMES = ("vmf_mixture", *EARTH_NAMES)
"""Data on S^2: the synthetic weather-style vMF mixture (no files) and the earth CSVs."""


@dataclass
class DataConfig:
    name: str = field(default="8gaussians",
                      metadata=_choice(*TOY_NAMES, *IMAGE_NAMES, *SPHERE_NAMES))
    path: str = ""
    """Folder holding a file-based dataset (earth CSVs, MNIST idx, CIFAR-10 batches); empty
    means the dataset's default (earth: ../shared/data/earth)."""
    protocol: str = field(default="standard", metadata=_choice("standard", "dedup"))
    """Earth data: 80/10/10 split of all events (standard) or of distinct locations (dedup);
    the split's seed is the config's `seed`."""
    binarize: bool = False
    """Images only: pixels above half range → 1, else 0 (no dequantisation), e.g. for the
    Helmholtz machine and Bernoulli VAEs."""
    conditional: bool = False
    """Images only: batches are (x, label) pairs, for class-conditional score models (label
    dropout, `objective.label_dropout`) and `objective.kind=classifier`."""
    holdout: int = field(default=-1, metadata={"min": -1})
    """Images only: leave this class out of the training split (-1: none), e.g. digits 0–8 for
    anomaly detection of 9s."""


SDE_KINDS = ("vp", "subvp", "ve")
FLOW_KINDS = ("flow_linear", "flow_vp", "cnf")
"""Process kinds: SDEs (score field) and velocity processes (the field is the velocity)."""
SPHERE_KINDS = ("sphere_bm", "sphere_geodesic")
"""Processes on S^2: Brownian motion with β(t) = beta_min + t (beta_max − beta_min) (RSGM, a
score field) and the geodesic flow-matching path (RFM, a velocity field)."""
PATH_OBJECTIVES = ("fm", "ot_cfm")
FAMILY_OBJECTIVES = {"vae": ("elbo", "iwae"), "helmholtz": ("wake_sleep",), "gan": ("gan",)}
"""The classic families (`sdegen.families`): model.kind -> the objectives that train it. They
have no forward process (process.kind=none) and generate by ancestral sampling."""
SPHERE_OBJECTIVES = {"rdsm": "sphere_bm", "rism": "sphere_bm", "rfm": "sphere_geodesic"}
"""Objectives on S^2 and the process each trains."""


@dataclass
class ProcessConfig:
    kind: str = field(default="vp", metadata=_choice(*SDE_KINDS, *FLOW_KINDS, *SPHERE_KINDS,
                                                      "none"))
    """none: no forward process, for the classic families (model.kind=vae|helmholtz|gan)."""
    beta_min: float = field(default=0.1, metadata=_positive())
    beta_max: float = field(default=20.0, metadata=_positive())
    """VP/sub-VP β(t); for sphere_bm the Brownian time change (RSGM: 1e-3 and 24 give
    τ(1) = 6, uniform to 6e-6)."""
    sigma_min: float = field(default=0.01, metadata=_positive())
    sigma_max: float = field(default=10.0, metadata=_positive())
    path_sigma_min: float = field(default=0.0, metadata={"min": 0.0, "max": 0.99})
    """σ_min of the linear flow-matching path (`flow_linear`; Lipman et al. 2023, eq. 20)."""


@dataclass
class ModelConfig:
    kind: str = field(default="mlp", metadata=_choice("mlp", "unet", *FAMILY_OBJECTIVES))
    """mlp: `nets.TimeMLP` (images are flattened); unet: `nets.UNet` on (H, W, C) images;
    vae, helmholtz, gan: the classic families of `sdegen.families` (their MLPs use width, depth
    and latent_dim)."""
    width: int = field(default=128, metadata=_positive())
    depth: int = field(default=3, metadata=_positive())
    n_freq: int = field(default=16, metadata=_positive())
    max_freq: float = field(default=64.0, metadata=_positive())
    parameterisation: str = field(default="noise",
                                  metadata=_choice("noise", "score", "edm", "energy"))
    """noise / score / edm: `fields.ScoreField`; energy: `energy.EnergyField` of the scalar
    `energy.DenoiserEnergy` (score = −∇E, so MCMC, tempering and composition apply)."""
    latent_dim: int = field(default=8, metadata=_positive())
    """vae, gan: latent dimension; helmholtz: units in the top binary layer."""
    decoder: str = field(default="gaussian", metadata=_choice("gaussian", "bernoulli"))
    """vae: p(x | z); bernoulli needs binary data (data.binarize=true)."""
    sigma_data: float = field(default=0.5, metadata=_positive())
    """edm: the data standard deviation σ_d of Karras et al. (2022) preconditioning."""
    channels: int = field(default=16, metadata=_positive())
    """unet: base channel count (times each of channel_mults per resolution level)."""
    channel_mults: list = field(default_factory=lambda: [1, 1])
    """unet: channel multiplier per resolution level (each level after the first halves H, W)."""
    num_res_blocks: int = field(default=1, metadata=_positive())
    attn_resolutions: list = field(default_factory=lambda: [4])
    """unet: spatial sizes (H at that level) with self-attention."""
    num_classes: int = field(default=0, metadata={"min": 0})
    """unet: > 0 adds a label embedding (labels 0..num_classes−1, plus a null label)."""
    activation: str = field(default="silu", metadata=_choice("silu", "sin", "tanh"))
    """Sphere data (`nets.TangentMLP`, chosen for data on S^2): hidden activation."""
    x_freq: int = field(default=0, metadata={"min": 0})
    """Sphere data: number of random Fourier features of the position (0: none)."""
    x_scale: float = field(default=10.0, metadata=_positive())
    """Sphere data: their frequency scale (angular resolution ~ 1/x_scale rad)."""


@dataclass
class ObjectiveConfig:
    kind: str = field(default="dsm", metadata=_choice(
        "dsm", "ssm", "fm", "ot_cfm", "maxlik", "classifier", "elbo", "iwae", "wake_sleep",
        "gan", *SPHERE_OBJECTIVES))
    """classifier: a noise-conditioned classifier p(y | x_t, t) (`sdegen.guidance`), on
    labelled data (`data.conditional=true`), for classifier guidance and feature distances;
    elbo, iwae, wake_sleep, gan: the classic families (`model.kind` vae, helmholtz, gan);
    rdsm, rism, rfm: the sphere objectives (`sdegen.objectives_sphere`)."""
    weighting: str = field(default="song", metadata=_choice("song", "likelihood", "likelihood_is"))
    t_eps: float = field(default=1e-5, metadata={"min": 0.0, "max": 0.5})
    trace: str = field(default="hutchinson", metadata=_choice("hutchinson", "exact"))
    """maxlik: divergence estimator during training (evaluation always uses the exact one)."""
    kinetic: float = field(default=0.0, metadata={"min": 0.0})
    """maxlik: RNODE kinetic-energy weight λ_K (Finlay et al. 2020)."""
    frobenius: float = field(default=0.0, metadata={"min": 0.0})
    """maxlik: RNODE Jacobian-Frobenius weight λ_J (Finlay et al. 2020)."""
    train_tol: float = field(default=1e-3, metadata=_positive())
    """maxlik: rtol = atol of the training solve."""
    label_dropout: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
    """dsm with data.conditional: probability of training on the null label (classifier-free
    guidance, Ho & Salimans 2022)."""
    k: int = field(default=8, metadata=_positive())
    """iwae: importance samples per example in the training bound."""
    r1: float = field(default=1.0, metadata={"min": 0.0})
    """gan: weight γ of the R1 penalty on real data (Mescheder et al. 2018)."""


@dataclass
class TrainConfig:
    steps: int = field(default=5000, metadata=_positive())
    batch_size: int = field(default=512, metadata=_positive())
    lr: float = field(default=2e-3, metadata=_positive())
    warmup: int = field(default=200, metadata={"min": 0})
    lr_schedule: str = field(default="constant", metadata=_choice("constant", "cosine"))
    """After warm-up: constant lr, or cosine decay to lr/100 at `steps`."""
    grad_clip: float = field(default=1.0, metadata=_positive())
    ema_decay: float = field(default=0.999, metadata={"min": 0.0, "max": 1.0})
    ckpt_every: int = field(default=1000, metadata=_positive())
    keep: int = field(default=3, metadata=_positive())
    log_every: int = field(default=100, metadata=_positive())
    on_nonfinite: str = field(default="stop", metadata=_choice("stop", "skip"))
    """What a non-finite loss/gradient does: stop the run, or skip that update."""
    max_skips: int = field(default=10, metadata={"min": 0})
    """With on_nonfinite=skip: stop after this many skipped updates in a row."""
    devices: int = field(default=0, metadata={"min": 0})
    """Data-parallel training over this many devices (0: all visible devices; 1: one device):
    the batch is sharded over a 1-D `jax.sharding.Mesh`, parameters replicated."""


@dataclass
class SampleConfig:
    method: str = field(default="ode", metadata=_choice(*METHODS))
    n: int = field(default=5000, metadata=_positive())
    rtol: float = field(default=1e-5, metadata=_positive())
    atol: float = field(default=1e-5, metadata=_positive())
    num_steps: int = field(default=500, metadata=_positive())
    snr: float = field(default=0.05, metadata=_positive())
    n_corrector: int = field(default=1, metadata={"min": 0})
    t_eps: float = field(default=1e-3, metadata={"min": 0.0, "max": 0.5})
    max_steps: int = field(default=16_384, metadata=_positive())
    """Step limit of the adaptive ODE solver (method=ode)."""


@dataclass
class EvalConfig:
    n_test: int = field(default=2000, metadata=_positive())
    t_eps: float = field(default=1e-5, metadata={"min": 0.0, "max": 0.5})
    rtol: float = field(default=1e-5, metadata=_positive())
    atol: float = field(default=1e-5, metadata=_positive())
    max_steps: int = field(default=16_384, metadata=_positive())
    """Step limit of the likelihood ODE solve."""
    use_ema: bool = True
    k: int = field(default=512, metadata=_positive())
    """vae, helmholtz: importance samples of the test log-likelihood estimate."""
    trace: str = field(default="auto", metadata=_choice("auto", "exact", "hutchinson"))
    """Images: divergence of the likelihood ODE (auto: exact up to 64 dimensions, e.g. 8×8
    digits, Hutchinson above)."""


@dataclass
class Config:
    name: str = field(default="toy2d", metadata={"nonempty": True})
    seed: int = field(default=0, metadata={"min": 0, "max": 2**32 - 1})
    out_dir: str = ""
    """Run directory; empty means `runs/<name>`."""
    data: DataConfig = field(default_factory=DataConfig)
    process: ProcessConfig = field(default_factory=ProcessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir or f"runs/{self.name}")


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(path: str, value: Any, tp: Any, meta: Mapping) -> Any:
    """Check (and where lossless, convert) one value against its declared type and metadata."""
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"config key '{path}' must be a finite number, got {value}") from None
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" as a string
            value = float(value)
        except ValueError:
            pass
    ok = isinstance(value, tp) and not (tp in (int, float) and isinstance(value, bool))
    if not ok:
        raise ConfigError(
            f"config key '{path}' expects {tp.__name__}, got {type(value).__name__} {value!r}"
        )
    if tp is float and not math.isfinite(value):
        raise ConfigError(f"config key '{path}' must be a finite number, got {value!r}")
    if meta.get("nonempty") and not value.strip():
        raise ConfigError(f"config key '{path}' must not be empty")
    if "choices" in meta and value not in meta["choices"]:
        close = difflib.get_close_matches(str(value), meta["choices"], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"config key '{path}' must be one of {', '.join(meta['choices'])}, "
            f"got {value!r}{hint}"
        )
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and (value < lo or (meta.get("min_exclusive") and value == lo)):
        bound = ">" if meta.get("min_exclusive") else ">="
        raise ConfigError(f"config key '{path}' must be {bound} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"config key '{path}' must be <= {hi}, got {value!r}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        where = f"section '{prefix.rstrip('.')}'" if prefix else "the config file"
        raise ConfigError(f"{where} must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            valid = [f"{prefix}{k}" for k in fields]
            close = difflib.get_close_matches(path, valid, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"
            raise ConfigError(f"unknown config key '{path}'; {hint}")
        tp = hints[key]
        if isinstance(tp, types.UnionType):
            tp = typing.get_args(tp)[0]
        if _is_section(tp):
            kwargs[key] = _build(tp, value, f"{path}.")
        else:
            kwargs[key] = _coerce(path, value, tp, fields[key].metadata)
    return cls(**kwargs)


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for i, k in enumerate(keys[:-1]):
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            where = ".".join(keys[: i + 1])
            raise ConfigError(f"override '{dotted}': config key '{where}' is a value, not a "
                              f"section; write {where}=VALUE")
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`a.b=value` → ("a.b", YAML-parsed value)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. train.steps=2000")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def from_dict(data: dict, overrides: Sequence[str] = ()) -> Config:
    """Build a validated `Config` from a nested mapping plus dotted `key=value` overrides."""
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"the config file must be a mapping of keys to values, got "
                          f"{type(data).__name__}")
    merged = dict(data or {})
    merged = yaml.safe_load(yaml.safe_dump(merged))  # deep copy of plain data
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(merged, key, value)
    return check_consistency(_build(Config, merged, ""))


def check_consistency(cfg: Config) -> Config:
    """Errors for keys that are valid alone but not together (objective vs process kind,
    t_eps = 0 where the field is singular, stochastic samplers for ODE-only processes)."""
    kind, obj = cfg.process.kind, cfg.objective.kind
    _check_family(cfg)
    if kind == "none":
        return cfg
    _check_sphere(cfg)
    if obj in ("dsm", "ssm") and kind not in SDE_KINDS:
        raise ConfigError(f"objective.kind={obj} trains a score and needs an SDE process "
                          f"({', '.join(SDE_KINDS)}), got process.kind={kind}; for {kind} use "
                          f"objective.kind={'maxlik' if kind == 'cnf' else 'fm'}")
    if obj in PATH_OBJECTIVES and kind not in ("flow_linear", "flow_vp"):
        raise ConfigError(f"objective.kind={obj} regresses a probability path's velocity and needs "
                          f"process.kind=flow_linear or flow_vp, got {kind}")
    if kind == "cnf" and obj != "maxlik":
        raise ConfigError(f"process.kind=cnf is trained by maximum likelihood; set "
                          f"objective.kind=maxlik (got {obj})")
    if kind in (*FLOW_KINDS, "sphere_geodesic") and cfg.sample.method != "ode":
        raise ConfigError(f"sample.method={cfg.sample.method} needs an SDE; process.kind={kind} "
                          "has only an ODE: set sample.method=ode")
    if (cfg.data.conditional or cfg.data.holdout >= 0) and cfg.data.name not in IMAGE_NAMES:
        raise ConfigError(f"data.conditional and data.holdout apply to labelled images "
                          f"({', '.join(IMAGE_NAMES)}), not data.name={cfg.data.name}")
    if cfg.data.conditional and obj not in ("dsm", "classifier"):
        raise ConfigError(f"data.conditional=true trains with labels: objective.kind must be dsm "
                          f"or classifier, got {obj}")
    if obj == "classifier" and not cfg.data.conditional:
        raise ConfigError("objective.kind=classifier needs labels: set data.conditional=true")
    score_kinds = (*SDE_KINDS, "sphere_bm")
    singular = kind in score_kinds or (kind == "flow_vp" and obj in PATH_OBJECTIVES)
    for key, value in (("objective.t_eps", cfg.objective.t_eps),
                       ("sample.t_eps", cfg.sample.t_eps), ("eval.t_eps", cfg.eval.t_eps)):
        if value == 0 and (kind in score_kinds or (key == "objective.t_eps" and singular)):
            raise ConfigError(f"config key '{key}' must be > 0 for process.kind={kind} (its "
                              "field is singular at t = 0); e.g. 1e-5")
    return cfg


def _check_family(cfg: Config) -> None:
    """A classic family needs its own objective, no process, and (helmholtz, bernoulli) binary
    data; the processes' models and objectives need a process."""
    model, obj, kind = cfg.model.kind, cfg.objective.kind, cfg.process.kind
    family_objs = [o for objs in FAMILY_OBJECTIVES.values() for o in objs]
    if model in FAMILY_OBJECTIVES:
        if obj not in FAMILY_OBJECTIVES[model]:
            raise ConfigError(f"model.kind={model} is trained by objective.kind="
                              f"{' or '.join(FAMILY_OBJECTIVES[model])}, got {obj}")
        if kind != "none":
            raise ConfigError(f"model.kind={model} has no forward process; set "
                              f"process.kind=none (got {kind})")
        binary = model == "helmholtz" or (model == "vae" and cfg.model.decoder == "bernoulli")
        if binary and not cfg.data.binarize:
            what = "the Helmholtz machine" if model == "helmholtz" else "model.decoder=bernoulli"
            raise ConfigError(f"{what} models binary data; set data.binarize=true (images only, "
                              "e.g. data.name=digits)")
    elif obj in family_objs:
        owner = next(m for m, objs in FAMILY_OBJECTIVES.items() if obj in objs)
        raise ConfigError(f"objective.kind={obj} trains model.kind={owner}, got "
                          f"model.kind={model}; set model.kind={owner} and process.kind=none")
    elif kind == "none":
        raise ConfigError(f"process.kind=none is for the classic families (model.kind="
                          f"{'|'.join(FAMILY_OBJECTIVES)}); model.kind={model} needs a process, "
                          "e.g. process.kind=vp")


def _check_sphere(cfg: Config) -> None:
    """Data on S^2 need a sphere process, its objective and the tangent MLP, and vice versa."""
    kind, obj, name, m = cfg.process.kind, cfg.objective.kind, cfg.data.name, cfg.model
    on_sphere = name in SPHERE_NAMES
    if on_sphere and kind not in SPHERE_KINDS:
        raise ConfigError(f"data.name={name} lives on the sphere S^2 and needs a sphere process "
                          f"(process.kind={' or '.join(SPHERE_KINDS)}), got process.kind={kind}")
    if not on_sphere and kind in SPHERE_KINDS:
        raise ConfigError(f"process.kind={kind} runs on the sphere S^2 but data.name={name} lives "
                          f"in R^d; use data.name={' or '.join(SPHERE_NAMES)}, or a Euclidean "
                          "process")
    if obj in SPHERE_OBJECTIVES and kind != SPHERE_OBJECTIVES[obj]:
        raise ConfigError(f"objective.kind={obj} trains process.kind={SPHERE_OBJECTIVES[obj]}, "
                          f"got process.kind={kind}")
    if kind in SPHERE_KINDS and obj not in SPHERE_OBJECTIVES:
        fits = [o for o, k in SPHERE_OBJECTIVES.items() if k == kind]
        raise ConfigError(f"process.kind={kind} is trained with objective.kind="
                          f"{' or '.join(fits)}, got objective.kind={obj}")
    if kind == "sphere_bm" and cfg.sample.method not in ("ode", "sde"):
        raise ConfigError(f"sample.method={cfg.sample.method} is not defined on S^2; for "
                          "process.kind=sphere_bm use sample.method=ode (probability flow) or sde "
                          "(geodesic random walk)")
    if on_sphere and m.parameterisation != "noise":
        raise ConfigError(f"model.parameterisation={m.parameterisation} is not available on S^2 "
                          "(the sphere score is P_x net / sqrt(2 tau)); remove it")
    if not on_sphere and (m.activation != "silu" or m.x_freq):
        raise ConfigError(f"model.activation / model.x_freq configure the tangent MLP of sphere "
                          f"data, not data.name={name}; remove them")
    if cfg.data.protocol != "standard" and name not in EARTH_NAMES:
        raise ConfigError(f"data.protocol={cfg.data.protocol} applies to the earth datasets "
                          f"({', '.join(EARTH_NAMES)}), not data.name={name}; remove it")


def load(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config file and apply overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found; `sdegen list` shows the shipped ones")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{path}' is not UTF-8 text; is it a YAML config?") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file '{path}' ({err.strerror})") from None
    except RecursionError:
        raise ConfigError(f"config file '{path}' is nested too deeply; fix its syntax") from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(
            f"config file '{path}' is not valid YAML{where}; fix its syntax"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must be a mapping of keys to values, got a "
                          f"{type(data).__name__}; see configs/toy2d/demo.yaml")
    return from_dict(data, overrides)


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` so that a reader (or a resumed run after a kill) sees either the
    old file or the new one, never a truncated one: write a sibling tmp file, then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def dump(cfg: Config, path: str | Path) -> None:
    write_atomic(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


# ---- the one explicit mapping from config names to library objects -------------------------


def build_process(cfg: ProcessConfig):
    """The process of the config; None for process.kind=none (the classic families)."""
    from .processes import (
        CNF,
        VESDE,
        VPSDE,
        LinearPath,
        SphereBrownian,
        SphereGeodesicPath,
        SubVPSDE,
        VPPath,
    )

    if cfg.kind == "sphere_bm":
        return SphereBrownian(beta_min=cfg.beta_min, beta_max=cfg.beta_max)
    if cfg.kind == "sphere_geodesic":
        return SphereGeodesicPath()
    if cfg.kind == "none":
        return None
    if cfg.kind == "flow_linear":
        return LinearPath(sigma_min=cfg.path_sigma_min)
    if cfg.kind == "flow_vp":
        return VPPath(beta_min=cfg.beta_min, beta_max=cfg.beta_max)
    if cfg.kind == "cnf":
        return CNF()
    if cfg.kind == "vp":
        return VPSDE(beta_min=cfg.beta_min, beta_max=cfg.beta_max)
    if cfg.kind == "subvp":
        return SubVPSDE(beta_min=cfg.beta_min, beta_max=cfg.beta_max)
    try:
        return VESDE(sigma_min=cfg.sigma_min, sigma_max=cfg.sigma_max)
    except ValueError as err:
        raise ConfigError(f"process: {err}") from None


def build_data(cfg: Config):
    """The config's dataset as a `sdegen.data.source.DataSource`."""
    from .data import TOY_DATASETS
    from .data.digits import DIGITS_LEVELS, binarize, digits_splits
    from .data.source import AnalyticSource, ArraySource, DequantizedSource, LabelledSource

    d = cfg.data
    if d.binarize and d.name not in IMAGE_NAMES:
        raise ConfigError(f"data.binarize applies to images ({', '.join(IMAGE_NAMES)}), not "
                          f"data.name={d.name}; remove it")
    if d.name in SPHERE_NAMES:
        from .data.sphere import sphere_source

        return sphere_source(d.name, d.path, cfg.seed, d.protocol)
    if d.name == "digits":
        split = digits_splits(cfg.seed)
        (train, train_y), (test, test_y) = split["train"], split["test"]
        if d.holdout >= 0:
            train, train_y = train[train_y != d.holdout], train_y[train_y != d.holdout]
        if d.conditional:
            x_tr, x_te = (binarize(train), binarize(test)) if d.binarize else (train, test)
            return LabelledSource(x_tr, train_y, x_te, test_y,
                                  0 if d.binarize else DIGITS_LEVELS, 10)
        if d.binarize:
            return ArraySource(binarize(train), binarize(test))
        return DequantizedSource(train, test, DIGITS_LEVELS)
    if d.name in ("mnist", "cifar10"):
        from .data.images import IMAGE_LEVELS, load_cifar10, load_mnist

        if not d.path:
            raise ConfigError(f"data.name={d.name} reads files: set data.path to the folder "
                              f"holding them (see sdegen/data/images.py for the layout)")
        split = (load_mnist if d.name == "mnist" else load_cifar10)(d.path)
        train, test = split["train"][0], split["test"][0]
        if d.binarize:
            half = IMAGE_LEVELS // 2 - 1
            return ArraySource(binarize(train, half), binarize(test, half))
        return DequantizedSource(train, test, IMAGE_LEVELS)
    return AnalyticSource(TOY_DATASETS[d.name], shape=(2,))


def _int_list(key: str, value: list) -> tuple[int, ...]:
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ConfigError(f"config key '{key}' must be a list of positive integers, got "
                          f"{value!r}; e.g. [1, 2]")
    return tuple(value)


def _build_net(cfg: Config, shape: tuple[int, ...], key):
    from .nets import ClassTimeMLP, Flattened, TimeClassifier, TimeMLP, UNet

    m = cfg.model
    if cfg.data.conditional:  # labelled batches: a classifier, or a class-conditional field
        k = build_data(cfg).num_classes
        kw = dict(key=key, width=m.width, depth=m.depth, n_freq=m.n_freq, max_freq=m.max_freq)
        if cfg.objective.kind == "classifier":
            if m.kind != "mlp":
                raise ConfigError("objective.kind=classifier trains an MLP classifier; set "
                                  "model.kind=mlp")
            return TimeClassifier(tuple(shape), k, **kw)
        if m.kind == "mlp":
            return ClassTimeMLP(tuple(shape), k, **kw)
        if m.num_classes != k:
            raise ConfigError(f"data.conditional=true with {k} classes needs "
                              f"model.num_classes={k}, got {m.num_classes}")
    if m.kind == "unet":
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
    net = TimeMLP(math.prod(shape), key=key, width=m.width, depth=m.depth, n_freq=m.n_freq,
                  max_freq=m.max_freq)
    return net if len(shape) == 1 else Flattened(net)  # images: the MLP sees the flat example


def build_field(cfg: Config, shape: tuple[int, ...], key):
    """The trainable model of a config (an `eqx.Module`) for examples of `shape`: a score for
    SDEs, the velocity network itself for flows and CNFs, the whole VAE / Helmholtz machine /
    GAN for the classic families."""
    from .energy import DenoiserEnergy, EnergyField
    from .fields import ScoreField

    m = cfg.model
    if m.kind in FAMILY_OBJECTIVES:  # they act on the flattened example
        from .families import GAN, VAE, HelmholtzMachine

        dim = math.prod(shape)
        if m.kind == "vae":
            return VAE.mlp(dim, m.latent_dim, key=key, width=m.width, depth=m.depth,
                           likelihood=m.decoder)
        if m.kind == "gan":
            return GAN.mlp(dim, m.latent_dim, key=key, width=m.width, depth=m.depth)
        # helmholtz: binary layers (dim, width × (depth − 1), latent_dim)
        return HelmholtzMachine((dim, *[m.width] * (m.depth - 1), m.latent_dim), key=key)
    if cfg.data.name in SPHERE_NAMES:
        from .nets import TangentMLP
        from .processes import SphereScore

        net = TangentMLP(key=key, dim=shape[0], width=m.width, depth=m.depth, n_freq=m.n_freq,
                         max_freq=m.max_freq, activation=m.activation, x_freq=m.x_freq,
                         x_scale=m.x_scale)
        if cfg.process.kind == "sphere_bm":
            return SphereScore(net, build_process(cfg.process))
        return net
    net = _build_net(cfg, shape, key)
    if cfg.process.kind in FLOW_KINDS or cfg.objective.kind == "classifier":
        return net
    if m.parameterisation == "energy":
        return EnergyField(DenoiserEnergy(net, build_process(cfg.process)))
    return ScoreField(net, build_process(cfg.process), m.parameterisation, m.sigma_data)
