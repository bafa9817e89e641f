"""torchdiffeq peer of benchmarks/cnf_training.py: one FFJORD-style maximum-likelihood training
step (Grathwohl et al. 2019) at the same network size, batch, solver and tolerances, timed here
and printed as one JSON line. Runs in benchmarks/peers/.venv (torch, torchdiffeq), never in
sdegen's environment:

    benchmarks/peers/.venv/bin/python benchmarks/peers/torchdiffeq_cnf.py --width 64 --depth 3

Field: MLP on [x, t] (tanh), d = 2; divergence by Hutchinson with one Rademacher probe per
example fixed over the solve; dopri5 with rtol = atol; gradients by backpropagation through the
solver (torchdiffeq.odeint, discretise-then-optimise, the counterpart of Diffrax's
RecursiveCheckpointAdjoint) or by the adjoint method (--adjoint, odeint_adjoint).
"""

import argparse
import json
import math
import time

import numpy as np
import torch
from torchdiffeq import odeint, odeint_adjoint


class Field(torch.nn.Module):
    def __init__(self, dim, width, depth):
        super().__init__()
        layers, d_in = [], dim + 1
        for _ in range(depth):
            layers += [torch.nn.Linear(d_in, width), torch.nn.Tanh()]
            d_in = width
        layers.append(torch.nn.Linear(d_in, dim))
        self.net = torch.nn.Sequential(*layers)
        self.nfe = 0

    def velocity(self, t, x):
        return self.net(torch.cat([x, t.expand(x.shape[0], 1)], dim=1))


class Augmented(torch.nn.Module):
    def __init__(self, field):
        super().__init__()
        self.field = field
        self.probe = None

    def forward(self, t, state):
        self.field.nfe += 1
        x = state[0]
        with torch.enable_grad():
            x = x.requires_grad_(True)
            v = self.field.velocity(t, x)
            (vjp,) = torch.autograd.grad(v, x, self.probe, create_graph=True)
        div = (vjp * self.probe).sum(1)
        return v, div


def eight_gaussians(rng, n):
    centres = 4.0 * np.stack([np.cos(np.arange(8) * np.pi / 4),
                              np.sin(np.arange(8) * np.pi / 4)], 1) / 1.414
    idx = rng.integers(0, 8, n)
    return (centres[idx] + rng.normal(size=(n, 2)) * 0.5 / 1.414).astype(np.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--adjoint", action="store_true")
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    field = Field(2, a.width, a.depth)
    aug = Augmented(field)
    opt = torch.optim.Adam(field.parameters(), lr=1e-3)
    solve = odeint_adjoint if a.adjoint else odeint
    ts = torch.tensor([0.0, 1.0])
    times, fwd_nfe, total_nfe, losses = [], [], [], []
    for i in range(a.warmup + a.steps):
        x = torch.from_numpy(eight_gaussians(rng, a.batch))
        aug.probe = torch.randint(0, 2, x.shape).float() * 2 - 1
        t0 = time.perf_counter()
        field.nfe = 0
        kw = dict(adjoint_params=tuple(field.parameters())) if a.adjoint else {}
        z, delta = solve(aug, (x, torch.zeros(a.batch)), ts, method="dopri5", rtol=a.tol,
                         atol=a.tol, **kw)
        z, delta = z[-1], delta[-1]
        logp = -0.5 * (z**2).sum(1) - math.log(2 * math.pi) + delta
        loss = -logp.mean()
        nfe_f = field.nfe
        opt.zero_grad()
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt)
            fwd_nfe.append(nfe_f)
            total_nfe.append(field.nfe)
            losses.append(loss.item())
    print(json.dumps({
        "peer": "torchdiffeq " + ("odeint_adjoint" if a.adjoint else "odeint (backprop)"),
        "torch": torch.__version__, "threads": a.threads,
        "step_s_median": float(np.median(times)), "step_s_mean": float(np.mean(times)),
        "forward_nfe_mean": float(np.mean(fwd_nfe)),
        "total_nfe_mean": float(np.mean(total_nfe)), "loss_last": losses[-1],
    }))


if __name__ == "__main__":
    main()
