"""Datasets: toy 2D (with an analytic Gaussian mixture), the sphere (`sdegen.data.sphere`) and the
embedded 8x8 digits (`sdegen.data.digits`)."""

from .digits import DIGITS_LEVELS, binarize, digits_splits, load_digits
from .reference import GridDensity, MixtureEnergy
from .toy2d import (
    IDEAL_NLL,
    TOY_DATASETS,
    GaussianMixture,
    MixtureScore,
    MixtureVelocity,
    checkerboard_log_prob,
    eight_gaussians,
)

__all__ = [
    "DIGITS_LEVELS",
    "binarize",
    "digits_splits",
    "load_digits",
    "GaussianMixture",
    "MixtureScore",
    "MixtureVelocity",
    "MixtureEnergy",
    "GridDensity",
    "TOY_DATASETS",
    "IDEAL_NLL",
    "eight_gaussians",
    "checkerboard_log_prob",
]
