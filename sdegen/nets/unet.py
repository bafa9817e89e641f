"""Time- (and optionally class-) conditioned UNet on ONE image (H, W, C), channels-last.

The DDPM architecture (Ho, Jain & Abbeel 2020, App. B; a PixelCNN++-style UNet) with the
DDPM++ choices of Song et al. 2021 (App. H.1): residual blocks with GroupNorm (Wu & He 2018)
and SiLU, time embedding added inside each block, self-attention at the resolutions named in
`attn_resolutions`, skip connections concatenated on the way up, and residual sums rescaled by
1/√2. Sized by `channels`, `channel_mults` (one entry per resolution level), `num_res_blocks`
and `attn_resolutions`: from an ~80k-parameter 8×8 digits model to the ~60M-parameter
CIFAR-10 DDPM++ (channels 128, mults (1, 2, 2, 2), 4 blocks, attention at 16).

Optional class conditioning: `num_classes > 0` adds a learned label embedding to the time
embedding, with one extra "null" label (index `num_classes`) used for `y=None`, so a model
trained with label dropout is also an unconditional model (classifier-free guidance, Ho &
Salimans 2022). With `num_classes = 0` the network ignores `y`.

Knows no process: `sdegen.fields` gives the output a meaning (score, noise or EDM denoiser).
No dropout (it would need a key in the call); the published CIFAR-10 DDPM++ uses 0.1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from .mlp import FourierTime

_SKIP_SCALE = 1.0 / math.sqrt(2.0)


def _groups(channels: int, max_groups: int) -> int:
    """The largest group count ≤ `max_groups` that divides `channels`."""
    return math.gcd(channels, max_groups)


def conv(layer: eqx.nn.Conv2d, h: Float[Array, "c h w"]) -> Float[Array, "o h2 w2"]:
    """`layer(h)` (an `eqx.nn.Conv2d` with zero padding, on one channel-first image), computed
    channel-last with an HWIO kernel: the same numbers, and the layout XLA:CPU's fast
    convolution takes inside loop bodies. With the channel-first layout a convolution inside a
    `while` loop (every solver loop of Diffrax) fell back to a path ~10× slower on CPU than the
    same convolution outside one (jax-ml/jax#12868; measured on the digits UNet: 84 ms against
    16 ms per evaluation at batch 128). The parameters keep equinox's (O, I, kh, kw) layout."""
    w = jnp.transpose(layer.weight, (2, 3, 1, 0))
    out = jax.lax.conv_general_dilated(
        jnp.transpose(h, (1, 2, 0))[None], w, layer.stride, layer.padding,
        rhs_dilation=layer.dilation, feature_group_count=layer.groups,
        dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
    out = jnp.transpose(out, (2, 0, 1))
    return out if layer.bias is None else out + layer.bias


class ResBlock(eqx.Module):
    """GroupNorm → SiLU → 3×3 conv, + Linear(time embedding), GroupNorm → SiLU → 3×3 conv,
    plus a (1×1-projected) skip; the sum scaled by 1/√2 (DDPM++, Song et al. 2021, App. H.1)."""

    norm1: eqx.nn.GroupNorm
    conv1: eqx.nn.Conv2d
    emb: eqx.nn.Linear
    norm2: eqx.nn.GroupNorm
    conv2: eqx.nn.Conv2d
    skip: eqx.nn.Conv2d | None

    def __init__(self, c_in: int, c_out: int, emb_dim: int, max_groups: int, *, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm1 = eqx.nn.GroupNorm(_groups(c_in, max_groups), c_in)
        self.conv1 = eqx.nn.Conv2d(c_in, c_out, 3, padding=1, key=k1)
        self.emb = eqx.nn.Linear(emb_dim, c_out, key=k2)
        self.norm2 = eqx.nn.GroupNorm(_groups(c_out, max_groups), c_out)
        self.conv2 = eqx.nn.Conv2d(c_out, c_out, 3, padding=1, key=k3)
        self.skip = eqx.nn.Conv2d(c_in, c_out, 1, key=k4) if c_in != c_out else None

    def __call__(self, h: Float[Array, "c h w"], emb: Float[Array, " e"]) -> Array:
        out = conv(self.conv1, jax.nn.silu(self.norm1(h)))
        out = out + self.emb(jax.nn.silu(emb))[:, None, None]
        out = conv(self.conv2, jax.nn.silu(self.norm2(out)))
        skip = h if self.skip is None else conv(self.skip, h)
        return (skip + out) * _SKIP_SCALE


class SelfAttention(eqx.Module):
    """Single-head self-attention over the H·W positions (Vaswani et al. 2017, eq. 1, as in the
    DDPM UNet): GroupNorm, 1×1 q/k/v, softmax(qᵀk/√C) v, 1×1 projection, residual / √2."""

    norm: eqx.nn.GroupNorm
    qkv: eqx.nn.Conv2d
    proj: eqx.nn.Conv2d

    def __init__(self, channels: int, max_groups: int, *, key):
        k1, k2 = jax.random.split(key)
        self.norm = eqx.nn.GroupNorm(_groups(channels, max_groups), channels)
        self.qkv = eqx.nn.Conv2d(channels, 3 * channels, 1, key=k1)
        self.proj = eqx.nn.Conv2d(channels, channels, 1, key=k2)

    def __call__(self, h: Float[Array, "c h w"]) -> Array:
        c, hh, ww = h.shape
        q, k, v = jnp.split(conv(self.qkv, self.norm(h)).reshape(3 * c, hh * ww), 3, axis=0)
        weights = jax.nn.softmax(q.T @ k / math.sqrt(c), axis=-1)  # (HW, HW)
        out = (v @ weights.T).reshape(c, hh, ww)
        return (h + conv(self.proj, out)) * _SKIP_SCALE


class Downsample(eqx.Module):
    """3×3 convolution with stride 2 (halves H and W)."""

    conv: eqx.nn.Conv2d

    def __init__(self, channels: int, *, key):
        self.conv = eqx.nn.Conv2d(channels, channels, 3, stride=2, padding=1, key=key)

    def __call__(self, h: Float[Array, "c h w"]) -> Array:
        return conv(self.conv, h)


class Upsample(eqx.Module):
    """Nearest-neighbour ×2 upsampling, then a 3×3 convolution."""

    conv: eqx.nn.Conv2d

    def __init__(self, channels: int, *, key):
        self.conv = eqx.nn.Conv2d(channels, channels, 3, padding=1, key=key)

    def __call__(self, h: Float[Array, "c h w"]) -> Array:
        return conv(self.conv, jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2))


class UNet(eqx.Module):
    """`net(x, t, y=None) -> (H, W, C)` on one image x of shape (H, W, C) (channels-last, the
    layout of `sdegen.data`), time t a scalar (or any scalar noise level, e.g. EDM's c_noise)
    and an optional integer label y ∈ [0, num_classes); see the module docstring.

    H and W must be divisible by 2^(len(channel_mults) − 1); attention runs at every level
    whose spatial size (H at that level) is in `attn_resolutions`, and in the middle block."""

    time_embed: FourierTime
    time_mlp: eqx.nn.MLP
    label_embed: eqx.nn.Embedding | None
    conv_in: eqx.nn.Conv2d
    down: list
    mid: list
    up: list
    norm_out: eqx.nn.GroupNorm
    conv_out: eqx.nn.Conv2d
    num_classes: int = eqx.field(static=True)
    image_shape: tuple[int, int, int] = eqx.field(static=True)

    def __init__(
        self,
        shape: Sequence[int],
        *,
        key: PRNGKeyArray,
        channels: int = 16,
        channel_mults: Sequence[int] = (1, 2),
        num_res_blocks: int = 1,
        attn_resolutions: Sequence[int] = (4,),
        num_classes: int = 0,
        max_groups: int = 8,
        n_freq: int = 16,
        max_freq: float = 64.0,
    ):
        if len(shape) != 3:
            raise ValueError(f"the UNet takes images of shape (H, W, C), got {tuple(shape)}")
        height, width, c_img = (int(s) for s in shape)
        factor = 2 ** (len(channel_mults) - 1)
        if height % factor or width % factor:
            raise ValueError(
                f"image size {height}×{width} is not divisible by 2^{len(channel_mults) - 1} "
                f"= {factor} ({len(channel_mults)} levels in channel_mults); use fewer levels")
        self.image_shape = (height, width, c_img)
        self.num_classes = int(num_classes)
        keys = iter(jax.random.split(key, 4 + 4 * len(channel_mults) * (num_res_blocks + 2) + 4))
        emb_dim = 4 * channels
        self.time_embed = FourierTime(n_freq, max_freq)
        self.time_mlp = eqx.nn.MLP(2 * n_freq, emb_dim, emb_dim, 1, activation=jax.nn.silu,
                                   key=next(keys))
        self.label_embed = (eqx.nn.Embedding(num_classes + 1, emb_dim, key=next(keys))
                            if num_classes > 0 else None)
        self.conv_in = eqx.nn.Conv2d(c_img, channels, 3, padding=1, key=next(keys))

        attn = set(int(r) for r in attn_resolutions)
        res, c = height, channels
        skips = [c]
        self.down = []
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                block = [ResBlock(c, channels * mult, emb_dim, max_groups, key=next(keys))]
                c = channels * mult
                if res in attn:
                    block.append(SelfAttention(c, max_groups, key=next(keys)))
                self.down.append(block)
                skips.append(c)
            if level != len(channel_mults) - 1:
                self.down.append([Downsample(c, key=next(keys))])
                res //= 2
                skips.append(c)
        self.mid = [ResBlock(c, c, emb_dim, max_groups, key=next(keys)),
                    SelfAttention(c, max_groups, key=next(keys)),
                    ResBlock(c, c, emb_dim, max_groups, key=next(keys))]
        self.up = []
        for level, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(num_res_blocks + 1):
                c_skip = skips.pop()
                block = [ResBlock(c + c_skip, channels * mult, emb_dim, max_groups,
                                  key=next(keys))]
                c = channels * mult
                if res in attn:
                    block.append(SelfAttention(c, max_groups, key=next(keys)))
                self.up.append(block)
            if level != 0:
                self.up.append([Upsample(c, key=next(keys))])
                res *= 2
        self.norm_out = eqx.nn.GroupNorm(_groups(c, max_groups), c)
        self.conv_out = eqx.nn.Conv2d(c, c_img, 3, padding=1, key=next(keys))

    def embedding(self, t: Float[ArrayLike, ""], y: Int[ArrayLike, ""] | None) -> Array:
        """Time embedding, plus the label embedding (the null label when `y` is None)."""
        emb = self.time_mlp(self.time_embed(t))
        if self.label_embed is not None:
            label = self.num_classes if y is None else y
            emb = emb + self.label_embed(jnp.asarray(label, dtype=jnp.int32))
        return emb

    def __call__(
        self,
        x: Float[Array, "h w c"],
        t: Float[ArrayLike, ""],
        y: Int[ArrayLike, ""] | None = None,
    ) -> Float[Array, "h w c"]:
        if tuple(x.shape) != self.image_shape:
            raise ValueError(f"UNet built for images of shape {self.image_shape}, got "
                             f"{tuple(x.shape)}; vmap over a batch")
        emb = self.embedding(t, y).astype(x.dtype)
        h = conv(self.conv_in, jnp.transpose(x, (2, 0, 1)))
        hs = [h]
        for block in self.down:
            h = _apply(block, h, emb)
            hs.append(h)
        h = _apply(self.mid, h, emb)
        for block in self.up:
            if isinstance(block[0], ResBlock):
                h = jnp.concatenate([h, hs.pop()], axis=0)
            h = _apply(block, h, emb)
        h = conv(self.conv_out, jax.nn.silu(self.norm_out(h)))
        return jnp.transpose(h, (1, 2, 0))


def _apply(layers: list, h: Array, emb: Array) -> Array:
    for layer in layers:
        h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
    return h
