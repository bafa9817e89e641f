"""Moved to `sdegen.energy.annealed` (energy models by role); this module only re-exports it."""

import warnings

from .energy.annealed import AnnealedInfo, annealed_mcmc  # noqa: F401

warnings.warn("`sdegen.annealed` is deprecated: import from `sdegen.energy.annealed` instead",
              DeprecationWarning, stacklevel=2)
