"""Time and NFE per FFJORD-style CNF maximum-likelihood training step: sdegen (Diffrax) against
torchdiffeq at the same network size, batch, solver and tolerances, measured in the same run.

The step (Grathwohl et al. 2019, FFJORD): a batch of 8gaussians, the augmented ODE
d/dt [x, Δ] = [v, ∇·v] from t = 0 to 1 with dopri5 at rtol = atol = `--tol`, loss
-mean log p(x), gradient, one Adam update. Field: MLP on [x, t] (tanh), `--width` × `--depth`,
d = 2. sdegen rows: `sdegen.objectives.maxlik_loss` (the same augmented ODE as `log_prob`) under
`jax.value_and_grad`, gradients by `RecursiveCheckpointAdjoint` (backprop through the solver),
Hutchinson (one Rademacher probe per example) and exact trace. Peer rows: torchdiffeq `odeint`
(backprop through the solver, the like-for-like row) and `odeint_adjoint`, run in
benchmarks/peers/.venv (`benchmarks/peers/torchdiffeq_cnf.py`; skipped with a note if that
environment is missing). Forward NFE: field evaluations of the forward solve (sdegen: from the
solver's step counts, Dopri5 6 per step + 1; torchdiffeq: counted calls); total NFE for the peer
includes the backward pass's calls.

    python benchmarks/cnf_training.py [--width 64] [--depth 3] [--batch 256] [--tol 1e-3]

Prints a table and writes JSON (default benchmarks/results/cnf_training.json). Timings are
medians over `--steps` steps after `--warmup` (compile) steps, on whatever CPU this runs on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import sdegen
from sdegen.augmented import augmented_solve
from sdegen.data import TOY_DATASETS
from sdegen.objectives import maxlik_loss
from sdegen.solvers import adaptive, stats_of

ROOT = Path(__file__).resolve().parent
PEER_PY = ROOT / "peers" / ".venv" / "bin" / "python"


class ConcatMLP(eqx.Module):
    """v(x, t) = MLP([x, t]) with tanh, the FFJORD toy field shape (and the peer's)."""

    mlp: eqx.nn.MLP

    def __init__(self, width, depth, key):
        self.mlp = eqx.nn.MLP(3, 2, width, depth, activation=jnp.tanh, key=key)

    def __call__(self, x, t):
        return self.mlp(jnp.concatenate([x, jnp.reshape(t, (1,)).astype(x.dtype)]))


def run_sdegen(args, trace: str) -> dict:
    process = sdegen.CNF()
    field = ConcatMLP(args.width, args.depth, jax.random.key(0))
    opt = optax.adam(1e-3)
    params, static = eqx.partition(field, eqx.is_inexact_array)
    opt_state = opt.init(params)
    kw = dict(trace=trace, rtol=args.tol, atol=args.tol, solver="dopri5", t_eps=0.0)

    @jax.jit
    def step(params, opt_state, key):
        kx, kl = jax.random.split(key)
        x = TOY_DATASETS["8gaussians"](kx, args.batch).astype(jnp.float32)
        loss, grads = jax.value_and_grad(
            lambda p: maxlik_loss(process, eqx.combine(p, static), x, kl, **kw))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def forward(params, key):  # the same forward solve, for its step count (not timed)
        kx, kl = jax.random.split(key)
        x = TOY_DATASETS["8gaussians"](kx, args.batch).astype(jnp.float32)
        probes = (jax.random.rademacher(kl, x.shape, dtype=x.dtype) if trace == "hutchinson"
                  else None)
        solver, controller = adaptive("dopri5", args.tol, args.tol)
        _, _, sol = augmented_solve(process, eqx.combine(params, static), x, probes,
                                    solver=solver, controller=controller, t_eps=0.0,
                                    max_steps=2048)
        return sol

    times, nfes, loss = [], [], None
    for i in range(args.warmup + args.steps):
        key = jax.random.key(i)
        if i >= args.warmup:
            nfes.append(stats_of(forward(params, key), adaptive("dopri5", 1, 1)[0]).nfe)
        t0 = time.perf_counter()
        params, opt_state, loss = step(params, opt_state, key)
        loss = float(loss)  # blocks
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    return {"name": f"sdegen maxlik_loss ({trace} trace)", "step_s_median": float(np.median(times)),
            "step_s_mean": float(np.mean(times)), "forward_nfe_mean": float(np.mean(nfes)),
            "total_nfe_mean": None, "loss_last": loss}


def run_peer(args, adjoint: bool) -> dict | None:
    if not PEER_PY.is_file():
        print(f"peer skipped: {PEER_PY} missing (see benchmarks/peers/requirements.txt)")
        return None
    cmd = [str(PEER_PY), str(ROOT / "peers" / "torchdiffeq_cnf.py"), "--width", str(args.width),
           "--depth", str(args.depth), "--batch", str(args.batch), "--tol", str(args.tol),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads",
           str(args.peer_threads)]
    if adjoint:
        cmd.append("--adjoint")
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        print(f"peer failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["name"] = r.pop("peer")
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--peer-threads", type=int, default=1,
                   help="torch intra-op threads (measured: 2 threads on a loaded 2-core box "
                        "spin-wait, 17 s/step instead of 0.44 s)")
    p.add_argument("--out", default=str(ROOT / "results" / "cnf_training.json"))
    args = p.parse_args()
    rows = [run_sdegen(args, "hutchinson"), run_sdegen(args, "exact"),
            run_peer(args, adjoint=False), run_peer(args, adjoint=True)]
    rows = [r for r in rows if r is not None]
    print(f"\nCNF max-lik training step: width {args.width}, depth {args.depth}, batch "
          f"{args.batch}, dopri5 rtol=atol={args.tol}, float32, {args.steps} timed steps\n")
    print("| implementation | step (s, median) | step (s, mean) | forward NFE | total NFE |"
          " loss |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        tot = "-" if r.get("total_nfe_mean") is None else f"{r['total_nfe_mean']:.0f}"
        print(f"| {r['name']} | {r['step_s_median']:.4f} | {r['step_s_mean']:.4f} | "
              f"{r['forward_nfe_mean']:.0f} | {tot} | {r['loss_last']:.3f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"settings": vars(args), "rows": rows,
                               "jax": jax.__version__, "python": sys.version.split()[0]},
                              indent=2))
    print(f"\n-> {out}")


if __name__ == "__main__":
    main()
