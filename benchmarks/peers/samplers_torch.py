"""PyTorch peers for benchmarks/samplers.py: the same analytic Gaussian-mixture score under the
same VP SDE, solved by torchdiffeq (dopri5 PF-ODE), torchsde (Euler reverse SDE) and diffusers'
DPMSolverMultistep (2M, 3M, 2M SDE) / UniPCMultistep (orders 2, 3) / DEISMultistep (order 3) /
Euler / Heun schedulers on the Karras σ-grid; and on the rectified-flow path the same mixture's
exact velocity stepped by FlowMatchEulerDiscreteScheduler on a given grid.

Run by the sdegen harness in the peers venv (`bash benchmarks/peers/setup.sh`):
    benchmarks/peers/.venv/bin/python benchmarks/peers/samplers_torch.py PROBLEM.npz OUT.npz
PROBLEM.npz holds the mixture (weights, means, stds), the VP parameters, t_eps, the prior draws
x_T per problem and the run list; OUT.npz gets each run's end points, wall time (median of
`repeats` calls after one warm-up) and counted NFE. Written from the papers, not from sdegen.
"""

from __future__ import annotations

import functools
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

# Threads for torch (env PEER_THREADS, default 1): on a small shared CPU, torch's intra-op
# threads contend badly (measured here: one 5000-point mixture-score evaluation 7.3 ms on 1
# thread, 22.7 ms on 2), which would make the peers look slower than they are.
torch.set_num_threads(int(os.environ.get("PEER_THREADS", "1")))


class VP:
    """VP SDE of Song et al. 2021 (eq. 11, linear β), closed-form α(t), σ(t) (eq. 29)."""

    def __init__(self, beta_min, beta_max):
        self.b0, self.b1 = beta_min, beta_max

    def beta(self, t):
        return self.b0 + t * (self.b1 - self.b0)

    def log_alpha(self, t):
        return -0.25 * t**2 * (self.b1 - self.b0) - 0.5 * t * self.b0

    def t_of_sigma(self, r):
        """t with σ(t)/α(t) = r (the k-diffusion/diffusers σ)."""
        c = 0.5 * math.log1p(r**2)
        a, b = 0.25 * (self.b1 - self.b0), 0.5 * self.b0
        return 2 * c / (b + math.sqrt(b * b + 4 * a * c))


class MixtureScore:
    """∇ log p_t of Σ w_k N(μ_k, s_k² I) pushed through the VP kernel N(α x0, σ² I)."""

    def __init__(self, sde, weights, means, stds, dtype):
        self.sde = sde
        self.logw = torch.log(torch.as_tensor(weights, dtype=dtype))
        self.means = torch.as_tensor(means, dtype=dtype)
        self.var0 = torch.as_tensor(stds, dtype=dtype) ** 2
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        t = torch.as_tensor(t, dtype=x.dtype)
        la = self.sde.log_alpha(t)
        a2 = torch.exp(2 * la)
        var = a2 * self.var0 + (-torch.expm1(2 * la))  # (k,)
        diff = torch.exp(la) * self.means[None] - x[:, None, :]  # (n, k, d)
        d = x.shape[1]
        logits = self.logw - 0.5 * d * torch.log(var) - 0.5 * (diff**2).sum(-1) / var
        post = torch.softmax(logits, dim=1)  # (n, k)
        return torch.einsum("nk,nkd->nd", post / var, diff)


class MixtureVelocity:
    """The marginal velocity E[a' x0 + b' ε | x_t = x] of the same mixture on the rectified-flow
    path x_t = (1 - t) x0 + t ε (Liu et al. 2023; Lipman et al. 2023, Thm. 1), closed form."""

    def __init__(self, weights, means, stds, dtype):
        self.logw = torch.log(torch.as_tensor(weights, dtype=dtype))
        self.means = torch.as_tensor(means, dtype=dtype)
        self.var0 = torch.as_tensor(stds, dtype=dtype) ** 2
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        a, b = 1.0 - t, t
        var = a**2 * self.var0 + b**2  # (k,)
        centred = x[:, None, :] - a * self.means[None]  # (n, k, d)
        d = x.shape[1]
        logits = self.logw - 0.5 * d * torch.log(var) - 0.5 * (centred**2).sum(-1) / var
        post = torch.softmax(logits, dim=1)[..., None]  # (n, k, 1)
        x0 = (post * (self.means[None] + (a * self.var0 / var)[None, :, None] * centred)).sum(1)
        eps = (post * (b / var)[None, :, None] * centred).sum(1)
        return -x0 + eps


def flow_euler_run(velocity, x_T, sigmas):
    """diffusers' FlowMatchEulerDiscreteScheduler (shift 1) on the given σ = t grid: Euler on
    the velocity, x <- x + (σ_{i+1} - σ_i) v, with its own terminal σ = 0 appended, so NFE =
    len(sigmas)."""
    import diffusers

    sch = diffusers.FlowMatchEulerDiscreteScheduler(shift=1.0)
    sch.set_timesteps(sigmas=list(sigmas))
    x = x_T.clone()
    for ts in sch.timesteps:
        idx = sch.step_index if sch.step_index is not None else 0
        x = sch.step(velocity(x, float(sch.sigmas[idx])), ts, x).prev_sample
    return x


def pf_ode_torchdiffeq(score, sde, x_T, t_eps, rtol, atol):
    from torchdiffeq import odeint

    def f(t, x):  # probability flow, eq. 13 of Song et al. 2021, forward time, run backwards
        b = sde.beta(t)
        return -0.5 * b * x - 0.5 * b * score(x, t)

    ts = torch.tensor([1.0, t_eps], dtype=x_T.dtype)
    return odeint(f, x_T, ts, method="dopri5", rtol=rtol, atol=atol)[-1]


