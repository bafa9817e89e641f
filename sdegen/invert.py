"""Every ODE model is invertible: encode data to prior latents and decode them back, edit
latents along attribute directions, and score anomalies by negative log-likelihood.

Works for any `AbstractProcess` — a CNF, a flow-matching path, or a diffusion SDE through its
probability-flow ODE (Song et al. 2021, Sec. 4.3: "uniquely identifiable encoding"). Encoding
and decoding are the same compiled solve as `sdegen.sample(method="ode")` (`sample.transport`).
"""

from __future__ import annotations

from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .likelihood import log_prob
from .processes import AbstractProcess
from .sample import transport
from .typing import Field


def encode(
    process: AbstractProcess,
    field: Field,
    x: Float[Array, "n *d"],
    *,
    t_eps: float = 1e-3,
    solver: str = "tsit5",
    rtol: float = 1e-7,
    atol: float = 1e-7,
    max_steps: int = 16_384,
) -> Float[Array, "n *d"]:
    """Latents z = x_T of data `x` (read as the state at t = t_eps), by integrating the
    generative ODE dx/dt = v(x, t) forward from t_eps to T (Chen et al. 2018; Song et al. 2021,
    eq. 13 for an SDE). Tight default tolerances so that `decode(encode(x)) ≈ x`."""
    return transport(process, field, x, to_data=False, t_eps=t_eps, solver=solver, rtol=rtol,
                     atol=atol, max_steps=max_steps)


def decode(
    process: AbstractProcess,
    field: Field,
    z: Float[Array, "n *d"],
    *,
    t_eps: float = 1e-3,
    solver: str = "tsit5",
    rtol: float = 1e-7,
    atol: float = 1e-7,
    max_steps: int = 16_384,
) -> Float[Array, "n *d"]:
    """Data x at t = t_eps from latents `z` at t = T: the inverse of `encode` (the same ODE
    integrated backwards, as `sdegen.sample(method="ode", x_T=z)`)."""
    return transport(process, field, z, to_data=True, t_eps=t_eps, solver=solver, rtol=rtol,
                     atol=atol, max_steps=max_steps)


def attribute_direction(
    z_a: Float[Array, "n *d"], z_b: Float[Array, "m *d"]
) -> Float[Array, "*d"]:
    """Latent direction from group A to group B, v = mean(z_b) - mean(z_a) — the attribute
    vector of GLOW (Kingma & Dhariwal 2018, Sec. 5.3): encode examples with and without an
    attribute, subtract the latent means."""
    return z_b.mean(axis=0) - z_a.mean(axis=0)


def edit(
    z: Float[Array, "*batch"], v: Float[Array, "*d"], a: Float[ArrayLike, ""]
) -> Float[Array, "*batch"]:
    """Latent arithmetic z' = z + a·v (Kingma & Dhariwal 2018, Sec. 5.3); decode z' to see the
    edit. `v` broadcasts over a batch of latents."""
    return z + a * v


def anomaly_score(
    process: AbstractProcess,
    field: Field,
    x: Float[Array, "n *d"],
    *,
    key: PRNGKeyArray | None = None,
    **kwargs,
) -> Float[Array, " n"]:
    """Anomaly score −log p(x) in nats (higher = more anomalous): the model's exact negative
    log-likelihood through `sdegen.log_prob` (keyword arguments pass on to it)."""
    return -log_prob(process, field, x, key=key, **kwargs)
