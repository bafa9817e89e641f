"""Moved to `sdegen.objectives.sphere` (objectives by role); this module only re-exports it."""

from .objectives import SPHERE_OBJECTIVES, rdsm_loss, rfm_loss, rism_loss

__all__ = ["SPHERE_OBJECTIVES", "rdsm_loss", "rfm_loss", "rism_loss"]
