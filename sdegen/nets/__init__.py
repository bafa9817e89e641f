"""Equinox networks. They know no process: `sdegen.fields` gives their outputs a meaning."""

from .classifier import ClassTimeMLP, TimeClassifier
from .mlp import FourierTime, TimeMLP
from .tangent import TangentMLP

__all__ = ["FourierTime", "TimeMLP", "TangentMLP", "ClassTimeMLP", "TimeClassifier"]
