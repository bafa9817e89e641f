"""`METHODS`: the one table of `sdegen.sample`'s method names.

Each method is the generative dynamics it integrates (`terms`: the probability-flow ODE, the
denoiser of the few-step samplers, or the reverse SDE, all in solver time s = T - t), the
Diffrax solver that steps them, and the time grid it uses unless told otherwise (`None`: an
adaptive solve). `sdegen.sample`, the config schema and the CLI read their lists of methods from
here, and `sdegen.sample(solver=...)` swaps the solver of any method for a user's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import diffrax
import jax

from ..manifolds import Euclidean
from ..processes import denoiser, reverse_drift
from .base import FINAL_RULES
from .deis import DEIS
from .dpm_solver import DDIM, DPMSolverPP2M, DPMSolverPP2MSDE, DPMSolverPP2S, DPMSolverPPMultistep
from .edm import EDMSampler
from .geodesic import GeodesicRandomWalk
from .ipndm import IPNDM
from .langevin import ReverseDiffusionLangevin
from .noise import diagonal_noise
from .unipc import UniPC


class Options(NamedTuple):
    """The method options of `sdegen.sample` a solver builder may read."""

    num_steps: int
    snr: float
    n_corrector: int
    churn: float
    order: int | None = None
    """The order of a multistep sampler (None: the method's default)."""
    eta: float = 0.0
    """DDIM's noise scale η in [0, 1]."""
    lower_order_final: bool | str | None = None
    """Lower-order final steps (None: as the method's paper does; "diffusers": the paper's
    rule counted as diffusers does, `base.FINAL_RULES`)."""


def _batched(field: Callable) -> Callable:
    return jax.vmap(field, in_axes=(0, None))


def pf_ode_terms(process, field, t_eps: float, to_data: bool = True) -> diffrax.ODETerm:
    """The probability-flow ODE (Song et al. 2021, eq. 13; any process's `ode_velocity`) in
    solver time s ∈ [0, T - t_eps]: towards the data (s = T - t, the velocity negated) or
    towards the prior (s = t - t_eps, for `sdegen.encode`)."""
    velocity = _batched(process.ode_velocity(field))
    T = process.T
    if to_data:
        return diffrax.ODETerm(lambda s, y, args: -velocity(y, T - s))
    return diffrax.ODETerm(lambda s, y, args: velocity(y, t_eps + s))


def denoiser_terms(process, field) -> diffrax.ODETerm:
    """The batched denoiser D(x, t) (`processes.denoiser`) at solver time s: what the
    fixed-grid samplers of `solvers.base.AbstractGridSampler` evaluate."""
    denoise = _batched(denoiser(process, field))
    return diffrax.ODETerm(lambda s, y, args: denoise(y, process.T - s))


def reverse_sde_terms(process, field, key, shape) -> diffrax.MultiTerm:
    """The reverse SDE (Song et al. 2021, eq. 6) in solver time: drift -f̄(x, T - s) and the
    diffusion g(T - s) driven by a Brownian path (Unsafe: no gradients through sampling)."""
    drift = _batched(reverse_drift(process, field))
    bm = diffrax.UnsafeBrownianPath(shape=shape, key=key)
    T = process.T
    return diffrax.MultiTerm(
        diffrax.ODETerm(lambda s, y, args: -drift(y, T - s)),
        diffrax.ControlTerm(diagonal_noise(lambda s: process.diffusion(T - s)), bm),
    )


def _langevin(process, field, key, o: Options):
    return ReverseDiffusionLangevin(score=field, T=process.T, key=jax.random.fold_in(key, 1),
                                    snr=o.snr, n_corrector=o.n_corrector)


def _euler_maruyama(process, field, key, o: Options):
    if isinstance(process.manifold, Euclidean):
        return diffrax.Euler()
    return GeodesicRandomWalk(process.manifold)


def _final(o: Options, paper: bool, rules=FINAL_RULES) -> bool | str:
    """The final-step rule: the paper's (`paper`) unless `Options.lower_order_final` says
    otherwise; `rules` are the values the method takes (`base.FINAL_RULES` for multistep)."""
    value = o.lower_order_final
    if value is None:
        return paper
    if not (isinstance(value, bool) or (isinstance(value, str) and value in rules)):
        raise ValueError(f"lower_order_final must be one of {rules}, got {value!r}")
    return value


def _edm_heun(process, field, key, o: Options):
    return EDMSampler(process, num_steps=o.num_steps,
                      skip_last_correction=_final(o, False, (True, False)))


def _edm_churn(process, field, key, o: Options):
    return EDMSampler(process, key=jax.random.fold_in(key, 2), churn=o.churn,
                      num_steps=o.num_steps,
                      skip_last_correction=_final(o, False, (True, False)))


def _ddim(process, field, key, o: Options):
    return DDIM(process, eta=o.eta, key=jax.random.fold_in(key, 3) if o.eta > 0 else None)


def _multistep(cls, default_order: int, paper_final: bool, **kw):
    """Builder of a multistep sampler: its order (`Options.order` or the default), the grid's
    step count and the final-step rule."""

    def build(process, field, key, o: Options):
        return cls(process, solver_order=o.order or default_order, num_steps=o.num_steps,
                   lower_order_final=_final(o, paper_final), **kw)

    return build


def _dpm2m_sde(process, field, key, o: Options):
    return DPMSolverPP2MSDE(process, key=jax.random.fold_in(key, 4), num_steps=o.num_steps,
                            lower_order_final=_final(o, True))


class Method(NamedTuple):
    """One sampling method: `terms` names the dynamics ("pf_ode", "denoiser" — linear SDEs
    and Gaussian flow-matching paths, `base.GaussianKernel` — or "reverse_sde"),
    `solver(process, field, key, options)` builds its default solver, `grid` is its default
    time grid (`grids.GRIDS`; `None` = adaptive steps), `score` says it needs a score (a
    stochastic process; the "denoiser" methods take a path's velocity too), `euclidean` that
    it works in R^d only, `orders` the values its `order` option takes (empty: none), `eta`
    that it reads DDIM's η.
    """

    terms: str
    solver: Callable[[Any, Callable, Any, Options], diffrax.AbstractSolver]
    grid: str | None
    score: bool = True
    euclidean: bool = False
    orders: tuple[int, ...] = ()
    eta: bool = False


METHODS: dict[str, Method] = {
    "ode": Method("pf_ode", lambda process, field, key, o: diffrax.Tsit5(), None, score=False),
    "sde": Method("reverse_sde", _euler_maruyama, "uniform"),
    "pc": Method("reverse_sde", _langevin, "uniform", euclidean=True),
    "pc_ode": Method("pf_ode", _langevin, "uniform", euclidean=True),
    "edm_heun": Method("denoiser", _edm_heun, "karras"),
    "edm_churn": Method("denoiser", _edm_churn, "karras"),
    "ddim": Method("denoiser", _ddim, "karras", eta=True),
    "dpm2m": Method("denoiser", lambda process, field, key, o: DPMSolverPP2M(process), "karras"),
    "dpm3m": Method("denoiser", _multistep(DPMSolverPPMultistep, 3, True), "karras",
                    orders=(1, 2, 3)),
    "dpm2s": Method("denoiser", lambda process, field, key, o: DPMSolverPP2S(process), "karras"),
    "dpm2m_sde": Method("denoiser", _dpm2m_sde, "karras"),
    "ipndm": Method("denoiser", _multistep(IPNDM, 4, False), "karras", orders=(1, 2, 3, 4)),
    "deis": Method("denoiser", _multistep(DEIS, 3, False), "karras", orders=(1, 2, 3)),
    "unipc": Method("denoiser", _multistep(UniPC, 3, True, variant="bh2"), "karras",
                    orders=(1, 2, 3)),
    "unipc_bh1": Method("denoiser", _multistep(UniPC, 3, True, variant="bh1"), "karras",
                        orders=(1, 2, 3)),
}
"""Method name -> `Method`: the only list of `sdegen.sample`'s method names."""
