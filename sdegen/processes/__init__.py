"""Forward processes and the dynamics they induce."""

from .base import AbstractDiffusion, AbstractProcess
from .dynamics import Field, probability_flow, reverse_drift
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
    "SphereBrownian",
    "SphereScore",
    "SphereGeodesicPath",
    "Field",
    "probability_flow",
    "reverse_drift",
]
