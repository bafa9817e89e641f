"""Flow objectives: conditional flow matching (FM), its minibatch optimal-transport coupling
(OT-CFM) and CNF maximum likelihood. `fm_loss` takes ONE example; `ot_cfm_loss` and
`maxlik_loss` take the whole batch (the coupling pairs a minibatch; maximum likelihood is one
augmented ODE solve per batch)."""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..augmented import augmented_solve
from ..processes import AbstractProbabilityPath, AbstractProcess
from ..solvers import adaptive
from .base import uniform_time


def fm_loss(
    path: AbstractProbabilityPath,
    velocity: Callable,
    x0: Float[Array, "*d"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 0.0,
    noise: Float[Array, "*d"] | None = None,
) -> Float[Array, ""]:
    """Conditional flow matching (Lipman et al. 2023, eq. 9; Tong et al. 2024, eq. 9):
    ‖v(x_t, t) - u_t(x_t | x0)‖² with t ~ U[t_eps, T], x_t = a(t) x0 + b(t) ε. `noise` fixes ε
    (an OT coupling pairs it with x0); otherwise ε ~ N(0, I) is drawn from `key`. Its gradient
    equals that of the marginal flow-matching loss (Lipman et al. 2023, Thm. 2)."""
    k_t, k_e = jax.random.split(key)
    t = uniform_time(k_t, t_eps, path.T, x0.dtype)
    eps = jax.random.normal(k_e, x0.shape, x0.dtype) if noise is None else noise
    xt, ut = path.conditional(x0, eps, t)
    return jnp.sum((velocity(xt, t) - ut) ** 2)


def _assignment(cost):
    rows, cols = scipy.optimize.linear_sum_assignment(np.asarray(cost))
    perm = np.empty_like(cols)
    perm[rows] = cols
    return perm.astype(np.int32)


def _scipy_perm(cost: Float[Array, "n n"]) -> Int[Array, " n"]:
    n = cost.shape[0]
    return jax.pure_callback(_assignment, jax.ShapeDtypeStruct((n,), jnp.int32), cost)


def _optax_perm(cost: Float[Array, "n n"]) -> Int[Array, " n"]:
    rows, cols = optax.assignment.hungarian_algorithm(cost)
    return jnp.zeros(cost.shape[0], jnp.int32).at[rows].set(cols.astype(jnp.int32))


ASSIGNMENTS = {"scipy": _scipy_perm, "optax": _optax_perm}
"""Exact assignment solvers by name: scipy's `linear_sum_assignment` on the host (through
`jax.pure_callback`, a device-to-host round trip per call) or optax's Hungarian algorithm in
JAX (on the device). Measured at the OT-CFM configs' batch (n = 512, 2-D, 2 CPU cores, jax
0.10.2): scipy 82 ms, optax 235 ms per coupling, same total cost (`benchmarks/ot_coupling.py`);
so "auto" keeps scipy on CPU, where there is no round trip to save, and uses optax on an
accelerator, where the callback would stall the device every step."""


def ot_coupling(
    x0: Float[Array, "n *d"], eps: Float[Array, "n *d"], *, assignment: str = "auto"
) -> Float[Array, "n *d"]:
    """Reorder the noise so (x0[i], ε[π(i)]) is the exact optimal-transport matching of the two
    minibatches under squared Euclidean cost (Tong et al. 2024, "Improving and generalizing
    flow-based generative models with minibatch optimal transport", Sec. 3.2 / Alg. 2; Pooladian
    et al. 2023). Exact assignment, O(n³) (`ASSIGNMENTS`: "scipy" on the host, "optax" on the
    device; "auto" picks scipy on a CPU backend, optax elsewhere) — cheaper than a converged
    Sinkhorn at these sizes, and with no entropic blur. No gradient flows through π."""
    return eps[ASSIGNMENTS[_assignment_name(assignment)](_sq_cost(x0, eps))]


def _assignment_name(assignment: str) -> str:
    if assignment == "auto":
        return "scipy" if jax.default_backend() == "cpu" else "optax"
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}; choose 'auto' or one of "
                         f"{sorted(ASSIGNMENTS)}")
    return assignment


def _sq_cost(x0, eps):
    n = x0.shape[0]
    diff = x0.reshape(n, 1, -1) - eps.reshape(1, n, -1)
    return jax.lax.stop_gradient(jnp.sum(diff**2, axis=-1))


