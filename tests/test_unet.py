"""UNet field: shapes, time/label conditioning, gradients against finite differences, batch
equivariance under vmap, and the score/noise/EDM parameterisations on image shapes."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from sdegen import config as C
from sdegen.errors import ConfigError
from sdegen.fields import ScoreField
from sdegen.nets import Flattened, UNet
from sdegen.processes import VPSDE

SHAPE = (4, 4, 2)


def _tiny(num_classes=0, key=0):
    return UNet(SHAPE, key=jax.random.key(key), channels=4, channel_mults=(1, 2),
                num_res_blocks=1, attn_resolutions=(2,), num_classes=num_classes, max_groups=2,
                n_freq=4, max_freq=4.0)


def _perturb(model, key, scale=0.1):
    """Random parameters (the default init leaves nothing at zero, but perturbing makes the
    label embedding and every bias matter). One draw over the flattened parameters: a draw per
    leaf compiles a program per leaf shape, which costs most of a minute on 2 cores."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)
    noise = jax.random.normal(jax.random.key(key), flat.shape, flat.dtype)
    return eqx.combine(unravel(flat + scale * noise), static)


@eqx.filter_jit
def _outputs(net, xs, ts, ys):
    return jax.vmap(net)(xs, ts, ys)


def test_shape_conditioning_and_vmap_permutation_equivariance():
    net = _perturb(_tiny(num_classes=3), 1)
    x = jax.random.normal(jax.random.key(2), SHAPE)
    xs = jnp.stack([x, x, x, -x])
    ts = jnp.array([0.3, 0.7, 0.3, 0.9])
    ys = jnp.array([1, 1, 2, 0])
    out = _outputs(net, xs, ts, ys)
    assert out.shape == (4, *SHAPE) and np.all(np.isfinite(out))
    assert float(jnp.max(jnp.abs(out[0] - out[1]))) > 1e-4  # depends on t
    assert float(jnp.max(jnp.abs(out[0] - out[2]))) > 1e-4  # depends on y
    # a permutation of the batch permutes the outputs: examples do not interact under vmap
    perm = jnp.array([3, 2, 0, 1])
    np.testing.assert_allclose(_outputs(net, xs[perm], ts[perm], ys[perm]), out[perm],
                               rtol=1e-12, atol=1e-12)
    # y enters only through the embedding: y=None is the null label (index num_classes), and
    # without a class embedding y is ignored
    np.testing.assert_array_equal(net.embedding(0.3, None), net.embedding(0.3, 3))
    assert float(jnp.max(jnp.abs(net.embedding(0.3, 0) - net.embedding(0.3, 3)))) > 1e-3
    plain = _tiny(num_classes=0)
    np.testing.assert_array_equal(plain.embedding(0.3, 0), plain.embedding(0.3, None))
    with pytest.raises(ValueError, match="not divisible"):
        UNet((6, 6, 1), key=jax.random.key(0), channel_mults=(1, 2, 2))


@pytest.mark.slow  # a tiny UNet, but compiling its init and jvp takes minutes on 2 cores
def test_gradient_matches_finite_differences():
    """Reverse-mode gradients of a scalar of the output, w.r.t. the input and the parameters,
    against central differences along random directions (float64; one compile)."""
    net = _perturb(_tiny(num_classes=3), 3)
    x0 = jax.random.normal(jax.random.key(4), SHAPE)
    w = jax.random.normal(jax.random.key(5), SHAPE)
    params, static = eqx.partition(net, eqx.is_inexact_array)

    def f(p, x):
        return jnp.sum(w * eqx.combine(p, static)(x, 0.4, 1))

    value_and_grad = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    _, (gp, gx) = value_and_grad(params, x0)
    v = jax.random.normal(jax.random.key(6), SHAPE)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    vp = jax.tree.unflatten(tree, [jax.random.normal(k, p.shape, p.dtype)
                                   for p, k in zip(leaves, keys, strict=True)])
    h = 1e-5
    val = lambda p, x: value_and_grad(p, x)[0]  # noqa: E731
    fd_x = (val(params, x0 + h * v) - val(params, x0 - h * v)) / (2 * h)
    shift = lambda s: jax.tree.map(lambda p, d: p + s * d, params, vp)  # noqa: E731
    fd_p = (val(shift(h), x0) - val(shift(-h), x0)) / (2 * h)
    pairs = zip(jax.tree.leaves(gp), jax.tree.leaves(vp), strict=True)
    dot_p = sum(jnp.vdot(a, b) for a, b in pairs)
    np.testing.assert_allclose(jnp.vdot(gx, v), fd_x, rtol=1e-6)
    np.testing.assert_allclose(dot_p, fd_p, rtol=1e-6)


