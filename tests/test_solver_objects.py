"""`sdegen.sample(solver=<instance>, ts=<grid>)` and `sdegen.log_prob(solver=<instance>)` from
outside the package: Diffrax's own solvers and a user-written one, on the analytic Gaussian
mixture under VP, against independent computations (a tight adaptive solve, the built-in
grids, the analytic density), with exact NFE accounting and one-line errors."""

from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp
import pytest

import sdegen
from sdegen.solvers import time_grid

N = 16
T_EPS = 1e-3


class ExplicitMidpoint(diffrax.AbstractSolver):
    """A user's own solver, written outside sdegen: the explicit midpoint rule, stating its
    two field evaluations a step through `field_evals`."""

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation
    field_evals: ClassVar[int] = 2

    def order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        h = t1 - t0
        k1 = terms.vf(t0, y0, args)
        y1 = y0 + h * terms.vf(t0 + 0.5 * h, y0 + 0.5 * h * k1, args)
        return y1, None, dict(y0=y0, y1=y1), None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


@pytest.fixture(scope="module")
def problem(mixture, sdes):
    """(sde, score, x_T, reference endpoint of a tight Tsit5 PF-ODE solve from x_T)."""
    sde = sdes["vp"]
    score = mixture.score(sde)
    x_T = sde.prior_sample(jax.random.key(0), (N, 2))
    ref = sdegen.sample(sde, score, key=jax.random.key(1), x_T=x_T, rtol=1e-10, atol=1e-10,
                        t_eps=T_EPS)
    return sde, score, x_T, ref


def _karras_ts(sde, n):
    """The built-in Karras grid as forward times t, decreasing from T to t_eps."""
    return sde.T - time_grid(sde, "karras", n, T_EPS)


def _err(x, ref):
    return float(jnp.max(jnp.abs(x - ref)))


@pytest.mark.parametrize("solver", [diffrax.Heun(), ExplicitMidpoint()])
def test_fixed_grid_solver_instance_converges_to_the_pf_ode(problem, solver):
    """A second-order solver on an explicit grid approaches the tight adaptive solve at
    second order (doubling the steps divides the error by about 4)."""
    sde, score, x_T, ref = problem
    errs = [_err(sdegen.sample(sde, score, key=jax.random.key(1), x_T=x_T, solver=solver,
                               ts=_karras_ts(sde, n)), ref) for n in (64, 128)]
    assert errs[1] < 5e-3, errs
    assert 2.5 < errs[0] / errs[1] < 6.0, errs


def test_adaptive_solver_instances(problem):
    """An adaptive instance is the same solve as its name; another adaptive solver (Bosh3)
    meets the tolerance against the tight reference."""
    sde, score, x_T, ref = problem
    kw = dict(key=jax.random.key(1), x_T=x_T, rtol=1e-6, atol=1e-6, t_eps=T_EPS)
    by_name = sdegen.sample(sde, score, solver="dopri5", **kw)
    by_instance = sdegen.sample(sde, score, solver=diffrax.Dopri5(), **kw)
    assert jnp.array_equal(by_name, by_instance)
    assert _err(by_instance, ref) < 1e-4
    assert _err(sdegen.sample(sde, score, solver=diffrax.Bosh3(), **kw), ref) < 1e-4


@pytest.mark.parametrize("method", ["dpm2m", "edm_heun"])
def test_explicit_ts_reproduces_the_karras_grid(problem, method):
    sde, score, x_T, _ = problem
    kw = dict(key=jax.random.key(1), x_T=x_T, method=method)
    built_in = sdegen.sample(sde, score, grid="karras", num_steps=12, t_eps=T_EPS, **kw)
    explicit = sdegen.sample(sde, score, ts=_karras_ts(sde, 12), **kw)
    assert jnp.allclose(explicit, built_in, rtol=1e-12, atol=1e-12)


def test_user_solver_on_the_reverse_sde(mixture, sdes):
    """A solver instance replaces the method's own: diffrax.Euler() for method='sde' is the
    same Euler–Maruyama solve as the default."""
    sde = sdes["vp"]
    kw = dict(key=jax.random.key(2), shape=(N, 2), method="sde", num_steps=50)
    assert jnp.array_equal(sdegen.sample(sde, mixture.score(sde), **kw),
                           sdegen.sample(sde, mixture.score(sde), solver=diffrax.Euler(), **kw))


