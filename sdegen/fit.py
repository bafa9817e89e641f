"""`sdegen.fit`: THE training loop, over objects — a loss, a model, data and an optax optimizer.

Everything `sdegen train` does lives here, so a researcher's own process, network and loss get
all of it: EMA of the parameters with warm-up, verified atomic orbax checkpoints
(`sdegen.checkpoints`), bitwise resume from a run directory (call `fit` again with more `steps`),
a guard that stops on (or skips) a non-finite loss, gradient or parameter, data-parallel
sharding over a 1-D `jax.sharding.Mesh`, tqdm progress and `metrics.jsonl`.

Randomness is a pure function of (key, step): with `data_key, loss_key = jax.random.split(key)`,
step k draws its batch with `fold_in(data_key, k)` and its loss noise with `fold_in(loss_key, k)`,
so a resumed run replays exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Key, PRNGKeyArray
from tqdm.auto import tqdm

from . import checkpoints as ckpt
from .errors import ConfigError, TrainingError

NONFINITE = ("stop", "skip")


class BatchLoss(eqx.Module):
    """Marks a loss that sees the whole batch: `fn(model, batch, key) -> scalar`.

    Use it for objectives whose examples interact — minibatch optimal-transport couplings
    (OT-CFM), one augmented ODE solve per batch (CNF maximum likelihood), a GAN's discriminator
    and generator terms — or for a labelled batch handled as a whole. A plain callable passed to
    `fit` is a per-example loss instead."""

    fn: Callable

    def __call__(self, model, batch, key):
        return self.fn(model, batch, key)


def mean_loss(loss: Callable, model, batch, key: PRNGKeyArray) -> jax.Array:
    """The batch loss of a per-example `loss(model, example, key)`: its mean over the batch, one
    independent key per example (`jax.random.split(key, n)`). `batch` is an array `(n, *d)` or a
    pytree of them sharing the leading axis (e.g. `(x, y)` for labelled data): each example is the
    same pytree without that axis."""
    if isinstance(loss, BatchLoss):
        return loss(model, batch, key)
    n = jax.tree_util.tree_leaves(batch)[0].shape[0]
    keys = jax.random.split(key, n)
    return jnp.mean(jax.vmap(loss, in_axes=(None, 0, 0))(model, batch, keys))


def adam(lr: float = 2e-3, *, warmup: int = 200, grad_clip: float = 1.0,
         schedule: str = "constant", steps: int | None = None) -> optax.GradientTransformation:
    """Adam (Kingma & Ba 2015) after global-norm clipping, with linear warm-up to `lr`, then
    constant or (`schedule="cosine"`) cosine decay to lr/100 at `steps` (Loshchilov & Hutter
    2017, SGDR eq. 5 without restarts). `fit`'s default optimizer, and `sdegen train`'s."""
    warmup = max(warmup, 1)
    if schedule == "cosine":
        if steps is None:
            raise ValueError("schedule='cosine' decays to lr/100 at `steps`; pass steps=")
        sched = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1),
                                                   lr / 100)
    elif schedule == "constant":
        sched = optax.linear_schedule(0.0, lr, warmup)
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose 'constant' or 'cosine'")
    return optax.chain(optax.clip_by_global_norm(grad_clip), optax.adam(sched))


def as_sampler(data: Any) -> Callable[[PRNGKeyArray, int], Any]:
    """`(key, n) -> batch` for any of `fit`'s data forms: a `DataSource` (its `train_batch`), a
    callable `(key, n) -> batch`, or examples in memory — an array `(N, *d)` or a pytree of
    arrays with a shared leading axis, drawn with replacement."""
    if hasattr(data, "train_batch"):
        return data.train_batch
    if callable(data):
        return data
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves or not all(hasattr(a, "shape") and getattr(a, "ndim", 0) >= 1 for a in leaves):
        raise TypeError(f"data must be a DataSource, a callable (key, n) -> batch, or an array of "
                        f"examples (N, *d); got {type(data).__name__}")
    sizes = {a.shape[0] for a in leaves}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"data arrays must share one non-empty leading (example) axis, got "
                         f"lengths {sorted(sizes)}")
    examples = jax.tree_util.tree_map(jnp.asarray, data)
    (count,) = sizes

    def draw(key, n):
        idx = jax.random.randint(key, (n,), 0, count)
        return jax.tree_util.tree_map(lambda a: a[idx], examples)

    return draw


def device_mesh(devices: int, batch_size: int) -> jax.sharding.Mesh | None:
    """A 1-D device mesh, axis "data", for data-parallel training over `devices` devices (0: all
    visible ones), or None for one device. With `jax.distributed.initialize()` called first,
    `jax.devices()` spans every host, so the same mesh is multi-host."""
    available = jax.devices()
    n = devices or len(available)
    if n > len(available):
        raise ConfigError(f"train.devices={n} but only {len(available)} devices are visible "
                          f"({available[0].platform}); set train.devices <= {len(available)}")
    if n == 1:
        return None
    if batch_size % n:
        raise ConfigError(f"train.batch_size={batch_size} does not divide over {n} devices; "
                          f"set train.batch_size to a multiple of {n} (or train.devices=1)")
    return jax.sharding.Mesh(np.array(available[:n]), ("data",))


@dataclass
class TrainState:
    """What a checkpoint holds: the model, the optimizer state, the EMA parameters, the step."""

    model: Any
    opt_state: Any
    ema: Any
    step: int


def initial_state(model, optimizer: optax.GradientTransformation) -> TrainState:
    params = eqx.filter(model, eqx.is_inexact_array)
    return TrainState(model, optimizer.init(params), params, 0)


def _payload(state: TrainState) -> dict:
    return {
        "params": eqx.filter(state.model, eqx.is_inexact_array),
        "opt_state": state.opt_state,
        "ema": state.ema,
    }


def restore_verified(run_dir: str | Path, state: TrainState,
                     step: int | None = None) -> tuple[TrainState, ckpt.Restored]:
    """`restore`, also returning what `checkpoints.restore` found (metadata, skipped steps)."""
    got = ckpt.restore(Path(run_dir) / "checkpoints", _payload(state), step)
    _, static = eqx.partition(state.model, eqx.is_inexact_array)
    p = got.state
    return TrainState(eqx.combine(p["params"], static), p["opt_state"], p["ema"], got.step), got


def restore(run_dir: str | Path, state: TrainState, step: int | None = None) -> TrainState:
    """Restore the newest intact checkpoint (or `step`) of `run_dir` into `state`'s structure.
    Partly written or corrupt steps are skipped (`sdegen.checkpoints`); a checkpoint of another
    model is refused with the leaves that differ."""
    return restore_verified(run_dir, state, step)[0]


def ema_model(state: TrainState):
    """The model with its EMA parameters."""
    _, static = eqx.partition(state.model, eqx.is_inexact_array)
    return eqx.combine(state.ema, static)


def _set_aside(run_dir: Path, skipped: list[tuple[int, str]], resumed: int) -> None:
    """Move corrupt steps newer than the resumed one out of `checkpoints/` (orbax would not
    save a step that already exists) into `checkpoints_corrupt/`, keeping them for inspection."""
    for s, why in skipped:
        if s <= resumed:
            continue
        dest = run_dir / "checkpoints_corrupt" / f"{s}"
        dest.parent.mkdir(exist_ok=True)
        k = 0
        while dest.exists():
            k += 1
            dest = dest.with_name(f"{s}.{k}")
        (run_dir / "checkpoints" / str(s)).rename(dest)
        print(f"checkpoint {s} is not intact ({why}); moved to {dest}")


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the records up to the resumed `step`; drop lines that do not parse (a run killed
    while writing leaves a partial last line)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) \
                and record["step"] <= step:
            keep.append(line)
    ckpt.write_atomic(path, "".join(ln + "\n" for ln in keep))


def prepare_run_dir(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"out_dir '{run_dir}' is a file, not a directory; set out_dir to a "
                          "directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create run directory '{run_dir}' ({err.strerror}); set "
                          "out_dir to a writable directory") from None


def has_checkpoint(run_dir: str | Path) -> bool:
    d = Path(run_dir) / "checkpoints"
    return d.is_dir() and ckpt.manager(d).latest_step() is not None


def _split_key(key) -> tuple[jax.Array, jax.Array]:
    key = jnp.asarray(key)
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):  # legacy uint32 keys
        key = jax.random.wrap_key_data(key)
    if key.shape == (2,):
        return key[0], key[1]
    if key.shape == ():
        data_key, loss_key = jax.random.split(key)
        return data_key, loss_key
    raise TypeError(f"key must be a PRNG key (jax.random.key(seed)) or an array of two keys "
                    f"(data, loss), got an array of {key.shape} keys")


def _key_fingerprint(data_key, loss_key) -> list[int]:
    return [int(v) for v in np.asarray(jax.random.key_data(jnp.stack([data_key, loss_key])))
            .ravel()]


@dataclass
class FitResult:
    """What `fit` returns: the trained `model`, its EMA twin `ema_model` (use it to sample and
    evaluate), the last `step`, the optimizer state, the logged `losses` of this call as
    `(step, mean loss)` pairs, the number of `skipped` non-finite updates and the `run_dir`."""

    model: Any
    ema_model: Any
    step: int
    opt_state: Any
    losses: list[tuple[int, float]]
    skipped: int
    run_dir: Path | None


def fit(
    loss: Callable,
    model: Any,
    data: Any,
    *,
    key: PRNGKeyArray | Key[Array, "2"],
    steps: int,
    batch_size: int,
    optimizer: optax.GradientTransformation | None = None,
    ema_decay: float = 0.999,
    run_dir: str | Path | None = None,
    ckpt_every: int = 1000,
    keep: int = 3,
    log_every: int = 100,
    devices: int = 1,
    on_nonfinite: str = "stop",
    max_skips: int = 10,
    progress: bool = True,
    name: str = "fit",
    metadata: dict | None = None,
) -> FitResult:
    """Train `model` on `loss` over `data` for `steps` optimizer steps.

    **Arguments:**

    - `loss`: a per-example scalar `loss(model, example, key)` — `fit` vmaps it over the batch
      with one key per example and averages (`mean_loss`) — or `BatchLoss(fn)` for a loss of the
      whole batch `fn(model, batch, key)` (OT-CFM, CNF maximum likelihood, GANs).
    - `model`: an `eqx.Module` (any pytree); its inexact arrays are trained.
    - `data`: a `sdegen.data.DataSource`, an array of examples `(N, *d)` (or a pytree of them,
      e.g. `(x, y)` for labelled data), or any callable `(key, n) -> batch` (jit-able).
    - `key`: a PRNG key, split into a data key and a loss key (or an array of those two keys).
    - `steps`, `batch_size`; `optimizer`: any optax transformation (default: `adam()`, Adam
      with clipping at 1 and 200 warm-up steps to 2e-3).
    - `ema_decay`: EMA of the parameters with the usual warm-up, decay min(ema_decay,
      (1+k)/(10+k)) at step k, so early averages do not carry the random initialisation.
    - `run_dir`: where `checkpoints/` (every `ckpt_every` steps and at the end, `keep` newest)
      and `metrics.jsonl` (every `log_every` steps) go. When it already holds a checkpoint, the
      run resumes from the newest intact one — bitwise as if never stopped — so calling `fit`
      again with more `steps` continues. None: nothing is written.
    - `devices`: data-parallel over this many devices (0: all visible): the batch is sharded
      over a 1-D mesh, the parameters replicated.
    - `on_nonfinite`: a non-finite loss, gradient or parameter `"stop"`s the run (naming the
      step and the last good checkpoint) or is `"skip"`ped (the update is dropped) up to
      `max_skips` times in a row.
    - `progress`: a tqdm bar titled `name`; `metadata`: extra JSON saved with each checkpoint.
    """
    if on_nonfinite not in NONFINITE:
        raise ValueError(f"on_nonfinite must be one of {NONFINITE}, got {on_nonfinite!r}")
    for what, value in (("steps", steps), ("batch_size", batch_size), ("ckpt_every", ckpt_every),
                        ("log_every", log_every), ("keep", keep)):
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"{what} must be a positive integer, got {value!r}")
    if not 0.0 <= ema_decay <= 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1], got {ema_decay}")
    data_key, loss_key = _split_key(key)
    sampler = as_sampler(data)
    opt = adam(steps=steps) if optimizer is None else optimizer
    state = initial_state(model, opt)
    fingerprint = _key_fingerprint(data_key, loss_key)
    mngr = metrics_path = ckpt_dir = None
    if run_dir is not None:
        run_dir = Path(run_dir)
        prepare_run_dir(run_dir)
        ckpt_dir, metrics_path = run_dir / "checkpoints", run_dir / "metrics.jsonl"
        if has_checkpoint(run_dir):
            state, got = restore_verified(run_dir, state)
            saved = got.meta.get("fit_key")
            if saved is not None and saved != fingerprint:
                raise ConfigError(f"run dir '{run_dir}' holds a run trained with another key; "
                                  "pass the same key to resume, or a new run_dir")
            _set_aside(run_dir, got.skipped, state.step)
            _truncate_metrics(metrics_path, state.step)
            print(f"resuming {run_dir} from step {state.step}")
        elif metrics_path.exists():  # killed before its first checkpoint: start afresh
            metrics_path.unlink()
        mngr = ckpt.manager(ckpt_dir, keep)

    params, static = eqx.partition(state.model, eqx.is_inexact_array)
    opt_state, ema = state.opt_state, state.ema
    mesh = device_mesh(devices, batch_size)
    if mesh is not None:  # data parallel: replicate the state, shard each batch over "data"
        P = jax.sharding.PartitionSpec
        replicated = jax.sharding.NamedSharding(mesh, P())
        params, opt_state, ema = jax.device_put((params, opt_state, ema), replicated)
        batch_sharding = jax.sharding.NamedSharding(mesh, P("data"))
        print(f"data parallel over {mesh.size} {mesh.devices.flat[0].platform} devices: "
              f"{batch_size // mesh.size} examples per device")

    @eqx.filter_jit
    def step_fn(params, opt_state, ema, step):
        batch = sampler(jax.random.fold_in(data_key, step), batch_size)
        if mesh is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)

        def loss_fn(p):
            return mean_loss(loss, eqx.combine(p, static), batch,
                             jax.random.fold_in(loss_key, step))

        value, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        # a finite loss with non-finite gradients or parameters is a failure too
        finite = jnp.isfinite(optax.tree.norm(grads)) & jnp.isfinite(optax.tree.norm(params))
        value = jnp.where(finite, value, jnp.nan)
        # EMA with the usual warm-up (min(decay, (1+k)/(10+k))): with a fixed 0.999 the random
        # initialisation still weighs 22% after 1500 steps.
        d = jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))
        ema = jax.tree_util.tree_map(lambda e, p: d * e + (1 - d) * p, ema, params)
        return params, opt_state, ema, value

    start = state.step
    skip = on_nonfinite == "skip"
    bar = tqdm(total=steps, initial=min(start, steps), desc=name, disable=not progress,
               dynamic_ncols=True)
    window, t0, skips_in_row, skipped, losses = [], time.perf_counter(), 0, 0, []
    log = metrics_path.open("a") if metrics_path is not None else None
    try:
        for step in range(start + 1, steps + 1):
            new = step_fn(params, opt_state, ema, jnp.asarray(step))
            value = float(new[3])
            if math.isfinite(value):
                params, opt_state, ema = new[:3]
                skips_in_row = 0
                window.append(value)
            else:  # non-finite loss, gradients or parameters: this update is not kept
                skips_in_row += 1
                skipped += 1
                if not skip or skips_in_row > max_skips:
                    last = mngr.latest_step() if mngr is not None else None
                    where = (f"last good checkpoint: {ckpt_dir}/{last}" if last is not None
                             else "no checkpoint was written yet")
                    why = (f"{skips_in_row} steps in a row, over train.max_skips={max_skips}"
                           if skip else "on_nonfinite=stop")
                    raise TrainingError(
                        f"loss or gradient is {value} at step {step} ({where}; {why}); lower "
                        "the learning rate (train.lr) or train.grad_clip, check the data for "
                        "NaN, or skip such updates (train.on_nonfinite=skip)"
                    )
                if log is not None:
                    log.write(json.dumps({"step": step, "skipped": "non-finite"}) + "\n")
            if window and (step % log_every == 0 or step == steps):
                record = {"step": step, "loss": sum(window) / len(window),
                          "wall_s": round(time.perf_counter() - t0, 3)}
                losses.append((step, record["loss"]))
                if log is not None:
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                window = []
            if mngr is not None and (step % ckpt_every == 0 or step == steps):
                log.flush()
                state = TrainState(eqx.combine(params, static), opt_state, ema, step)
                ckpt.save(mngr, step, _payload(state), {"fit_key": fingerprint,
                                                        **(metadata or {})})
            bar.update(1)
    finally:
        bar.close()
        if log is not None:
            log.close()
        if mngr is not None:
            mngr.close()
    final = TrainState(eqx.combine(params, static), opt_state, ema, max(start, steps))
    note = f" ({skipped} non-finite updates skipped)" if skipped else ""
    where = (f"checkpoints in {ckpt_dir}, losses in {metrics_path}" if run_dir is not None
             else "no run_dir, nothing written")
    print(f"trained {name.removeprefix('train ')}: {final.step} steps{note}; {where}")
    return FitResult(final.model, ema_model(final), final.step, opt_state, losses, skipped,
                     run_dir)


__all__ = ["fit", "FitResult", "BatchLoss", "mean_loss", "adam", "as_sampler", "device_mesh",
           "TrainState", "restore", "restore_verified", "ema_model"]
