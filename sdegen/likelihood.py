"""`sdegen.log_prob`: exact log-likelihood of the probability-flow ODE model.

Instantaneous change of variables (Chen et al. 2018, Thm. 1; Song et al. 2021, App. D.2):
integrate the augmented ODE d/dt [x, Δ] = [v(x,t), ∇·v(x,t)] from t_eps to T, then
log p_{t_eps}(x) = log p_T(x_T) + ∫ ∇·v dt. The ODE itself lives in `sdegen.augmented`, shared
with CNF maximum-likelihood training; this module adds argument checks, jit and error reports.

On a manifold (`process.manifold`, e.g. S^2 ⊂ R^3) the same formula holds with the Riemannian
divergence of the tangent velocity (Mathieu & Nickel 2020, "Riemannian Continuous Normalizing
Flows", eq. 4; RSGM, Sec. 3.2): the exact trace tr(P_x J P_x) of the ambient Jacobian J, or
Hutchinson with the probe projected onto the tangent space, ε_x = P_x ε, whose second moment
is P_x, so E[ε_xᵀ J ε_x] = tr(P_x J P_x).
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .augmented import augmented_solve, divergence_exact, divergence_hutchinson
from .processes import AbstractProcess
from .solvers import SolveStats, adaptive, check, evals_per_step, stats_of, validate

__all__ = ["log_prob", "divergence_exact", "divergence_hutchinson", "EXACT_TRACE_MAX_DIM"]

EXACT_TRACE_MAX_DIM = 16


@eqx.filter_jit
def _solve(process, field, x, probes, solver, *, rtol, atol, t_eps, max_steps, progress):
    solver, controller = adaptive(solver, rtol, atol)
    lp, _, sol = augmented_solve(process, field, x, probes, solver=solver, controller=controller,
                                 t_eps=t_eps, max_steps=max_steps, progress=progress)
    return lp, sol, solver


def log_prob(
    process: AbstractProcess,
    field: Callable[[Float[Array, "*d"], Float[ArrayLike, ""]], Float[Array, "*d"]],
    x: Float[Array, "n *d"],
    *,
    trace: str = "auto",
    key: PRNGKeyArray | None = None,
    solver: str | diffrax.AbstractSolver = "tsit5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    t_eps: float = 1e-5,
    max_steps: int = 16_384,
    progress: bool = False,
    return_stats: bool = False,
) -> Float[Array, " n"] | tuple[Float[Array, " n"], SolveStats]:
    """Natural-log density (nats) of each of the `n` examples under the PF-ODE model, i.e. the
    model's density of p_{t_eps}.

    - `trace`: `"exact"` (Jacobian trace, default when an example has ≤ 16 entries),
      `"hutchinson"` (Rademacher probe drawn once from `key` and fixed across the solve), or
      `"auto"`.
    - `solver`: `"tsit5"`, `"dopri5"`, `"dopri8"` or any adaptive Diffrax solver instance
      (`diffrax.AbstractAdaptiveSolver`: one with an error estimate, e.g. `diffrax.Heun()`,
      `diffrax.Bosh3()`, `diffrax.HalfSolver(diffrax.Euler())`); NFE with `return_stats` is
      counted as in `sdegen.sample` (`sdegen.solvers.evals_per_step`).
    - The error is controlled per sample (max-norm over the batch), so each returned value is
      accurate to about `atol`, not only the batch mean.
    - `t_eps`: where the density is taken; 0 is allowed for processes whose velocity is
      regular at t = 0 (flows, CNFs: `process.regular_at_zero`).
    """
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must be batched, (n, *d), got shape {x.shape}; use x[None] for one")
    if trace == "auto":
        trace = "exact" if x[0].size <= EXACT_TRACE_MAX_DIM else "hutchinson"
    if trace not in ("exact", "hutchinson"):
        raise ValueError(f"unknown trace estimator {trace!r}; choose 'exact' or 'hutchinson'")
    validate(solver, t_eps, float(process.T), allow_zero=process.regular_at_zero)
    solver, _ = adaptive(solver, rtol, atol)  # a one-line error without an error estimate
    if return_stats:
        evals_per_step(solver)  # unknown NFE: a one-line error before the solve
    probes = None
    if trace == "hutchinson":
        if key is None:
            raise ValueError("trace='hutchinson' needs a PRNG key: pass key=jax.random.key(0)")
        probes = jax.random.rademacher(key, x.shape, dtype=x.dtype)
    lp, sol, solver_obj = _solve(process, field, x, probes, solver, rtol=rtol, atol=atol,
                                 t_eps=t_eps, max_steps=max_steps, progress=progress)
    check(sol, "log_prob", max_steps=max_steps, hint="loosen rtol/atol or raise t_eps")
    if return_stats:
        return lp, stats_of(sol, solver_obj)
    return lp
