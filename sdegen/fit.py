"""`sdegen.fit`: THE training loop, over objects — a loss, a model, data and an optax optimizer.

Everything `sdegen train` does lives here, so a researcher's own process, network and loss get
all of it: EMA of the parameters with warm-up, verified atomic orbax checkpoints
(`sdegen.checkpoints`), bitwise resume from a run directory (call `fit` again with more `steps`),
a guard that stops on (or skips) a non-finite loss, gradient or parameter, data-parallel
sharding over a 1-D `jax.sharding.Mesh`, tqdm progress, `metrics.jsonl` (loss, learning rate,
gradient norm, skipped updates, steps/s), `loss.png` and optional tracker writers
(`sdegen.loggers`).

Randomness is a pure function of (key, step): with `data_key, loss_key = jax.random.split(key)`,
step k draws its batch with `fold_in(data_key, k)` and its loss noise with `fold_in(loss_key, k)`,
so a resumed run replays exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
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
from .distributed import barrier
from .errors import ConfigError, TrainingError

NONFINITE = ("stop", "skip")
LOSS_PNG_EVERY_S = 10.0
"""`loss.png` is redrawn with a checkpoint when the last drawing is this many seconds old (a
drawing takes ~0.3 s: free at real checkpoint intervals, not at a checkpoint every step), and
always with the last one."""


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


def adam_schedule(lr: float = 2e-3, *, warmup: int = 200, schedule: str = "constant",
                  steps: int | None = None) -> optax.Schedule:
    """The learning rate of `adam` at update count k: linear warm-up from 0 to `lr` over
    `warmup` updates, then constant or (`schedule="cosine"`) cosine decay to lr/100 at `steps`
    (Loshchilov & Hutter 2017, SGDR eq. 5 without restarts). Pass it to `fit(lr_schedule=)`
    with an `adam(...)` of the same settings to have the learning rate logged."""
    warmup = max(warmup, 1)
    if schedule == "cosine":
        if steps is None:
            raise ValueError("schedule='cosine' decays to lr/100 at `steps`; pass steps=")
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1),
                                                  lr / 100)
    if schedule == "constant":
        return optax.linear_schedule(0.0, lr, warmup)
    raise ValueError(f"unknown schedule {schedule!r}; choose 'constant' or 'cosine'")


def adam(lr: float = 2e-3, *, warmup: int = 200, grad_clip: float = 1.0,
         schedule: str = "constant", steps: int | None = None) -> optax.GradientTransformation:
    """Adam (Kingma & Ba 2015) after global-norm clipping, with the learning rate of
    `adam_schedule` (warm-up, then constant or cosine decay). `fit`'s default optimizer, and
    `sdegen train`'s."""
    sched = adam_schedule(lr, warmup=warmup, schedule=schedule, steps=steps)
    return optax.chain(optax.clip_by_global_norm(grad_clip), optax.adam(sched))


def _learning_rate(schedule: Callable | None, old_opt, new_opt, step) -> jax.Array | None:
    """The learning rate the update of this step used, on the device: `schedule` at the
    optimizer's update count before it (the first `count` in its state — optax schedules are
    evaluated there, and a skipped update does not advance it), else the `learning_rate`
    an `optax.inject_hyperparams` optimizer put in its new state, else None (not logged)."""
    if schedule is not None:
        counts = [x for path, x in jax.tree_util.tree_flatten_with_path(old_opt)[0]
                  if path and getattr(path[-1], "name", None) == "count"]
        return jnp.asarray(schedule(counts[0] if counts else step - 1))
    for path, x in jax.tree_util.tree_flatten_with_path(new_opt)[0]:
        if (len(path) >= 2 and getattr(path[-2], "name", None) == "hyperparams"
                and getattr(path[-1], "key", None) == "learning_rate"):
            return jnp.asarray(x)
    return None


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


def _truncate_metrics(path: Path, step: int) -> int:
    """Keep the records up to the resumed `step`; drop lines that do not parse (a run killed
    while writing leaves a partial last line). Returns the number of skipped-update records
    kept (the run's `skipped_total` so far)."""
    if not path.exists():
        return 0
    keep, skips = [], 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) \
                and record["step"] <= step:
            keep.append(line)
            skips += "skipped" in record
    ckpt.write_atomic(path, "".join(ln + "\n" for ln in keep))
    return skips


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


