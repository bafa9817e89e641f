"""Moved to `sdegen.conditional.inpaint` (conditional generation by role); only re-exports it."""

import warnings

from .conditional.inpaint import (  # noqa: F401
    METHODS,
    ReplacementHook,
    TweedieConditionalScore,
    half_mask,
    inpaint,
    random_mask,
    square_mask,
)

warnings.warn("`sdegen.inpaint` is deprecated: import from `sdegen.conditional` instead",
              DeprecationWarning, stacklevel=2)