@pytest.mark.parametrize("solver,ts_steps,expected", [
    (diffrax.Heun(), 5, 2 * 5),            # two evaluations a step on the grid
    (ExplicitMidpoint(), 5, 2 * 5),        # the user's `field_evals`
    (diffrax.Bosh3(), None, None),         # adaptive, first-same-as-last: 1 + 3 a step
])
def test_counted_nfe_equals_reported_nfe(mixture, sdes, nfe_counter, solver, ts_steps, expected):
    sde = sdes["vp"]
    counted, calls = nfe_counter(mixture.score(sde))
    ts = None if ts_steps is None else _karras_ts(sde, ts_steps)
    _, stats = sdegen.sample(sde, counted, key=jax.random.key(0), x_T=jnp.zeros((1, 2)),
                             solver=solver, ts=ts, rtol=1e-4, atol=1e-4, return_stats=True)
    assert stats.nfe == len(calls)
    if expected is not None:
        assert stats.nfe == expected
    else:
        assert stats.nfe == 1 + 3 * stats.num_steps and stats.num_steps > 3


def test_bad_ts_and_solvers_are_one_line_errors(mixture, sdes):
    sde = sdes["vp"]
    score = mixture.score(sde)
    kw = dict(key=jax.random.key(0), shape=(4, 2))
    good = _karras_ts(sde, 4)
    bad = {
        "1-D": good[:, None],
        "decreasing": good[::-1],
        "starts at": good[1:],
        "ends at": good.at[-1].set(0.0),
        "finite": good.at[2].set(jnp.nan),
    }
    for match, ts in bad.items():
        with pytest.raises(ValueError, match=match) as info:
            sdegen.sample(sde, score, method="ddim", ts=ts, **kw)
        assert "\n" not in str(info.value)
    errors = [
        (dict(solver=diffrax.Euler()), "no error estimate"),             # adaptive needs one
        (dict(solver=diffrax.Heun(), method="dpm2m"), "AbstractGridSampler"),
        (dict(solver="rk4"), "unknown ODE solver"),
        (dict(solver=diffrax.ImplicitEuler(), ts=good, return_stats=True), "NFE"),
    ]
    for options, match in errors:
        with pytest.raises(ValueError, match=match) as info:
            sdegen.sample(sde, score, **options, **kw)
        assert "\n" not in str(info.value)


def test_second_call_with_fresh_solver_objects_does_not_recompile(mixture, sdes, trace_counter):
    """Solver instances are pytrees: a fresh, equal `diffrax.Heun()` and a new `ts` array of
    the same length reuse the compiled solve."""
    sde = sdes["vp"]
    field, traces = trace_counter(mixture.score(sde))

    def run(seed, n=8):
        sdegen.sample(sde, field, key=jax.random.key(seed), shape=(4, 2), solver=diffrax.Heun(),
                      ts=_karras_ts(sde, n))

    run(0)
    first = len(traces)
    run(1)
    assert first > 0 and len(traces) == first


def test_log_prob_takes_a_solver_instance(mixture, long_sdes):
    sde = long_sdes["vp"]
    score = mixture.score(sde)
    x = mixture.sample(jax.random.key(3), 8)
    true = jax.vmap(lambda y: mixture.log_prob_t(sde, y, 1e-5))(x)
    by_name = sdegen.log_prob(sde, score, x, solver="dopri5")
    assert jnp.array_equal(by_name, sdegen.log_prob(sde, score, x, solver=diffrax.Dopri5()))
    lp, stats = sdegen.log_prob(sde, score, x, solver=diffrax.Heun(), rtol=1e-6, atol=1e-6,
                                return_stats=True)
    assert float(jnp.max(jnp.abs(lp - true))) < 1e-2
    assert stats.nfe == 2 * stats.num_steps
    with pytest.raises(ValueError, match="no error estimate"):
        sdegen.log_prob(sde, score, x, solver=diffrax.Euler())
