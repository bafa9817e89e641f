"""The field a run draws for a class label under classifier-free guidance: one function for
every class-conditional run, diffusion (a score) or flow (a velocity) alike, so `sdegen sample
RUN --label Y --guidance W` and `runs.core.draw` need no case for either."""

from __future__ import annotations

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
    if label is None:
        if guidance:
            raise ConfigError("a guidance weight needs a class label: pass a label (e.g. "
                              "--label 3) with --guidance")
        return run.field
    if isinstance(label, bool) or not isinstance(label, int):
        raise ConfigError(f"the class label must be an integer, got {label!r}")
    if not run.cfg.data.conditional:
        raise ConfigError(f"run '{run.dir}' is not class-conditional (it was trained with "
                          "data.conditional=false): drop the label, or train with "
                          "data.conditional=true")
    k = run.data.num_classes
    if not 0 <= label < k:
        raise ConfigError(f"class label {label} is out of range for run '{run.dir}': use 0.."
                          f"{k - 1}")
    return ClassifierFreeGuidance(run.field, label, 0.0 if guidance is None else guidance,
                                  null=k)
