"""Moved to `sdegen.conditional.inpaint` (conditional generation by role); only re-exports it."""

from .conditional.inpaint import (  # noqa: F401
    METHODS,
    ReplacementHook,
    TweedieConditionalScore,
    half_mask,
    inpaint,
    random_mask,
    square_mask,
)
