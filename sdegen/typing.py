"""The type aliases of sdegen, each defined once. They are plain runtime types (jaxtyping arrays
and `Callable`s), so the jaxtyping + beartype checks of the test suite accept them.

- `Scalar`: a float scalar, an array of shape () or a Python float (a time t, a weight).
- `Field`: a callable on ONE example, `field(x, t) -> array shaped like x` (a score
  ∇ log p_t(x), a velocity, a noise predictor; an `eqx.Module` or a plain function).
- `Energy`: a callable on ONE example, `energy(x, t) -> scalar` E(x, t), with score −∇ₓE.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxtyping import Array, ArrayLike, Float

Scalar = Float[ArrayLike, ""]
Field = Callable[[Float[Array, "*d"], Scalar], Float[Array, "*d"]]
Energy = Callable[[Float[Array, "*d"], Scalar], Float[Array, ""]]