def class_ot_coupling(
    x0: Float[Array, "n *d"], eps: Float[Array, "n *d"], labels: Int[Array, " n"], *,
    assignment: str = "auto",
) -> Float[Array, "n *d"]:
    """Class-conditional minibatch OT: reorder the noise so that (x0[i], ε[π(i)]) is the exact
    squared-Euclidean OT matching *within each class* — π never pairs examples of different
    labels. Noise draw j is given the label of example j, so class y is coupled to exactly n_y
    fresh i.i.d. N(0, I) draws, and the noise paired with class y stays N(0, I): the coupling
    q(x0, ε | y) has the source as its noise marginal, as a conditional flow v(x, t, y) sampled
    from N(0, I) needs (the condition-preserving, "triangular" coupling of Chemseddine et al.
    2024, "Conditional Wasserstein distances with applications in Bayesian OT flow matching",
    Sec. 4, and Kerrigan et al. 2024, "Dynamic conditional optimal transport through
    simulation-free flows", Sec. 3; per class it is Tong et al. 2024's OT-CFM coupling, Alg. 2).
    A batch-wide OT plan with the labels merely carried along would instead pair class y with
    the part of the noise cloud nearest to it, so v(·, ·, y) would learn to transport only that
    part, and sampling it from all of N(0, I) would be biased.

    Implemented as one exact assignment on the batch with cross-class pairs priced above any
    within-class matching (n · max cost + 1), which a within-class perfect matching always
    beats; `assignment` as in `ot_coupling`."""
    cost = _sq_cost(x0, eps)
    labels = jnp.asarray(labels)
    cross = labels[:, None] != labels[None, :]
    big = jax.lax.stop_gradient(jnp.max(cost) + 1.0) * cost.shape[0]
    return eps[ASSIGNMENTS[_assignment_name(assignment)](jnp.where(cross, big, cost))]


def ot_cfm_loss(
    path: AbstractProbabilityPath,
    velocity: Callable,
    x0: Float[Array, "n *d"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 0.0,
) -> Float[Array, ""]:
    """OT-CFM (Tong et al. 2024, Alg. 2): draw a noise minibatch, pair it with the data by
    `ot_coupling`, and average the conditional flow-matching loss over the pairs."""
    k_eps, k_loss = jax.random.split(key)
    eps = ot_coupling(x0, jax.random.normal(k_eps, x0.shape, x0.dtype))
    keys = jax.random.split(k_loss, x0.shape[0])
    per = jax.vmap(lambda x, e, k: fm_loss(path, velocity, x, k, t_eps=t_eps, noise=e))
    return jnp.mean(per(x0, eps, keys))


def maxlik_loss(
    process: AbstractProcess,
    velocity: Callable,
    x0: Float[Array, "n *d"],
    key: PRNGKeyArray,
    *,
    t_eps: float = 0.0,
    trace: str = "hutchinson",
    kinetic: float = 0.0,
    frobenius: float = 0.0,
    rtol: float = 1e-3,
    atol: float = 1e-3,
    solver: str = "tsit5",
    max_steps: int = 2048,
) -> Float[Array, ""]:
    """CNF maximum likelihood (Chen et al. 2018; Grathwohl et al. 2019, FFJORD, eq. 4 with the
    Hutchinson trace of eq. 7, one Rademacher probe per example fixed across the solve), plus
    the RNODE penalties λ_K ∫‖v‖² dt + λ_J ∫‖∂v/∂x‖²_F dt (Finlay et al. 2020, Sec. 4): the
    batch mean of -log p(x0) + `kinetic`·K + `frobenius`·J. The ODE is `sdegen.augmented`'s, the
    same as `sdegen.log_prob`'s (which evaluates with the exact trace).

    **Adjoint.** Gradients use Diffrax's `RecursiveCheckpointAdjoint`: backpropagation through
    the solver's own steps (discretise-then-optimise), so the gradient is the exact gradient of
    the loss that was computed, whatever the tolerance — the loose training tolerance
    (rtol = atol = 1e-3) then costs accuracy of the loss, not consistency of its gradient.
    `BacksolveAdjoint` (optimise-then-discretise, Chen et al. 2018) saves memory but re-solves
    the ODE backwards, so its gradient is inexact at loose tolerances, and it doubles the NFE;
    for 2-D toy batches memory is not the constraint. A failed solve (step limit) makes the loss
    NaN, which the training loop's guard reports."""
    probes = None
    if trace == "hutchinson":
        probes = jax.random.rademacher(key, x0.shape, dtype=x0.dtype)
    elif trace != "exact":
        raise ValueError(f"unknown trace estimator {trace!r}; choose 'exact' or 'hutchinson'")
    solver_obj, controller = adaptive(solver, rtol, atol)
    regularise = kinetic > 0 or frobenius > 0
    lp, reg, sol = augmented_solve(process, velocity, x0, probes, solver=solver_obj,
                                   controller=controller, t_eps=t_eps, max_steps=max_steps,
                                   regularise=regularise,
                                   adjoint=diffrax.RecursiveCheckpointAdjoint())
    loss = -jnp.mean(lp)
    if regularise:
        loss = loss + kinetic * jnp.mean(reg["kinetic"]) + frobenius * jnp.mean(reg["frobenius"])
    ok = sol.result == diffrax.RESULTS.successful
    return jnp.where(ok, loss, jnp.nan)
