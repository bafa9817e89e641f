"""Turn a network's output into a score field for a given linear SDE."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
from jaxtyping import Array, ArrayLike, Float, Int

from .processes import AbstractLinearSDE

PARAMETERISATIONS = ("score", "noise")


class ScoreField(eqx.Module):
    """Score ∇ₓ log p_t(x) from a network `net(x, t)`.

    - `"score"`: the network is the score.

    A class-conditional network `net(x, t, y)` gives the conditional score ∇ₓ log p_t(x | y)
    when called with a label `y` (`y=None` calls `net(x, t)`: the unconditional field).
    - `"noise"`: the network predicts the noise ε of x_t = α(t) x0 + σ(t) ε, and the score is
      -net(x, t) / σ(t) (Ho et al. 2020, eq. 11; Song et al. 2021, App. C): its output stays
      O(1) as t → 0 while the score grows like 1/σ(t).
    """

    net: Callable[[Float[Array, "*d"], Float[ArrayLike, ""]], Float[Array, "*d"]]
    sde: AbstractLinearSDE
    parameterisation: str = eqx.field(static=True, default="noise")

    def __check_init__(self):
        if self.parameterisation not in PARAMETERISATIONS:
            raise ValueError(
                f"unknown parameterisation {self.parameterisation!r}; "
                f"choose one of {PARAMETERISATIONS}"
            )

    def __call__(self, x: Float[Array, "*d"], t: Float[ArrayLike, ""],
                 y: Int[ArrayLike, ""] | None = None) -> Float[Array, "*d"]:
        out = self.net(x, t) if y is None else self.net(x, t, y)
        if self.parameterisation == "noise":
            return -out / self.sde.std(t)
        return out
