"""2-D UNet ε_θ(x_t, t[, c]) of the diffusers UNet2DModel kind, for mel-spectrogram images
(teticio/audio-diffusion), channels-last Keras 3.

    net = UNet2D(block_channels=(128, 128, 256, 256, 512, 512),
                 attention=(False, False, False, False, True, False))
    eps_hat = net({"image": x_t [B, H, W, 1], "step": t [B]})        # + "encoding" [B, E]

Layout (diffusers' names): conv_in 3×3 → down blocks (layers_per_block ResNet blocks, optional
self-attention after each, a stride-2 3×3 conv on the input padded by 1 on every side,
as diffusers' Downsample2D, except at the last level) → mid (ResNet,
attention, ResNet) → up blocks (layers_per_block + 1 ResNet blocks, each on the concatenated
skip, optional attention, nearest ×2 + 3×3 conv except at the last level) → GroupNorm, SiLU,
conv_out 3×3. Step embedding: sinusoid of width C₀ (cos first, as flip_sin_to_cos) → Dense 4C₀
SiLU → Dense 4C₀, projected into every ResNet block. An optional encoding vector (teticio's
conditional model) is projected and added to the step embedding. H and W must be multiples of
2^(levels − 1); W may be any such multiple (wider noise gives longer clips).
"""
from __future__ import annotations

import math

import keras
from keras import layers, ops

from network.tracking import track


def step_encoding(step, dim: int):
    """[cos(t·ω_k), sin(t·ω_k)], ω_k = 10000^(−k/(dim/2)), k = 0..dim/2−1 (diffusers' Timesteps
    with flip_sin_to_cos=True, downscale_freq_shift=0)."""
    half = dim // 2
    freqs = ops.exp(-math.log(10000.0) * ops.arange(half, dtype="float32") / half)
    angles = ops.cast(step, "float32")[:, None] * freqs[None, :]
    return ops.concatenate([ops.cos(angles), ops.sin(angles)], axis=-1)


