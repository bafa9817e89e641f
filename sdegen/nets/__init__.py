"""Equinox networks. They know no process: `sdegen.fields` gives their outputs a meaning."""

from .mlp import Flattened, FourierTime, TimeMLP
from .tangent import TangentMLP

__all__ = ["FourierTime", "TimeMLP", "Flattened", "TangentMLP"]