def em_torchsde(score, sde, x_T, t_eps, steps):
    import torchsde

    class Reverse(torch.nn.Module):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, s, x):  # reverse SDE (Song et al. 2021, eq. 6) in solver time s = 1 - t
            t = 1.0 - s
            b = sde.beta(t)
            return -(-0.5 * b * x - b * score(x, t))

        def g(self, s, x):
            return torch.sqrt(sde.beta(1.0 - s)).expand_as(x)

    ts = torch.tensor([0.0, 1.0 - t_eps], dtype=x_T.dtype)
    dt = (1.0 - t_eps) / steps
    return torchsde.sdeint(Reverse(), x_T, ts, method="euler", dt=dt)[-1]


def diffusers_run(kind, score, sde, x_T, t_eps, nfe):
    """A diffusers scheduler driven by the ε-prediction ε̂ = -σ_t ∇log p_t, with its discrete
    table equal to the continuous VP SDE at t_k = (k+1)/1000 (ᾱ_k = α(t_k)², so timestep 0 is
    t_eps = 1e-3), Karras sigmas, and the model evaluated at the scheduler's own σ. All three end
    with their default last step from σ(t_eps) to σ = 0 (a first-order, denoising step), so NFE
    = steps for DPMSolverMultistep and Euler and 2 steps - 1 for Heun."""
    import diffusers

    n_train = 1000
    tk = torch.arange(1, n_train + 1, dtype=torch.float64) / n_train
    abar = torch.exp(2 * sde.log_alpha(tk))
    betas = 1 - abar / torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    common = dict(num_train_timesteps=n_train, trained_betas=betas.numpy(), use_karras_sigmas=True)
    dpm = diffusers.DPMSolverMultistepScheduler
    makers = {
        "dpm2m": lambda: dpm(algorithm_type="dpmsolver++", solver_order=2,
                             lower_order_final=False, **common),
        "dpm2m_lof": lambda: dpm(algorithm_type="dpmsolver++", solver_order=2, **common),
        "dpm3m": lambda: dpm(algorithm_type="dpmsolver++", solver_order=3, **common),
        "dpm2m_sde": lambda: dpm(algorithm_type="sde-dpmsolver++", solver_order=2, **common),
        "unipc2": lambda: diffusers.UniPCMultistepScheduler(solver_order=2, **common),
        "unipc3": lambda: diffusers.UniPCMultistepScheduler(solver_order=3, **common),
        "deis3": lambda: diffusers.DEISMultistepScheduler(solver_order=3, **common),
        "euler": lambda: diffusers.EulerDiscreteScheduler(**common),
        "heun": lambda: diffusers.HeunDiscreteScheduler(**common),
    }
    sch = makers[kind]()
    # heun: 2 evaluations a step, the last step (to σ = 0) one: NFE = 2 steps - 1
    steps = (nfe + 1) // 2 if kind == "heun" else nfe
    sch.set_timesteps(steps)
    gen = torch.Generator().manual_seed(0)
    x = x_T * sch.init_noise_sigma if kind in ("euler", "heun") else x_T.clone()
    sigmas = sch.sigmas
    for i, ts in enumerate(sch.timesteps):
        idx = sch.step_index if sch.step_index is not None else 0
        r = float(sigmas[idx])
        t = sde.t_of_sigma(r)
        x_in = sch.scale_model_input(x, ts)
        std = math.sqrt(-math.expm1(2 * sde.log_alpha(t)))
        eps = -std * score(x_in, t)
        x = sch.step(eps, ts, x, generator=gen).prev_sample if "sde" in kind else \
            sch.step(eps, ts, x).prev_sample
        del i
    return x


def main():
    problem, out = sys.argv[1], sys.argv[2]
    p = np.load(problem, allow_pickle=False)
    spec = json.loads(str(p["spec"]))
    dtype = torch.float32
    sde = VP(spec["beta_min"], spec["beta_max"])
    results = {}
    meta = {}
    for run in spec["runs"]:
        name, prob = run["name"], run["problem"]
        score = MixtureScore(sde, p[f"{prob}_weights"], p[f"{prob}_means"], p[f"{prob}_stds"],
                             dtype)
        x_T = torch.as_tensor(p[f"{prob}_x_T"], dtype=dtype)
        t_eps = spec["t_eps"]
        if run["peer"] == "torchdiffeq":
            fn = functools.partial(pf_ode_torchdiffeq, score, sde, x_T, t_eps, run["rtol"],
                                   run["atol"])
        elif run["peer"] == "torchsde":
            fn = functools.partial(em_torchsde, score, sde, x_T, t_eps, run["steps"])
            torch.manual_seed(0)
        elif run["peer"] == "flow_euler":
            score = MixtureVelocity(p[f"{prob}_weights"], p[f"{prob}_means"], p[f"{prob}_stds"],
                                    dtype)
            fn = functools.partial(flow_euler_run, score, x_T, run["sigmas"])
        else:
            fn = functools.partial(diffusers_run, run["kind"], score, sde, x_T, t_eps, run["nfe"])
        with torch.no_grad():
            score.calls = 0
            x = fn()  # warm-up, and the NFE count
            nfe = score.calls
            walls = []
            for _ in range(spec["repeats"]):
                start = time.perf_counter()
                fn()
                walls.append(time.perf_counter() - start)
        results[name] = x.numpy()
        meta[name] = dict(nfe=nfe, wall_s=statistics.median(walls))
        print(f"{name:<28} nfe {nfe:>5}  wall {meta[name]['wall_s']:.4f} s", flush=True)
    np.savez(out, meta=json.dumps(dict(runs=meta, torch=torch.__version__,
                                       threads=torch.get_num_threads())), **results)


if __name__ == "__main__":
    main()
