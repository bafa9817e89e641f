"""Moved to `sdegen.conditional.guidance` (conditional generation by role); only re-exports it."""

import warnings

from .conditional.guidance import (  # noqa: F401
    ClassifierFreeGuidance,
    ClassifierGuidance,
    ConditionalField,
    batch_conditional_loss,
    classifier_loss,
    conditional_dsm_loss,
    label_dropout,
)

warnings.warn("`sdegen.guidance` is deprecated: import from `sdegen.conditional` instead",
              DeprecationWarning, stacklevel=2)
