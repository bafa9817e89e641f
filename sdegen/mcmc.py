"""Moved to `sdegen.energy.mcmc` (energy models by role); this module only re-exports it."""

import warnings

from .energy.mcmc import (  # noqa: F401
    HMC,
    MALA,
    AbstractKernel,
    MetropolisCorrected,
    Potential,
    hmc_step,
    mala_step,
    run_chain,
    snr_step_size,
)

warnings.warn("`sdegen.mcmc` is deprecated: import from `sdegen.energy.mcmc` instead",
              DeprecationWarning, stacklevel=2)
