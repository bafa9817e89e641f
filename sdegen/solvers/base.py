"""What sdegen's samplers share as Diffrax solvers.

`CountsFieldEvals` is the one thing `integrate.evals_per_step` asks of a solver it does not
know: `field_evals`, the evaluations of the user's field per step (NFE = field_evals × steps),
which Diffrax's `sol.stats` does not report. Any solver — sdegen's or a user's — that has the
attribute is counted exactly. `AbstractGridSampler` is the base of the fixed-grid samplers for
linear SDEs: a state stepped in solver time s = T - t by formulas in the noise ratio r = σ/α,
with the term handed to the solve evaluating the batched denoiser D at solver time s.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import diffrax
import equinox as eqx
import jax.numpy as jnp

from ..processes import AbstractLinearSDE


@runtime_checkable
class CountsFieldEvals(Protocol):
    """A solver that states its number of field evaluations per step (its NFE per step)."""

    @property
    def field_evals(self) -> int: ...


class AbstractGridSampler(diffrax.AbstractSolver):
    """A Diffrax solver for the probability-flow ODE of `sde` in data-prediction form, meant for
    a `diffrax.StepTo` grid; `field_evals` is its number of evaluations of D a step (NFE).
    Subclass it (outside sdegen too) and pass an instance as `sdegen.sample(..., solver=)` with
    one of the few-step methods, whose terms are the denoiser."""

    sde: eqx.AbstractVar[AbstractLinearSDE]
    field_evals: eqx.AbstractClassVar[int]

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def schedule(self, s):
        """(α, σ, λ) at solver time s: the mean coefficient, the kernel std and the half
        log-SNR λ = log(α/σ) = -log r of the forward time T - s (Lu et al. 2022, Sec. 3.1)."""
        t = self.sde.T - s
        return self.sde.alpha(t), self.sde.std(t), -jnp.log(self.sde.noise_ratio(t))

    def solver_time_of_lambda(self, lam, like):
        """The solver time s whose half log-SNR is `lam` (the closed-form inverse of r)."""
        return (self.sde.T - self.sde.time_of_noise_ratio(jnp.exp(-lam))).astype(like.dtype)


FINAL_RULES = (True, False, "diffusers")
"""The values of a multistep sampler's `lower_order_final`: the paper's rule (True), none
(False), or "diffusers": the paper's rule counted as diffusers counts it, with the final
σ -> 0 denoising step (`x = α D(x, t_eps)`, one more evaluation, first order) as one more step
of the grid — diffusers' `DPMSolverMultistepScheduler`, `UniPCMultistepScheduler` and
`DEISMultistepScheduler` (`lower_order_final=True`, their default) then take the same orders
step by step as sdegen on a grid of `num_steps` steps followed by that denoising step."""


def step_order(i, order: int, num_steps: int | None, lower_order_final: bool | str,
               below: int | None = None):
    """The order of multistep step `i` (0-based): `order` after the warm start (step i uses
    at most i + 1 points), and with `lower_order_final` at most `num_steps - i` on the last
    steps (the final step first order), as DPM-Solver++ and UniPC do (Lu et al. 2022b, App. D;
    Zhao et al. 2023, Sec. 4) — only on grids of fewer than `below` steps when `below` is set
    (DPM-Solver++: 15, as diffusers). `lower_order_final="diffusers"` counts one step more
    (`FINAL_RULES`): at most `num_steps + 1 - i`, on grids of fewer than `below - 1` steps.
    `num_steps = None`: no final-step rule."""
    k = jnp.minimum(order, i + 1)
    if lower_order_final and num_steps is not None:
        n = num_steps + 1 if lower_order_final == "diffusers" else num_steps
        if below is None or n < below:
            k = jnp.minimum(k, n - i)
    return jnp.maximum(k, 1)


def check_final_rule(name: str, lower_order_final) -> None:
    """One-line error for a `lower_order_final` outside `FINAL_RULES`."""
    if not (isinstance(lower_order_final, bool) or lower_order_final == "diffusers"):
        raise ValueError(f"{name}: lower_order_final must be True (the paper's rule), False or "
                         f"'diffusers' (counting the final sigma -> 0 step); got "
                         f"{lower_order_final!r}")


def check_order(name: str, order: int, orders: tuple[int, ...]) -> None:
    """One-line error for an order a sampler does not implement."""
    if isinstance(order, bool) or order not in orders:
        raise ValueError(f"{name} has orders {', '.join(map(str, orders))}; got order={order!r}: "
                         f"pick one of them")


def push(history, value):
    """Newest-first history: `value` in front, the oldest entry dropped."""
    return jnp.concatenate([value[None], history[:-1]], axis=0)


def combine(weights, history):
    """Σ_j w_j history_j over the leading (history) axis."""
    return jnp.tensordot(weights.astype(history.dtype), history, axes=1)
