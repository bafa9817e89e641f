"""Forward processes and the dynamics they induce."""

from .dynamics import Field, probability_flow, reverse_drift
from .sde import VESDE, VPSDE, AbstractLinearSDE, AbstractSDE, SubVPSDE

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
