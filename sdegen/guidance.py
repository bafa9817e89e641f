"""Moved to `sdegen.conditional.guidance` (conditional generation by role); only re-exports it."""

from .conditional.guidance import (  # noqa: F401
    ClassifierFreeGuidance,
    ClassifierGuidance,
    ConditionalField,
    batch_conditional_loss,
    classifier_loss,
    conditional_dsm_loss,
    label_dropout,
)
