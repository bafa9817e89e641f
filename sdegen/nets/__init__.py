"""Equinox networks. They know no process: `sdegen.fields` gives their outputs a meaning."""

from .mlp import FourierTime, TimeMLP

__all__ = ["FourierTime", "TimeMLP"]
