"""Training objectives, by role: `score` (DSM, sliced SM and their time weightings), `flow` (flow
matching, OT-CFM, CNF maximum likelihood) and `sphere` (their Riemannian versions on S^2).

Per-example objectives take ONE data example and a key, draw their own t ~ U[t_eps, T], and
return a scalar; `batch_loss` vmaps and averages them. Batch-level ones (OT-CFM, whose coupling
pairs a whole minibatch, and CNF maximum likelihood, one augmented ODE solve per batch) take the
batch. The names configs give them are in `sdegen.config.OBJECTIVES`.
"""

from __future__ import annotations

from .base import batch_loss as batch_loss
from .base import uniform_time as uniform_time
from .flow import class_ot_coupling as class_ot_coupling
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

OBJECTIVES = {"dsm": dsm_loss, "ssm": ssm_loss, "fm": fm_loss}
"""Per-example objectives on R^d, averaged over a batch by `batch_loss`. Kept for existing
imports: the one table of the objectives a config names is `sdegen.config.OBJECTIVES`."""
BATCH_OBJECTIVES = {"ot_cfm": ot_cfm_loss, "maxlik": maxlik_loss}
"""Objectives that need the whole batch: `loss(process, field, x0_batch, key, **kwargs)`."""
SPHERE_OBJECTIVES = {"rdsm": rdsm_loss, "rism": rism_loss, "rfm": rfm_loss}
"""Per-example objectives on S^2, averaged over a batch by `batch_loss`."""
