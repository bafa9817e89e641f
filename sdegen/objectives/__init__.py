"""Training objectives, by role: `score` (DSM, sliced SM and their time weightings), `flow` (flow
matching, OT-CFM, CNF maximum likelihood) and `sphere` (their Riemannian versions on S^2).

Per-example objectives take ONE data example and a key, draw their own t ~ U[t_eps, T], and
return a scalar; `batch_loss` vmaps and averages them. Batch-level ones (OT-CFM, whose coupling
pairs a whole minibatch, and CNF maximum likelihood, one augmented ODE solve per batch) take the
batch. `TABLE` is the one list of objective names; `OBJECTIVES`, `BATCH_OBJECTIVES` and
`SPHERE_OBJECTIVES` are read from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..processes import (
    CNF,
    AbstractLinearSDE,
    AbstractProbabilityPath,
    SphereBrownian,
    SphereGeodesicPath,
)
from .base import batch_loss as batch_loss
from .base import uniform_time as uniform_time
from .flow import fm_loss as fm_loss
from .flow import maxlik_loss as maxlik_loss
from .flow import ot_cfm_loss as ot_cfm_loss
from .flow import ot_coupling as ot_coupling
from .score import WEIGHTINGS as WEIGHTINGS
from .score import dsm_loss as dsm_loss
from .score import log_snr_inverse as log_snr_inverse
from .score import ssm_loss as ssm_loss
from .sphere import rdsm_loss as rdsm_loss
from .sphere import rfm_loss as rfm_loss
from .sphere import rism_loss as rism_loss


class Objective(NamedTuple):
    """One row of `TABLE`: the loss, whether it takes one example (`batch_loss` batches it) or
    the whole batch, and the process classes it trains."""

    loss: Callable
    per_example: bool
    processes: tuple[type, ...]


TABLE: dict[str, Objective] = {
    "dsm": Objective(dsm_loss, True, (AbstractLinearSDE,)),
    "ssm": Objective(ssm_loss, True, (AbstractLinearSDE,)),
    "fm": Objective(fm_loss, True, (AbstractProbabilityPath,)),
    "ot_cfm": Objective(ot_cfm_loss, False, (AbstractProbabilityPath,)),
    "maxlik": Objective(maxlik_loss, False, (CNF,)),
    "rdsm": Objective(rdsm_loss, True, (SphereBrownian,)),
    "rism": Objective(rism_loss, True, (SphereBrownian,)),
    "rfm": Objective(rfm_loss, True, (SphereGeodesicPath,)),
}
"""name -> `Objective`: the one list of the objectives a config names."""



def _on_sphere(o: Objective) -> bool:
    return any(issubclass(p, (SphereBrownian, SphereGeodesicPath)) for p in o.processes)


OBJECTIVES = {k: o.loss for k, o in TABLE.items() if o.per_example and not _on_sphere(o)}
"""Per-example objectives on R^d, averaged over a batch by `batch_loss`."""

BATCH_OBJECTIVES = {k: o.loss for k, o in TABLE.items() if not o.per_example}
"""Objectives that need the whole batch: `loss(process, field, x0_batch, key, **kwargs)`."""

SPHERE_OBJECTIVES = {k: o.loss for k, o in TABLE.items() if _on_sphere(o)}
"""Per-example objectives on S^2, averaged over a batch by `batch_loss`."""
