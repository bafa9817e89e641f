"""Forward processes and the dynamics they induce."""

from .base import AbstractProcess
from .dynamics import Field, denoiser, probability_flow, reverse_drift
from .paths import (
    CNF,
    AbstractProbabilityPath,
    AbstractVelocityProcess,
    LinearPath,
    VPPath,
)
from .sde import VESDE, VPSDE, AbstractLinearSDE, AbstractSDE, SubVPSDE

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
    "Field",
    "probability_flow",
    "denoiser",
    "reverse_drift",
]
