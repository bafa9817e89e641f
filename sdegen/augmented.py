"""The augmented ODE of the instantaneous change of variables — the one place sdegen integrates
a density along a flow. `sdegen.log_prob` (evaluation) and `sdegen.objectives.maxlik_loss`
(CNF training) both call `augmented_solve`; only the adjoint and tolerances differ.

d/dt [x, Δ, K, J] = [v(x,t), ∇·v(x,t), ‖v(x,t)‖², ‖∂v/∂x‖²_F] from t_eps to T gives
log p_{t_eps}(x) = log p_T(x_T) + Δ(T) (Chen et al. 2018, "Neural Ordinary Differential
Equations", Thm. 1; Grathwohl et al. 2019, FFJORD, eq. 4), and the RNODE regularisers
K = ∫‖v‖² dt (kinetic energy) and J = ∫‖∂v/∂x‖²_F dt (Jacobian Frobenius norm) of Finlay et
al. 2020, "How to Train Your Neural ODE" (ICML), Sec. 4, carried as extra state so they cost
no second solve (Hutchinson: ‖(∂v/∂x) ε‖² is unbiased for ‖∂v/∂x‖²_F, their eq. 9).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .processes import AbstractProcess
from .solvers import integrate


def divergence_exact(v: Callable, x: Float[Array, "*d"], t) -> Float[Array, ""]:
    """∇·v(x, t) as the trace of the full Jacobian (jacfwd): exact, O(d) field evaluations."""
    return _exact(v, x, t, frobenius=False)[0]


def divergence_hutchinson(v: Callable, x, t, probe: Array) -> Float[Array, ""]:
    """Unbiased Hutchinson estimate εᵀ (∂v/∂x) ε with a fixed Rademacher probe ε
    (Hutchinson 1989; Grathwohl et al. 2019, FFJORD, eq. 7): one Jacobian-vector product."""
    return _hutchinson(v, x, t, probe)[0]


def _exact(v, x, t, frobenius, manifold=None):
    """Exact divergence; on a manifold the Riemannian one, tr(P_x J P_x) (Mathieu & Nickel 2020,
    eq. 4), via `manifold.tangent_trace` (the plain trace in R^d)."""
    flat = x.reshape(-1)
    jac = jax.jacfwd(lambda y: v(y.reshape(x.shape), t).reshape(-1))(flat)
    div = jnp.trace(jac) if manifold is None else manifold.tangent_trace(flat, jac)
    return div, (jnp.sum(jac**2) if frobenius else None)


def _hutchinson(v, x, t, probe):
    _, jvp = jax.jvp(lambda y: v(y, t), (x,), (probe,))
    return jnp.sum(probe * jvp), jnp.sum(jvp**2)


def augmented_solve(
    process: AbstractProcess,
    field: Callable,
    x: Float[Array, "n *d"],
    probes: Float[Array, "n *d"] | None,
    *,
    solver: diffrax.AbstractSolver,
    controller: diffrax.AbstractStepSizeController,
    t_eps: float,
    max_steps: int,
    regularise: bool = False,
    adjoint: diffrax.AbstractAdjoint | None = None,
    progress: bool = False,
) -> tuple[Float[Array, " n"], dict[str, Float[Array, " n"]], Any]:
    """Integrate the augmented ODE of the batch `x` (one Diffrax solve, field vmapped) from
    t_eps to T. Traceable (no jit, no checks): call it inside `jax.grad` to train.

    - `probes`: `None` for the exact Jacobian trace, or one fixed probe per example (Hutchinson).
    - `regularise`: also carry the RNODE kinetic and Frobenius integrals (else they are zeros).
    - `adjoint`: Diffrax's default `RecursiveCheckpointAdjoint` differentiates the discretised
      solve exactly (discretise-then-optimise) with O(log) checkpoint memory; see
      `sdegen.objectives.maxlik_loss` for why training keeps it.

    Returns `(log_prob, {"kinetic", "frobenius"}, sol)`, the first two of shape (n,).
    """
    velocity = process.ode_velocity(field)
    manifold = process.manifold

    def augmented(x_i, probe_i, t):
        if probe_i is None:
            div, frob = _exact(velocity, x_i, t, frobenius=regularise, manifold=manifold)
        else:  # a tangent probe has second moment P_x, so E[εᵀJε] = tr(P_x J P_x)
            div, frob = _hutchinson(velocity, x_i, t, manifold.to_tangent(x_i, probe_i))
        v = velocity(x_i, t)
        if not regularise:
            return v, div
        return v, div, jnp.sum(v**2), frob

    batched = jax.vmap(augmented, in_axes=(0, 0 if probes is not None else None, None))
    zeros = jnp.zeros(x.shape[0], x.dtype)
    y0 = (x, zeros, zeros, zeros) if regularise else (x, zeros)
    sol = integrate(diffrax.ODETerm(lambda t, y, args: batched(y[0], probes, t)), solver,
                    t_eps, process.T, y0, dt0=None, controller=controller, max_steps=max_steps,
                    adjoint=adjoint, progress=progress)
    ys = [leaf[0] for leaf in sol.ys]
    lp = jax.vmap(process.prior_logp)(ys[0]) + ys[1]
    extra = {"kinetic": ys[2], "frobenius": ys[3]} if regularise else {
        "kinetic": zeros, "frobenius": zeros}
    return lp, extra, sol
