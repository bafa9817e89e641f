"""The field a run draws for a class label under classifier-free guidance: one function for
every class-conditional run, diffusion (a score) or flow (a velocity) alike, so `sdegen sample
RUN --label Y --guidance W` and `runs.core.draw` need no case for either."""

from __future__ import annotations

import math

from ..conditional import ClassifierFreeGuidance
from ..errors import ConfigError


def guided_field(run, label: int | None = None, guidance: float | None = None):
    """`run.field` (a `runs.core.Run`'s) for label `label` under classifier-free guidance of
    scale `guidance`: `ClassifierFreeGuidance(field, label, guidance, null=K)`, i.e.
    (1 + w) f(x, t, y) − w f(x, t, ∅) (Ho & Salimans 2022, eq. 6; for a flow's velocity the same
    formula is the guided flow of Zheng et al. 2023 with ω = 1 + w, see
    `sdegen.conditional.flow`). `guidance` None or 0 gives the conditional field f(x, t, y).
    Without a label it is the run's own field (a conditional run's null class, the
    unconditional model). Bad combinations are one-line errors."""
    if guidance is not None and not (math.isfinite(guidance) and guidance >= 0):
        raise ConfigError(f"the guidance weight (--guidance) must be a finite number >= 0, got "
                          f"{guidance!r}; 0 is the conditional field, larger values sharpen "
                          "towards the class")
    if label is None:
        if guidance:
            raise ConfigError("a guidance weight needs a class label: add --label Y to "
                              "--guidance W (library: label=Y with guidance=W)")
        return run.field
    cfg = run.cfg
    if not cfg.data.conditional or cfg.objective.kind == "classifier":
        what = ("a noise-conditioned classifier, not a generative field"
                if cfg.objective.kind == "classifier" else "not class-conditional")
        raise ConfigError(f"--label needs a class-conditional run (trained with "
                          f"data.conditional=true); '{run.dir}' ({cfg.name}) is {what}: "
                          "drop --label/--guidance")
    k = run.data.num_classes
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < k:
        raise ConfigError(f"--label must be a class in 0..{k - 1} for this run ({cfg.data.name}, "
                          f"{k} classes), got {label!r}: out of range")
    return ClassifierFreeGuidance(run.field, label, 0.0 if guidance is None else guidance,
                                  null=k)