def _replicate(tree, mesh: jax.sharding.Mesh | None):
    """Fresh device copies of `tree`'s arrays — `fit` donates its state's buffers, so the
    caller's model must not share them — replicated over `mesh` when there is one. The copies
    are built from each process's own (identical) value with no cross-process traffic."""
    if mesh is None:
        return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), tree)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    def put(x):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, replicated, lambda idx: host[idx])

    return jax.tree_util.tree_map(put, tree)


def _check_processes(mesh: jax.sharding.Mesh | None) -> None:
    count = jax.process_count()
    if count > 1 and (mesh is None or mesh.size != jax.device_count()):
        raise ConfigError(f"{count} processes train one model over all {jax.device_count()} "
                          f"devices; set train.devices=0 (devices=0 in sdegen.fit)")


class _Signals:
    """While `fit` runs in the main thread: the first SIGTERM or SIGINT is recorded (the loop
    then writes a checkpoint and stops), a second SIGINT interrupts at once."""

    def __init__(self):
        self.received: str | None = None
        self._old: dict = {}

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False

    def agreed(self) -> str | None:
        """The signal, once every process has seen one (a collective: call it at the same
        step on every process)."""
        if jax.process_count() == 1:
            return self.received
        from jax.experimental import multihost_utils

        got = multihost_utils.process_allgather(np.int32(self.received is not None))
        return (self.received or "SIGTERM") if np.any(got) else None


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
    async_checkpoints: bool = False,
    lr_schedule: Callable[[Any], Any] | None = None,
    loggers: Sequence[Any] = (),
) -> FitResult:
    """Train `model` on `loss` over `data` for `steps` optimizer steps.

    **Arguments:**

    - `loss`: a per-example scalar `loss(model, example, key)` — `fit` vmaps it over the batch
      with one key per example and averages (`mean_loss`) — or `BatchLoss(fn)` for a loss of the
      whole batch `fn(model, batch, key)` (OT-CFM, CNF maximum likelihood, GANs).
    - `model`: an `eqx.Module` (any pytree); its inexact arrays are trained (on copies: `model`
      itself is left intact).
    - `data`: a `sdegen.data.DataSource`, an array of examples `(N, *d)` (or a pytree of them,
      e.g. `(x, y)` for labelled data), or any callable `(key, n) -> batch` (jit-able).
    - `key`: a PRNG key, split into a data key and a loss key (or an array of those two keys).
    - `steps`, `batch_size`; `optimizer`: any optax transformation (default: `adam()`, Adam
      with clipping at 1 and 200 warm-up steps to 2e-3).
    - `ema_decay`: EMA of the parameters with the usual warm-up, decay min(ema_decay,
      (1+k)/(10+k)) at step k, so early averages do not carry the random initialisation.
    - `run_dir`: where `checkpoints/` (every `ckpt_every` steps and at the end, `keep` newest),
      `metrics.jsonl` (every `log_every` steps) and `loss.png` (`sdegen.curves.loss_figure`,
      redrawn with each checkpoint, at most every `LOSS_PNG_EVERY_S` seconds but always at the
      end) go. When it already holds a checkpoint, the run resumes from the newest intact one
      — bitwise as if never stopped — so calling `fit` again with more `steps` continues.
      None: nothing is written.
    - `devices`: data-parallel over this many devices (0: all visible): the batch is sharded
      over a 1-D mesh, the parameters replicated. After `sdegen.distributed.initialize()` the
      devices of every process form the mesh (pass 0); process 0 writes `metrics.jsonl`, every
      process takes part in each checkpoint, as orbax requires.
    - `on_nonfinite`: a non-finite loss, gradient or parameter `"stop"`s the run (naming the
      step and the last good checkpoint) or is `"skip"`ped (the update is dropped) up to
      `max_skips` times in a row.
    - `progress`: a tqdm bar titled `name`; `metadata`: extra JSON saved with each checkpoint.
    - `async_checkpoints`: write checkpoints in the background (orbax async; the arrays are
      copied to the host before training goes on). A failed run still keeps its last committed
      checkpoint: a step becomes visible only once completely written.
    - `lr_schedule`: the optax schedule inside `optimizer`, so the learning rate can be logged
      (it is evaluated at the optimizer's update count). Not needed for the default optimizer,
      nor for an `optax.inject_hyperparams` one (its `learning_rate` is read from its state);
      otherwise `lr` is not logged.
    - `loggers`: tracker writers that receive each logged row on process 0 — names from
      `sdegen.loggers.LOGGERS` ("tensorboard", "wandb"; extras) or any objects with
      `log(step, metrics)` and `close()` (closed when `fit` returns or fails).

    **`metrics.jsonl`**, one row per logging step: `step`; `loss`, the mean over the steps since
    the previous row (skipped updates excluded); `wall_s` since this call began; `grad_norm`,
    the mean global norm of the raw gradients (before clipping) over the same steps; `lr`, the
    learning rate of the logged step's update; `skipped_total`, the skipped non-finite updates
    of the run so far; `steps_per_s` since the previous row (the first row includes the
    compile). A skipped update adds a row `{"step", "skipped": "non-finite"}`.

    **The step on the device.** Each step is one jitted call that donates the training state's
    buffers and keeps the non-finite guard on the device (a bad update leaves the state as it
    was; a stop freezes it). The host reads the losses back only on logging and checkpoint
    steps, then replays the guard's decisions step by step — the same skips, records and
    errors as checking every step. A SIGTERM or SIGINT (how clusters pre-empt) makes `fit`
    write a checkpoint at the current step and raise `TrainingError`; calling it again resumes.
    """
    if on_nonfinite not in NONFINITE:
        raise ValueError(f"on_nonfinite must be one of {NONFINITE}, got {on_nonfinite!r}")
    for what, value in (("steps", steps), ("batch_size", batch_size), ("ckpt_every", ckpt_every),
                        ("log_every", log_every), ("keep", keep)):
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"{what} must be a positive integer, got {value!r}")
    if not 0.0 <= ema_decay <= 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1], got {ema_decay}")
    mesh = device_mesh(devices, batch_size)
    _check_processes(mesh)
    primary = jax.process_index() == 0
    data_key, loss_key = _split_key(key)
    sampler = as_sampler(data)
    opt = adam(steps=steps) if optimizer is None else optimizer
    if optimizer is None and lr_schedule is None:
        lr_schedule = adam_schedule(steps=steps)
    state = initial_state(model, opt)
    fingerprint = _key_fingerprint(data_key, loss_key)
    mngr = metrics_path = ckpt_dir = None
    skipped_before = 0
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
            if primary:
                _set_aside(run_dir, got.skipped, state.step)
                skipped_before = _truncate_metrics(metrics_path, state.step)
                print(f"resuming {run_dir} from step {state.step}")
        elif primary and metrics_path.exists():  # killed before its first checkpoint: afresh
            metrics_path.unlink()
        barrier("sdegen.fit: run dir ready")
        mngr = ckpt.manager(ckpt_dir, keep, async_save=async_checkpoints)

    params, static = eqx.partition(state.model, eqx.is_inexact_array)
    int_dtype = jnp.asarray(0).dtype  # the step's dtype, as jnp.asarray(python int) has it
    # the carry: (params, opt_state, ema, step, non-finite steps in a row, halted)
    carry = _replicate((params, state.opt_state, state.ema, np.asarray(state.step, int_dtype),
                        np.int32(0), np.bool_(False)), mesh)
    if mesh is not None:  # data parallel: the state replicated, each batch sharded over "data"
        P = jax.sharding.PartitionSpec
        batch_sharding = jax.sharding.NamedSharding(mesh, P("data"))
        if primary:
            print(f"data parallel over {mesh.size} {mesh.devices.flat[0].platform} devices"
                  f"{f' in {jax.process_count()} processes' if jax.process_count() > 1 else ''}"
                  f": {batch_size // mesh.size} examples per device")
    skip = on_nonfinite == "skip"

    @eqx.filter_jit(donate="all")
    def step_fn(carry):
        params, opt_state, ema, step, in_row, halted = carry
        step = step + 1
        # the global batch, drawn identically on every process from (data_key, step); the
        # sharding constraint lets each device compute only its slice
        batch = sampler(jax.random.fold_in(data_key, step), batch_size)
        if mesh is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)

        def loss_fn(p):
            return mean_loss(loss, eqx.combine(p, static), batch,
                             jax.random.fold_in(loss_key, step))

        value, grads = jax.value_and_grad(loss_fn)(params)
        updates, new_opt = opt.update(grads, opt_state, params)
        new_params = eqx.apply_updates(params, updates)
        grad_norm = optax.tree.norm(grads)  # = optax.global_norm, logged
        lr = _learning_rate(lr_schedule, opt_state, new_opt, step)
        # a finite loss with non-finite gradients or parameters is a failure too
        finite = (jnp.isfinite(value) & jnp.isfinite(grad_norm)
                  & jnp.isfinite(optax.tree.norm(new_params)))
        value = jnp.where(finite, value, jnp.nan)
        # EMA with the usual warm-up (min(decay, (1+k)/(10+k))): with a fixed 0.999 the random
        # initialisation still weighs 22% after 1500 steps.
        d = jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))
        new_ema = jax.tree_util.tree_map(
            lambda e, p: d.astype(e.dtype) * e + (1 - d).astype(e.dtype) * p, ema, new_params)
        keep_it = finite & ~halted  # a non-finite update is not kept; a stopped run is frozen
        pick = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
            lambda a, b: jnp.where(keep_it, a, b), new, old)
        in_row = jnp.where(finite, 0, in_row + 1)
        halted = halted | (~finite & ((not skip) | (in_row > max_skips)))
        carry = (pick(new_params, params), pick(new_opt, opt_state), pick(new_ema, ema), step,
                 in_row, halted)
        return carry, (value, grad_norm, lr)

    start = state.step
    del state, params  # their buffers now belong to `carry`
    bar = tqdm(total=steps, initial=min(start, steps), desc=name, disable=not progress,
               dynamic_ncols=True)
    book = _Book(steps, log_every, skip, max_skips, bar, start, skipped_before)
    log = metrics_path.open("a") if metrics_path is not None and primary else None
    pending: list[tuple[int, Any]] = []
    drawn = -math.inf  # when loss.png was last drawn
    signals = _Signals()
    try:
        if primary:  # inside the try: a logger that fails to start still closes the others
            from .loggers import make_logger

            for spec in loggers:
                book.loggers.append(make_logger(spec, run_dir, name=name, config=metadata))
        with signals:
            for step in range(start + 1, steps + 1):
                carry, value = step_fn(carry)
                pending.append((step, value))
                bar.update(1)
                sync = step % log_every == 0 or step % ckpt_every == 0 or step == steps
                if not (sync or (signals.received and jax.process_count() == 1)):
                    continue
                values = jax.device_get([v for _, v in pending])
                for (s, _), (v, g, lr) in zip(pending, values, strict=True):
                    book.replay(s, float(v), log, lambda: _last_good(mngr, ckpt_dir),
                                grad_norm=float(g), lr=None if lr is None else float(lr))
                pending = []
                stop = signals.agreed()
                if mngr is not None and (step % ckpt_every == 0 or step == steps or stop):
                    if log is not None:
                        log.flush()
                    ckpt.save(mngr, step, _payload(_state(carry, static)),
                              {"fit_key": fingerprint, **(metadata or {})},
                              wait=not async_checkpoints)
                    if primary and (step == steps or stop
                                    or time.perf_counter() - drawn >= LOSS_PNG_EVERY_S):
                        _loss_figure(run_dir)
                        drawn = time.perf_counter()
                if stop:
                    if mngr is not None:
                        mngr.wait_until_finished()
                    where = (f"checkpoint {ckpt_dir}/{step} written; run again to resume"
                             if mngr is not None else "no run_dir, nothing written")
                    raise TrainingError(f"stopped by {stop} at step {step} ({where})")
    finally:
        bar.close()
        if log is not None:
            log.close()
        for logger in book.loggers:
            logger.close()
        if mngr is not None:
            mngr.close()  # waits for a checkpoint still being written
    if run_dir is not None and primary and not (run_dir / "loss.png").exists():
        _loss_figure(run_dir)  # e.g. a finished run called again with the same steps
    final = _state(carry, static)
    final.step = max(start, steps)
    note = f" ({book.skipped} non-finite updates skipped)" if book.skipped else ""
    where = (f"checkpoints in {ckpt_dir}, losses in {metrics_path}" if run_dir is not None
             else "no run_dir, nothing written")
    if primary:
        print(f"trained {name.removeprefix('train ')}: {final.step} steps{note}; {where}")
    return FitResult(final.model, ema_model(final), final.step, final.opt_state, book.losses,
                     book.skipped, run_dir)


