"""Forward processes and the dynamics they induce."""

from ..typing import Field
from .base import AbstractDiffusion, AbstractProcess
from .dynamics import denoiser, probability_flow, reverse_drift
from .paths import (
    CNF,
    AbstractProbabilityPath,
    AbstractVelocityProcess,
    LinearPath,
    VPPath,
)
from .sde import VESDE, VPSDE, AbstractLinearSDE, AbstractSDE, SubVPSDE
from .sphere import SphereBrownian, SphereScore
from .sphere_paths import SphereGeodesicPath

__all__ = [
    "AbstractProcess",
    "AbstractDiffusion",
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
    "SphereScore",
    "SphereGeodesicPath",
    "Field",
    "probability_flow",
    "denoiser",
    "reverse_drift",
]
