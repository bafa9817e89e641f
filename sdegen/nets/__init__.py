"""Equinox networks. They know no process: `sdegen.fields` gives their outputs a meaning."""

from .classifier import ClassTimeMLP, TimeClassifier
from .mlp import Flattened, FourierTime, TimeMLP
from .tangent import TangentMLP
from .unet import UNet

__all__ = ["FourierTime", "TimeMLP", "Flattened", "TangentMLP", "UNet", "ClassTimeMLP",
           "TimeClassifier"]
