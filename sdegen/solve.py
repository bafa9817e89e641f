"""Deprecated: moved to `sdegen.solvers.integrate` (the one `diffrax.diffeqsolve` call site)."""

import warnings

from .solvers.integrate import (  # noqa: F401
    ADAPTIVE_SOLVERS,
    SolveStats,
    adaptive,
    batch_max_norm,
    check,
    evals_per_step,
    integrate,
    stats_of,
    validate,
)

warnings.warn("`sdegen.solve` is deprecated: import from `sdegen.solvers` instead",
              DeprecationWarning, stacklevel=2)
