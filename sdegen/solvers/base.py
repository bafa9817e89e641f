"""What sdegen's samplers share as Diffrax solvers.

`CountsFieldEvals` is the one thing `integrate.evals_per_step` asks of a solver it does not
know: `field_evals`, the evaluations of the user's field per step (NFE = field_evals × steps),
which Diffrax's `sol.stats` does not report. Any solver — sdegen's or a user's — that has the
attribute is counted exactly. `AbstractGridSampler` is the base of the fixed-grid samplers for
linear SDEs and Gaussian flow-matching paths (`GaussianKernel`): a state stepped in solver time
s = T - t by formulas in the noise ratio r = σ/α, with the term handed to the solve evaluating
the batched denoiser D at solver time s. `FromPureNoise` bridges the first step of a path whose
prior has no signal (r(T) = ∞), so that no sampler ever sees an infinite λ.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from ..manifolds import Euclidean
from ..processes import AbstractLinearSDE, AbstractProbabilityPath, AbstractProcess

GaussianKernel = AbstractLinearSDE | AbstractProbabilityPath
"""The processes the fixed-grid samplers step: those with a Gaussian kernel
p_t(x | x0) = N(α(t) x0, σ(t)² I) known in closed form — the linear SDEs (field: the score)
and the flow-matching paths x_t = a(t) x0 + b(t) ε (field: the velocity). Both offer `alpha`,
`std`, `noise_ratio` r = σ/α and `time_of_noise_ratio`; `processes.denoiser` turns either
field into the data prediction D. That is all a sampler below reads, so every one of them
runs on both (Kingma & Gao 2023, "Understanding diffusion objectives", App. D: the flow-matching
and diffusion ODEs with the same λ = log(α/σ) are one ODE)."""


def check_gaussian(method: str, process: AbstractProcess) -> None:
    """One-line error for a fixed-grid sampler asked to step a process without a Gaussian
    kernel in closed form (a CNF, a sphere process, a user's velocity process)."""
    if not isinstance(process, GaussianKernel) or not isinstance(process.manifold, Euclidean):
        raise ValueError(f"method={method!r} needs a linear SDE (VPSDE, SubVPSDE, VESDE) or a "
                         f"Gaussian flow-matching path (LinearPath, VPPath) for its closed-form "
                         f"noise schedule; {type(process).__name__} is neither: use method='ode'")


def starts_from_pure_noise(process: AbstractProcess) -> bool:
    """Whether `process` is a path whose prior carries no signal, α(T) = 0 (λ(T) = -∞)."""
    return isinstance(process, AbstractProbabilityPath) and process.pure_noise_prior


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

    sde: eqx.AbstractVar[GaussianKernel]
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


class FromPureNoise(diffrax.AbstractSolver):
    """A fixed-grid sampler on a path whose prior is pure noise, α(T) = 0 (`LinearPath`:
    rectified flow). There λ(T) = -∞: a step from T spans an infinite λ-interval, on which
    every exponential integrator (DDIM, DPM-Solver++, UniPC, DEIS) and every step in
    r = σ/α (iPNDM, EDM) can only hold D constant. Their common limit is the exact first-order
    step x1 = (σ1/σ(T)) x_T + α1 D(x_T, T) (Lu et al. 2022b, eq. 9 with e^{-h} = 0; DDIM,
    which on the rectified-flow path is Euler on the velocity, Gao et al. 2024), and for the
    stochastic samplers (DDIM η > 0, DPM-Solver++ 2M SDE) it has their first step's law, since
    x_T = σ(T) ε. This solver takes that step (one field evaluation) and hands the rest of the
    grid to `solver`, whose own steps — warm start, final-step rule (`num_steps` = the grid's
    steps − 1) — begin at the grid's second point, where λ is finite.

    The first step's error is O(e^{2 λ1}): on a grid uniform in t (e^{λ1} ≈ h) it caps every
    method's global order at 2; a grid that refines near t = T restores the higher orders."""

    solver: diffrax.AbstractSolver

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    @property
    def sde(self):
        return self.solver.sde

    @property
    def field_evals(self) -> int:
        return int(self.solver.field_evals)

    @property
    def evals_saved(self) -> int:
        """The first step costs one evaluation, not `field_evals`."""
        return int(getattr(self.solver, "evals_saved", 0)) + self.field_evals - 1

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t1, t1, y0, args), jnp.array(True)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        inner, first = solver_state
        sde, T = self.sde, self.sde.T

        def bridge(inner):
            y1 = (sde.std(T - t1) / sde.std(T - t0)) * y0 + sde.alpha(T - t1) * terms.vf(
                t0, y0, args)
            return y1, inner

        def rest(inner):
            y1, _, _, inner, _ = self.solver.step(terms, t0, t1, y0, args, inner, made_jump)
            return y1, inner

        y1, inner = jax.lax.cond(first, bridge, rest, inner)
        return (y1, None, dict(y0=y0, y1=y1), (inner, jnp.array(False)),
                diffrax.RESULTS.successful)
