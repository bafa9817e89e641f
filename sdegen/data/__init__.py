"""Datasets: toy 2D (with an analytic Gaussian mixture)."""

from .reference import GridDensity, MixtureEnergy
from .toy2d import (
    IDEAL_NLL,
    TOY_DATASETS,
    GaussianMixture,
    MixtureScore,
    checkerboard_log_prob,
    eight_gaussians,
)

__all__ = [
    "GaussianMixture",
    "MixtureScore",
    "MixtureEnergy",
    "GridDensity",
    "TOY_DATASETS",
    "IDEAL_NLL",
    "eight_gaussians",
    "checkerboard_log_prob",
]
