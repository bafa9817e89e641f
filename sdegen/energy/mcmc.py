"""Metropolis-corrected MCMC on an energy: MALA and HMC kernels, fixed-t chains, and a Diffrax
solver that uses them as correctors inside reverse-process sampling.

A *kernel* step is a pure function on ONE example with an explicit key,
`step(U, x, key, step_size) -> (x', acceptance probability)`, for a target ∝ exp(−U(x)). The
Metropolis–Hastings test makes each kernel leave exp(−U) exactly invariant whatever the step
size — which is what a learned *score* alone cannot give (it has no density ratios), and what
makes exact tempering p^{1/τ} and composition of models possible (Du et al. 2023, "Reduce,
Reuse, Recycle", Sec. 4: annealed MCMC with MALA/HMC on energy-parameterised diffusion models).

Acceptance is reported as the mean Metropolis–Hastings acceptance probability min(1, r), an
unbiased estimate of the acceptance rate with lower variance than the accept/reject indicator.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

Potential = Callable[[Float[Array, "*d"]], Float[Array, ""]]  # U(x) = E(x, t) at a fixed t


def _accept(key, log_ratio, x_new, x_old):
    """Metropolis–Hastings accept/reject of `x_new` with log acceptance ratio `log_ratio`."""
    log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)  # NaN proposal: reject
    prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
    accept = jnp.log(jax.random.uniform(key, (), dtype=prob.dtype)) < log_ratio
    return jnp.where(accept, x_new, x_old), prob


def mala_step(
    potential: Potential, x: Float[Array, "*d"], key: PRNGKeyArray, step_size: Float[ArrayLike, ""]
) -> tuple[Float[Array, "*d"], Float[Array, ""]]:
    """One Metropolis-adjusted Langevin step (Roberts & Tweedie 1996, eqs. 2.2–2.3; Besag 1994)
    for the target ∝ exp(−U): propose x' = x − ε∇U(x) + √(2ε) z, z ~ N(0, I), accept with
    probability min(1, exp(U(x) − U(x')) q(x | x') / q(x' | x)), where
    log q(x' | x) = −‖x' − x + ε∇U(x)‖² / (4ε) + const. Returns (next state, acceptance prob)."""
    k_prop, k_acc = jax.random.split(key)
    eps = jnp.asarray(step_size, x.dtype)
    u0, g0 = jax.value_and_grad(potential)(x)
    z = jax.random.normal(k_prop, x.shape, x.dtype)
    y = x - eps * g0 + jnp.sqrt(2.0 * eps) * z
    u1, g1 = jax.value_and_grad(potential)(y)
    log_q_fwd = -jnp.sum((y - x + eps * g0) ** 2) / (4.0 * eps)
    log_q_bwd = -jnp.sum((x - y + eps * g1) ** 2) / (4.0 * eps)
    return _accept(k_acc, u0 - u1 + log_q_bwd - log_q_fwd, y, x)


def hmc_step(
    potential: Potential,
    x: Float[Array, "*d"],
    key: PRNGKeyArray,
    step_size: Float[ArrayLike, ""],
    n_leapfrog: int,
) -> tuple[Float[Array, "*d"], Float[Array, ""]]:
    """One Hamiltonian Monte Carlo step (Duane et al. 1987; Neal 2011, "MCMC using Hamiltonian
    dynamics", Sec. 5.3.3, Fig. 2): momentum p ~ N(0, I), `n_leapfrog` leapfrog steps of size h
    on H(x, p) = U(x) + ½‖p‖², accepted with probability min(1, exp(H(x, p) − H(x', p')))."""
    k_mom, k_acc = jax.random.split(key)
    h = jnp.asarray(step_size, x.dtype)
    grad = jax.grad(potential)
    p0 = jax.random.normal(k_mom, x.shape, x.dtype)
    p = p0 - 0.5 * h * grad(x)

    def leap(_, state):
        y, p = state
        y = y + h * p
        return y, p - h * grad(y)

    y, p = jax.lax.fori_loop(0, n_leapfrog - 1, leap, (x, p))
    y = y + h * p
    p = p - 0.5 * h * grad(y)
    log_ratio = potential(x) + 0.5 * jnp.sum(p0**2) - potential(y) - 0.5 * jnp.sum(p**2)
    return _accept(k_acc, log_ratio, y, x)


class AbstractKernel(eqx.Module):
    """A Metropolis-corrected MCMC kernel with a default step size. `grad_evals` is the number
    of energy gradients one step costs (for NFE accounting); `langevin_step_size(eps)` maps a
    Langevin step ε (the time step of the overdamped Langevin SDE it discretises) to the
    kernel's own step size, so correctors can set ε by the signal-to-noise rule."""

    step_size: eqx.AbstractVar[Float[ArrayLike, ""]]

    @abc.abstractmethod
    def step(
        self,
        potential: Potential,
        x: Float[Array, "*d"],
        key: PRNGKeyArray,
        step_size: Float[ArrayLike, ""] | None = None,
    ) -> tuple[Float[Array, "*d"], Float[Array, ""]]:
        """One step on ONE example: (next state, acceptance probability)."""

    @property
    @abc.abstractmethod
    def grad_evals(self) -> int: ...

    @abc.abstractmethod
    def langevin_step_size(self, eps: Float[Array, ""]) -> Float[Array, ""]: ...


class MALA(AbstractKernel):
    """Metropolis-adjusted Langevin (`mala_step`); `step_size` is ε (proposal variance 2ε)."""

    step_size: Float[ArrayLike, ""] = 0.01

    def step(self, potential, x, key, step_size=None):
        return mala_step(potential, x, key, self.step_size if step_size is None else step_size)

    @property
    def grad_evals(self) -> int:
        return 2

    def langevin_step_size(self, eps):
        return eps


class HMC(AbstractKernel):
    """Hamiltonian Monte Carlo (`hmc_step`); `step_size` is the leapfrog step h. One leapfrog
    step with h = √(2ε) is the Langevin proposal of step ε, so a corrector's ε maps to
    h = √(2ε) and the trajectory covers `n_leapfrog` such steps."""

    step_size: Float[ArrayLike, ""] = 0.1
    n_leapfrog: int = eqx.field(static=True, default=5)

    def __check_init__(self):
        if self.n_leapfrog < 1:
            raise ValueError(f"HMC needs n_leapfrog >= 1, got {self.n_leapfrog}")

    def step(self, potential, x, key, step_size=None):
        h = self.step_size if step_size is None else step_size
        return hmc_step(potential, x, key, h, self.n_leapfrog)

    @property
    def grad_evals(self) -> int:
        return self.n_leapfrog + 1

    def langevin_step_size(self, eps):
        return jnp.sqrt(2.0 * eps)


@eqx.filter_jit
def _chain(kernel, energy, x0, key, t, n_steps):
    def one(x, k):
        potential = lambda y: energy(y, t)

        def body(x, k):
            return kernel.step(potential, x, k)

        x, probs = jax.lax.scan(body, x, jax.random.split(k, n_steps))
        return x, probs

    keys = jax.random.split(key, x0.shape[0])
    xs, probs = jax.vmap(one)(x0, keys)
    return xs, jnp.mean(probs, axis=0)


def run_chain(
    energy: Callable[[Float[Array, "*d"], Float[ArrayLike, ""]], Float[Array, ""]],
    x0: Float[Array, "n *d"],
    *,
    key: PRNGKeyArray,
    kernel: AbstractKernel,
    n_steps: int,
    t: Float[ArrayLike, ""] = 0.0,
) -> tuple[Float[Array, "n *d"], Float[Array, " steps"]]:
    """Run `n` independent chains of `kernel` for `n_steps` on the target ∝ exp(−E(x, t)) at a
    fixed time t (e.g. t ≈ 0: the data end; use `energy.tempered` for p^{1/τ}). A fixed-t chain
    is a `lax.scan`, not a time integration. Returns the final states and the mean acceptance
    probability at each step (average over chains)."""
    x0 = jnp.asarray(x0)
    if x0.ndim < 2:
        raise ValueError(f"x0 must be batched, (n, *d), got shape {x0.shape}; use x0[None]")
    if n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps}")
    return _chain(kernel, energy, x0, key, jnp.asarray(t, x0.dtype), n_steps)


from ..solvers.metropolis import MetropolisCorrected as MetropolisCorrected  # noqa: E402
from ..solvers.metropolis import snr_step_size as snr_step_size  # noqa: E402
