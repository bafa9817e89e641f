"""Rules between keys that are valid alone but not together: objective vs process kind, the
classic families, the sphere, t_eps = 0 where the field is singular, stochastic samplers for
ODE-only processes. The name lists they use are derived from the tables of `config.build`."""

from __future__ import annotations

from ..errors import ConfigError
from ..solvers import METHODS
from .build import EARTH_NAMES, OBJECTIVES, PATHS, PROCESSES
from .schema import (
    FAMILY_OBJECTIVES,
    IMAGE_NAMES,
    PATH_OBJECTIVES,
    SDE_KINDS,
    SPHERE_KINDS,
    SPHERE_NAMES,
    SPHERE_OBJECTIVES,
    Config,
)


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
    trains = OBJECTIVES[obj].trains
    if trains is not None and kind not in trains:  # what the specific messages above miss
        raise ConfigError(f"objective.kind={obj} trains process.kind={' or '.join(trains)}, got "
                          f"process.kind={kind}")
    few_step = kind in PATHS and METHODS[cfg.sample.method].terms == "denoiser"
    if PROCESSES[kind].field == "velocity" and cfg.sample.method != "ode" and not few_step:
        raise ConfigError(f"sample.method={cfg.sample.method} needs an SDE; process.kind={kind} "
                          "has only an ODE: set sample.method=ode (or, on flow_linear/flow_vp, a "
                          "few-step method such as unipc)")
    if few_step and cfg.sample.t_eps == 0:
        raise ConfigError(f"sample.method={cfg.sample.method} stops at sample.t_eps > 0 (the "
                          "noise ratio is 0 at t = 0); set sample.t_eps=1e-3, or sample.method=ode")
    if (cfg.data.conditional or cfg.data.holdout >= 0) and cfg.data.name not in IMAGE_NAMES:
        raise ConfigError(f"data.conditional and data.holdout apply to labelled images "
                          f"({', '.join(IMAGE_NAMES)}), not data.name={cfg.data.name}")
    if cfg.data.conditional and kind == "cnf":
        raise ConfigError("data.conditional=true is not available for process.kind=cnf "
                          "(maximum likelihood trains without labels); for a class-conditional "
                          "flow set process.kind=flow_linear and objective.kind=fm or ot_cfm")
    if cfg.data.conditional and not OBJECTIVES[obj].labels:
        labelled = " or ".join(o for o, e in OBJECTIVES.items() if e.labels)
        raise ConfigError(f"data.conditional=true trains with labels: objective.kind must be "
                          f"{labelled}, got {obj}")
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