def test_parameterisations_on_images():
    """noise: score = −net/σ(t). edm with a network that outputs 0: D = c_skip x̂, so the score
    is −x / (σ(t)² + α(t)² σ_d²), exactly the score of data N(0, σ_d² I) under the SDE.
    (The field is generic in the network; a cheap closed-form net keeps this test fast.)"""
    sde = VPSDE()
    x = jax.random.normal(jax.random.key(9), SHAPE)
    net = lambda x, t, y=None: jnp.sin(x) * (1 + t) + (0 if y is None else y)  # noqa: E731
    t = 0.37
    np.testing.assert_allclose(ScoreField(net, sde, "noise")(x, t), -net(x, t) / sde.std(t),
                               rtol=1e-12)
    # the label reaches the network
    np.testing.assert_allclose(ScoreField(net, sde, "score")(x, t, 2), net(x, t, 2))
    sd = 0.7
    edm = ScoreField(lambda x, t: jnp.zeros_like(x), sde, "edm", sigma_data=sd)
    for t in (1e-3, 0.2, 1.0):
        want = -x / (sde.std(t) ** 2 + sde.alpha(t) ** 2 * sd**2)
        np.testing.assert_allclose(edm(x, t), want, rtol=1e-10)
    # c_out and c_noise (Karras et al. 2022, Table 1): a net returning its noise input c_noise,
    # at x = 0, gives the score α(t) c_out c_noise / σ(t)²
    probe = ScoreField(lambda x, t: jnp.full_like(x, t), sde, "edm", sigma_data=sd)
    t = 0.3
    sig = sde.std(t) / sde.alpha(t)
    c_out = sig * sd / jnp.sqrt(sig**2 + sd**2)
    want = sde.alpha(t) * c_out * jnp.log(sig) / 4 / sde.std(t) ** 2
    np.testing.assert_allclose(probe(jnp.zeros(SHAPE), t), jnp.full(SHAPE, want), rtol=1e-10)


def test_config_builds_unet_for_images_and_rejects_mismatches():
    cfg = C.from_dict({"data": {"name": "digits"},
                       "model": {"kind": "unet", "channels": 4, "channel_mults": [1, 2],
                                 "attn_resolutions": [4], "parameterisation": "edm"}})
    field = C.build_field(cfg, (8, 8, 1), jax.random.key(0))
    assert isinstance(field.net, UNet) and field.parameterisation == "edm"
    mlp = C.build_field(C.from_dict({"data": {"name": "digits"}}), (8, 8, 1), jax.random.key(0))
    assert isinstance(mlp.net, Flattened)  # model.kind=mlp sees the flattened image
    with pytest.raises(ConfigError, match="images"):
        C.build_field(C.from_dict({"model": {"kind": "unet"}}), (2,), jax.random.key(0))
    bad = C.from_dict({"data": {"name": "digits"},
                       "model": {"kind": "unet", "channel_mults": [1, 0]}})
    with pytest.raises(ConfigError, match="channel_mults"):
        C.build_field(bad, (8, 8, 1), jax.random.key(0))
    deep = C.from_dict({"data": {"name": "digits"},
                        "model": {"kind": "unet", "channel_mults": [1, 1, 1, 1, 1]}})
    with pytest.raises(ConfigError, match="not divisible"):
        C.build_field(deep, (8, 8, 1), jax.random.key(0))


def test_channel_last_conv_equals_the_equinox_layer():
    """`nets.unet.conv` (channel-last with an HWIO kernel, XLA:CPU's fast layout inside solver
    loops) computes what the `eqx.nn.Conv2d` it reads computes: 3×3, strided and 1×1 layers,
    with and without bias (float64)."""
    from sdegen.nets.unet import conv

    h = jax.random.normal(jax.random.key(0), (4, 8, 6))
    for i, kw in enumerate([dict(kernel_size=3, padding=1), dict(kernel_size=3, stride=2,
                            padding=1), dict(kernel_size=1), dict(kernel_size=1,
                            use_bias=False)]):
        layer = eqx.nn.Conv2d(4, 5, key=jax.random.key(i + 1), **kw)
        np.testing.assert_allclose(conv(layer, h), layer(h), rtol=1e-12, atol=1e-12)
