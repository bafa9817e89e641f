"""sdegen: continuous-time generative models in JAX — a process plus a learned field, solved by
Diffrax. See README.md and DESIGN for the map."""

from .errors import ConfigError, DataError, SdegenError, SolverError, TrainingError
from .likelihood import log_prob
from .manifolds import Euclidean, Sphere
from .processes import (
    VESDE,
    VPSDE,
    AbstractLinearSDE,
    AbstractProcess,
    AbstractSDE,
    SphereBrownian,
    SphereGeodesicPath,
    SubVPSDE,
    probability_flow,
    reverse_drift,
)
from .sample import sample
from .solve import SolveStats

__version__ = "0.1.0"

__all__ = [
    "AbstractProcess",
    "AbstractSDE",
    "AbstractLinearSDE",
    "VPSDE",
    "SubVPSDE",
    "VESDE",
    "SphereBrownian",
    "SphereGeodesicPath",
    "Euclidean",
    "Sphere",
    "probability_flow",
    "reverse_drift",
    "sample",
    "log_prob",
    "SolveStats",
    "SdegenError",
    "ConfigError",
    "DataError",
    "SolverError",
    "TrainingError",
]