def _state(carry, static) -> TrainState:
    params, opt_state, ema, step = carry[:4]
    return TrainState(eqx.combine(params, static), opt_state, ema, int(step))


def _loss_figure(run_dir: Path) -> None:
    from .curves import loss_figure

    loss_figure(run_dir)


def _last_good(mngr, ckpt_dir) -> str:
    if mngr is None:
        return "no checkpoint was written yet"
    mngr.wait_until_finished()
    last = mngr.latest_step()
    return (f"last good checkpoint: {ckpt_dir}/{last}" if last is not None
            else "no checkpoint was written yet")


class _Book:
    """The host's side of the non-finite guard and the logging, replayed step by step from the
    losses read back on a logging step: the same decisions the device took, the same records
    (`{"step", "skipped"}` per skipped update, `{"step", "loss", "wall_s", "grad_norm", "lr",
    "skipped_total", "steps_per_s"}` per logging step, also sent to `loggers`) and the same
    error as a loop that looked at every step."""

    def __init__(self, steps, log_every, skip, max_skips, bar, start=0, skipped_before=0):
        self.steps, self.log_every, self.skip, self.max_skips, self.bar = (
            steps, log_every, skip, max_skips, bar)
        self.window: list[float] = []
        self.grad_norms: list[float] = []
        self.losses: list[tuple[int, float]] = []
        self.loggers: list[Any] = []
        self.in_row = self.skipped = 0
        self.skipped_before = skipped_before
        self.t0 = self.t_last = time.perf_counter()
        self.step_last = start

    def replay(self, step: int, value: float, log, last_good: Callable[[], str], *,
               grad_norm: float = math.nan, lr: float | None = None) -> None:
        if math.isfinite(value):
            self.in_row = 0
            self.window.append(value)
            self.grad_norms.append(grad_norm)
        else:  # non-finite loss, gradients or parameters: this update was not kept
            self.in_row += 1
            self.skipped += 1
            if not self.skip or self.in_row > self.max_skips:
                why = (f"{self.in_row} steps in a row, over train.max_skips={self.max_skips}"
                       if self.skip else "on_nonfinite=stop")
                raise TrainingError(
                    f"loss or gradient is {value} at step {step} ({last_good()}; {why}); lower "
                    "the learning rate (train.lr) or train.grad_clip, check the data for "
                    "NaN, or skip such updates (train.on_nonfinite=skip)"
                )
            if log is not None:
                log.write(json.dumps({"step": step, "skipped": "non-finite"}) + "\n")
        if self.window and (step % self.log_every == 0 or step == self.steps):
            now = time.perf_counter()
            record = {"step": step, "loss": sum(self.window) / len(self.window),
                      "wall_s": round(now - self.t0, 3),
                      "grad_norm": sum(self.grad_norms) / len(self.grad_norms)}
            if lr is not None:
                record["lr"] = lr
            record["skipped_total"] = self.skipped_before + self.skipped
            rate = (step - self.step_last) / max(now - self.t_last, 1e-9)
            record["steps_per_s"] = float(f"{rate:.4g}")
            self.t_last, self.step_last = now, step
            self.losses.append((step, record["loss"]))
            if log is not None:
                log.write(json.dumps(record) + "\n")
                log.flush()
            for logger in self.loggers:
                logger.log(step, {k: v for k, v in record.items() if k != "step"})
            self.bar.set_postfix(loss=f"{record['loss']:.4f}")
            self.window, self.grad_norms = [], []


__all__ = ["fit", "FitResult", "BatchLoss", "mean_loss", "adam", "adam_schedule", "as_sampler",
           "device_mesh",
           "TrainState", "restore", "restore_verified", "ema_model"]
