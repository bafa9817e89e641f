"""Drawing (or scoring) many examples in chunks of a fixed size with one compilation: every
chunk is padded to the same batch size (the padding rows repeat the chunk's own rows and are
dropped afterwards), so the jitted solve sees one shape, and a tqdm bar counts examples with the
solve's NFE in its postfix. Used by `sdegen sample RUN --batch-size B` (`runs.core.solve`,
`runs.families.draw`) and by the families' chunked likelihood estimate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from ..errors import ConfigError


def check_batch_size(batch_size: int | None) -> None:
    """A one-line error for a batch size that is not a positive integer (None: one batch)."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ConfigError(f"--batch-size must be a positive integer, got {batch_size!r}; e.g. "
                          "--batch-size 1000 (omit it to draw all samples in one batch)")


def progress_bar(total: int, desc: str, enabled: bool) -> tqdm:
    """The bar of a chunked draw: `total` examples."""
    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled, leave=True,
                dynamic_ncols=True)


def _pad(tree: Any, size: int) -> Any:
    """Each leaf of `tree` (leading axis m ≤ size) grown to `size` rows by repeating its rows."""
    def grow(a):
        m = a.shape[0]
        return a if m == size else a[np.arange(size) % m]

    return jax.tree_util.tree_map(grow, tree)


def map_chunks(fn: Callable[[int, Any], tuple[Any, int | None]], inputs: Any, n: int,
               batch_size: int, bar: tqdm | None = None) -> tuple[np.ndarray, list[int | None]]:
    """`fn(i, chunk) -> (out, nfe)` over the chunks of `inputs` (a pytree whose leaves have `n`
    rows), each padded to `batch_size` rows so that `fn` compiles once; returns the outputs'
    first rows concatenated (as NumPy, `n` rows) and the NFE of each chunk. `bar` advances by
    each chunk's size and shows `chunk i/k` and the NFE."""
    k = -(-n // batch_size)
    outs, nfes = [], []
    for i, start in enumerate(range(0, n, batch_size)):
        m = min(batch_size, n - start)
        chunk = jax.tree_util.tree_map(lambda a, s=start, m=m: a[s:s + m], inputs)
        out, nfe = fn(i, _pad(chunk, batch_size))
        outs.append(np.asarray(out)[:m])  # to the host: the bar then shows finished work
        nfes.append(nfe)
        if bar is not None:
            bar.set_postfix_str(f"chunk {i + 1}/{k}" + (f", NFE {nfe}" if nfe is not None else ""))
            bar.update(m)
    return np.concatenate(outs), nfes
