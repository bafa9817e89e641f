"""Moved to `sdegen.energy.annealed` (energy models by role); this module only re-exports it."""

from .energy.annealed import AnnealedInfo, annealed_mcmc  # noqa: F401
