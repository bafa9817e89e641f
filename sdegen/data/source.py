"""`DataSource`: what training, sampling and evaluation need of a dataset, whatever its world
(toy 2D, the sphere, images) — a jit-able batch sampler, a held-out test set, the event shape and
the manifold the data live on. `config.build_data` is the one place that maps `data.name` to a
source; the training loop and the CLI see only this interface.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ..manifolds import Euclidean


class DataSource(eqx.Module):
    """A dataset as the training loop sees it.

    `train_batch(key, n)` is pure and jit-able (it is called inside the compiled training step);
    `test_set(key, n)` returns up to `n` held-out examples. `shape` is one example's shape,
    `manifold` the space it lives on (`Euclidean()` on R^d, `Sphere()` on S²)."""

    shape: tuple[int, ...] = eqx.field(static=True)
    manifold: object = eqx.field(static=True)

    def train_batch(self, key: PRNGKeyArray, n: int) -> Array:
        raise NotImplementedError

    def test_set(self, key: PRNGKeyArray, n: int) -> Array:
        raise NotImplementedError


class AnalyticSource(DataSource):
    """A distribution we can sample without end (toy 2D, synthetic mixtures): train and test
    draws come from the same sampler under independent keys."""

    sampler: Callable = eqx.field(static=True)

    def __init__(self, sampler: Callable, shape: tuple[int, ...], manifold=None):
        self.sampler = sampler
        self.shape = tuple(shape)
        self.manifold = Euclidean() if manifold is None else manifold

    def train_batch(self, key, n):
        return self.sampler(key, n)

    def test_set(self, key, n):
        return self.sampler(key, n)


class ArraySource(DataSource):
    """A finite dataset (earth events, images): train batches are drawn with replacement from
    the training split; the test set is the held-out split (its first `n` examples)."""

    train: Array
    test: Array

    def __init__(self, train, test, manifold=None):
        self.train = jnp.asarray(train)
        self.test = jnp.asarray(test)
        self.shape = tuple(self.train.shape[1:])
        self.manifold = Euclidean() if manifold is None else manifold

    def train_batch(self, key, n):
        idx = jax.random.randint(key, (n,), 0, self.train.shape[0])
        return self.train[idx]

    def test_set(self, key, n):
        del key
        return self.test[:n]


class DequantizedSource(ArraySource):
    """Integer-valued data (image pixels with `levels` grey levels) made continuous by uniform
    dequantisation, x = (k + u) / levels with u ~ U[0, 1)^D (Theis, van den Oord & Bethge 2016,
    Sec. 3.1), so values lie in [0, 1). A continuous density p on [0, 1)^D then bounds the
    discrete log-likelihood: log P(k) ≥ E_u[log p(x)] − D log(levels).

    The test set is dequantised with the key passed to `test_set`, so evaluation is seeded."""

    levels: int = eqx.field(static=True)

    def __init__(self, train, test, levels: int):
        super().__init__(train, test)
        self.levels = int(levels)

    def _dequantize(self, key, k):
        u = jax.random.uniform(key, k.shape)
        return (k.astype(u.dtype) + u) / self.levels

    def train_batch(self, key, n):
        k1, k2 = jax.random.split(key)
        return self._dequantize(k2, super().train_batch(k1, n))

    def test_set(self, key, n):
        return self._dequantize(key, self.test[:n])


class LabelledSource(DataSource):
    """Labelled integer-valued data (e.g. digit images with their classes): batches are
    `(x, y)` pairs, x dequantised as in `DequantizedSource` (or used as is with `levels=0`),
    y integer labels in 0..num_classes-1 — for class-conditional models and classifiers."""

    train: Array
    train_labels: Array
    test: Array
    test_labels: Array
    levels: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)

    def __init__(self, train, train_labels, test, test_labels, levels: int, num_classes: int):
        self.train, self.test = jnp.asarray(train), jnp.asarray(test)
        self.train_labels = jnp.asarray(train_labels, dtype=jnp.int32)
        self.test_labels = jnp.asarray(test_labels, dtype=jnp.int32)
        self.levels, self.num_classes = int(levels), int(num_classes)
        self.shape = tuple(self.train.shape[1:])
        self.manifold = Euclidean()

    def _continuous(self, key, k):
        if not self.levels:
            return k
        u = jax.random.uniform(key, k.shape)
        return (k.astype(u.dtype) + u) / self.levels

    def train_batch(self, key, n):
        k1, k2 = jax.random.split(key)
        idx = jax.random.randint(k1, (n,), 0, self.train.shape[0])
        return self._continuous(k2, self.train[idx]), self.train_labels[idx]

    def test_set(self, key, n):
        return self._continuous(key, self.test[:n]), self.test_labels[:n]