class ResnetBlock(layers.Layer):
    def __init__(self, channels, groups, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.norm1 = layers.GroupNormalization(groups, epsilon=1e-5)
        self.conv1 = layers.Conv2D(channels, 3, padding="same")
        self.step_proj = layers.Dense(channels)
        self.norm2 = layers.GroupNormalization(groups, epsilon=1e-5)
        self.dropout = layers.Dropout(dropout)
        self.conv2 = layers.Conv2D(channels, 3, padding="same")
        self.shortcut = None

    def build(self, input_shape):
        if input_shape[-1] != self.channels:
            self.shortcut = layers.Conv2D(self.channels, 1)

    def call(self, x, emb, training=False):
        h = self.conv1(ops.silu(self.norm1(x)))
        h = h + self.step_proj(ops.silu(emb))[:, None, None, :]
        h = self.conv2(self.dropout(ops.silu(self.norm2(h)), training=training))
        return (self.shortcut(x) if self.shortcut is not None else x) + h


class SelfAttention(layers.Layer):
    """GroupNorm → multi-head attention over the H·W positions → residual."""

    def __init__(self, channels, groups, head_dim=8, **kwargs):
        super().__init__(**kwargs)
        self.norm = layers.GroupNormalization(groups, epsilon=1e-5)
        self.attention = layers.MultiHeadAttention(max(1, channels // head_dim), head_dim,
                                                   output_shape=channels)

    def call(self, x):
        shape = ops.shape(x)
        h = ops.reshape(self.norm(x), (shape[0], shape[1] * shape[2], shape[3]))
        h = self.attention(h, h)
        return x + ops.reshape(h, shape)


class UNet2D(keras.Model):
    def __init__(self, block_channels=(128, 128, 256, 256, 512, 512),
                 attention=(False, False, False, False, True, False), layers_per_block=2,
                 norm_groups=32, in_channels=1, encoding_dim=0, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if len(attention) != len(block_channels):
            raise ValueError(f"attention needs one flag per level ({len(block_channels)}), "
                             f"got {len(attention)}")
        if any(c % norm_groups for c in block_channels):
            raise ValueError(f"block channels {block_channels} must be multiples of "
                             f"norm_groups={norm_groups}")
        self.block_channels, self.attention_levels = tuple(block_channels), tuple(attention)
        self.layers_per_block, self.norm_groups = layers_per_block, norm_groups
        self.in_channels, self.encoding_dim = in_channels, encoding_dim
        c0, g = block_channels[0], norm_groups
        self.step_mlp = [layers.Dense(4 * c0, activation="silu"), layers.Dense(4 * c0)]
        self.encoding_proj = layers.Dense(4 * c0) if encoding_dim else None
        self.conv_in = layers.Conv2D(c0, 3, padding="same")
        self.down, self.up = [], []
        last = len(block_channels) - 1
        for level, (c, attn) in enumerate(zip(block_channels, attention)):
            blocks = [(ResnetBlock(c, g, dropout), SelfAttention(c, g) if attn else None)
                      for _ in range(layers_per_block)]
            # diffusers' Downsample2D pads 1 on every side; Keras' "same" would pad only the
            # bottom/right of an even size (a one-pixel shift): pad explicitly in call().
            sample = layers.Conv2D(c, 3, strides=2, padding="valid") if level < last else None
            self.down.append((blocks, sample))
        top = block_channels[-1]
        self.mid = [ResnetBlock(top, g, dropout), SelfAttention(top, g),
                    ResnetBlock(top, g, dropout)]
        for level in reversed(range(len(block_channels))):
            c, attn = block_channels[level], attention[level]
            blocks = [(ResnetBlock(c, g, dropout), SelfAttention(c, g) if attn else None)
                      for _ in range(layers_per_block + 1)]
            sample = layers.Conv2D(c, 3, padding="same") if level > 0 else None
            self.up.append((blocks, sample))
        self.norm_out = layers.GroupNormalization(g, epsilon=1e-5)
        self.conv_out = layers.Conv2D(in_channels, 3, padding="same")
        self._name_nested_layers()

    def _name_nested_layers(self):
        """Every layer nested in the lists/tuples above also gets a stable attribute name
        (network/tracking.py: checkpoints follow attributes only)."""
        named = {"step_mlp_0": self.step_mlp[0], "step_mlp_1": self.step_mlp[1]}
        for i, layer in enumerate(self.mid):
            named[f"mid_{i}"] = layer
        for kind, levels in (("down", self.down), ("up", self.up)):
            for level, (blocks, sample) in enumerate(levels):
                for j, (resnet, attn) in enumerate(blocks):
                    named[f"{kind}_{level}_resnet_{j}"] = resnet
                    if attn is not None:
                        named[f"{kind}_{level}_attention_{j}"] = attn
                if sample is not None:
                    named[f"{kind}_{level}_sample"] = sample
        track(self, named)

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.block_channels) - 1)

    def call(self, inputs, training=False):
        dtype = self.compute_dtype
        emb = ops.cast(step_encoding(inputs["step"], self.block_channels[0]), dtype)
        emb = self.step_mlp[1](self.step_mlp[0](emb))
        if self.encoding_proj is not None:
            emb = emb + self.encoding_proj(ops.cast(inputs["encoding"], dtype))
        x = self.conv_in(ops.cast(inputs["image"], dtype))
        skips = [x]
        for blocks, sample in self.down:
            for resnet, attn in blocks:
                x = resnet(x, emb, training=training)
                x = attn(x) if attn is not None else x
                skips.append(x)
            if sample is not None:
                x = sample(ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]))
                skips.append(x)
        x = self.mid[0](x, emb, training=training)
        x = self.mid[2](self.mid[1](x), emb, training=training)
        for blocks, sample in self.up:
            for resnet, attn in blocks:
                x = resnet(ops.concatenate([x, skips.pop()], axis=-1), emb, training=training)
                x = attn(x) if attn is not None else x
            if sample is not None:
                x = ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)         # nearest ×2
                x = sample(x)
        x = self.conv_out(ops.silu(self.norm_out(x)))
        return ops.cast(x, "float32")

    def get_config(self):
        return {**super().get_config(), "block_channels": self.block_channels,
                "attention": self.attention_levels, "layers_per_block": self.layers_per_block,
                "norm_groups": self.norm_groups, "in_channels": self.in_channels,
                "encoding_dim": self.encoding_dim}
