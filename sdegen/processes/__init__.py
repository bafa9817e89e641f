"""Forward processes and the dynamics they induce."""

from .base import AbstractProcess
from .dynamics import Field, denoiser, probability_flow, reverse_drift
from .sde import VESDE, VPSDE, AbstractLinearSDE, AbstractSDE, SubVPSDE

__all__ = [
    "AbstractProcess",
    "AbstractSDE",
    "AbstractLinearSDE",
    "VPSDE",
    "SubVPSDE",
    "VESDE",
    "Field",
    "probability_flow",
    "denoiser",
    "reverse_drift",
]
