"""sdegen: continuous-time generative models in JAX — a process plus a learned field, solved by
Diffrax. See README.md and docs/ for the map."""

from . import energy
from ._version import __version__ as __version__
from .energy import EnergyField
from .energy import mcmc as mcmc
from .energy.annealed import AnnealedInfo, annealed_mcmc
from .errors import ConfigError, DataError, SdegenError, SolverError, TrainingError
from .fit import BatchLoss, FitResult, fit
from .invert import anomaly_score, attribute_direction, decode, edit, encode
from .likelihood import log_prob
from .manifolds import Euclidean, Sphere
from .processes import (
    CNF,
    VESDE,
    VPSDE,
    AbstractLinearSDE,
    AbstractProbabilityPath,
    AbstractProcess,
    AbstractSDE,
    AbstractVelocityProcess,
    LinearPath,
    SphereBrownian,
    SphereGeodesicPath,
    SubVPSDE,
    VPPath,
    probability_flow,
    reverse_drift,
)
from .sample import sample
from .solvers import SolveStats

__all__ = [
    "AbstractProcess",
    "AbstractSDE",
    "AbstractLinearSDE",
    "VPSDE",
    "SubVPSDE",
    "VESDE",
    "AbstractVelocityProcess",
    "AbstractProbabilityPath",
    "CNF",
    "LinearPath",
    "VPPath",
    "SphereBrownian",
    "SphereGeodesicPath",
    "Euclidean",
    "Sphere",
    "probability_flow",
    "reverse_drift",
    "fit",
    "FitResult",
    "BatchLoss",
    "sample",
    "log_prob",
    "EnergyField",
    "annealed_mcmc",
    "AnnealedInfo",
    "energy",
    "mcmc",
    "encode",
    "decode",
    "attribute_direction",
    "edit",
    "anomaly_score",
    "SolveStats",
    "SdegenError",
    "ConfigError",
    "DataError",
    "SolverError",
    "TrainingError",
]
