"""Forward processes and the dynamics they induce."""

from .dynamics import Field, probability_flow, reverse_drift
from .sde import AbstractLinearSDE, AbstractSDE, SubVPSDE, VESDE, VPSDE

__all__ = [
    "AbstractSDE",
    "AbstractLinearSDE",
    "VPSDE",
    "SubVPSDE",
    "VESDE",
    "Field",
    "probability_flow",
    "reverse_drift",
]
