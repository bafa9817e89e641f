"""Moved to `sdegen.objectives.sphere` (objectives by role); this module only re-exports it."""

import warnings

from .objectives import SPHERE_OBJECTIVES, rdsm_loss, rfm_loss, rism_loss

__all__ = ["SPHERE_OBJECTIVES", "rdsm_loss", "rfm_loss", "rism_loss"]

warnings.warn("`sdegen.objectives_sphere` is deprecated: import from `sdegen.objectives` instead",
              DeprecationWarning, stacklevel=2)
