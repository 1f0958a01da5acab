"""A 1-D diffusion UNet (the layout of audio-diffusion-pytorch's UNet1d, Moûsai): the DiffAE's
waveform decoder and the text-conditioned DiffGen over latents are both this network.

    net = UNet1D(in_channels=1, channels=(32, 64), factors=(1, 2), items=(1, 2),
                 attentions=(0, 1), cross_attentions=(0, 1), text_dim=384, text_length=64)
    v = net({"x": x [B, L, C], "step": σ [B], "text": [B, S, 384], "text_mask": [B, S] bool,
             "text_keep": [B] bool, "context": [B, L_c, C_c]})

Per level i: downsample by factors[i] (strided conv; factor 1: plain conv) → items[i] ResNet
blocks with the step embedding (scale/shift) → a transformer block (self-attention if
attentions[i], cross-attention to the text tokens with their mask if cross_attentions[i]);
a middle block; the mirrored up path with skip concatenation and nearest ×factor + conv.
`context` (the DiffAE latent) is repeated to the length at `context_depth` and concatenated
there. `patch` folds p samples into channels before the stem. With text, a learned null
embedding (the classifier-free guidance "∅") replaces the text where `text_keep` is False.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from network.tracking import track


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


def _group_norm(channels: int):
    # ε = 1e-5 as torch's GroupNorm (a-unet's blocks); Keras' default is 1e-3.
    return layers.GroupNormalization(_groups(channels), epsilon=1e-5)


class StepEmbedding(layers.Layer):
    """σ (or t) → sinusoidal features of σ·scale → Dense SiLU → Dense (the shared embedding)."""

    def __init__(self, features: int, scale: float = 1000.0, **kw):
        super().__init__(**kw)
        self.features, self.scale = features, scale
        self.dense1 = layers.Dense(features * 4, activation="silu")
        self.dense2 = layers.Dense(features * 4)

    def call(self, step):
        half = self.features // 2
        freqs = tf.exp(-math.log(10000.0) * tf.range(half, dtype=tf.float32) / max(half - 1, 1))
        angles = tf.cast(step, tf.float32)[:, None] * self.scale * freqs[None, :]
        return self.dense2(self.dense1(tf.concat([tf.sin(angles), tf.cos(angles)], -1)))


class ResnetBlock(layers.Layer):
    """GroupNorm → SiLU → conv → ·(1 + scale) + shift from the step embedding → GroupNorm →
    SiLU → conv, plus the (1×1-projected) input."""

    def __init__(self, channels: int, **kw):
        super().__init__(**kw)
        self.channels = channels
        self.conv1 = layers.Conv1D(channels, 3, padding="same")
        self.to_scale_shift = layers.Dense(2 * channels)
        self.norm2 = _group_norm(channels)
        self.conv2 = layers.Conv1D(channels, 3, padding="same")

    def build(self, input_shape):
        self.norm1 = _group_norm(int(input_shape[-1]))
        self.skip = None if input_shape[-1] == self.channels else layers.Conv1D(self.channels, 1)

    def call(self, x, emb=None):
        h = self.norm2(self.conv1(tf.nn.silu(self.norm1(x))))
        if emb is not None:                  # no step embedding: a plain block (the encoder's)
            scale, shift = tf.split(self.to_scale_shift(tf.nn.silu(emb))[:, None, :], 2, -1)
            h = h * (1.0 + scale) + shift
        h = self.conv2(tf.nn.silu(h))
        return h + (x if self.skip is None else self.skip(x))


class TransformerBlock(layers.Layer):
    """Pre-norm self-attention (optional), cross-attention to text (optional), feed-forward."""

    def __init__(self, channels, heads, head_features, self_attention, cross_attention, **kw):
        super().__init__(**kw)
        self.use_self, self.use_cross = bool(self_attention), bool(cross_attention)
        if self.use_self:
            self.norm_s = layers.LayerNormalization()
            self.attn_s = layers.MultiHeadAttention(heads, head_features, output_shape=channels)
        if self.use_cross:
            self.norm_c = layers.LayerNormalization()
            self.attn_c = layers.MultiHeadAttention(heads, head_features, output_shape=channels)
        self.norm_f = layers.LayerNormalization()
        self.ff1 = layers.Dense(channels * 2, activation="gelu")
        self.ff2 = layers.Dense(channels)

    def call(self, x, text=None, text_mask=None):
        if self.use_self:
            h = self.norm_s(x)
            x = x + self.attn_s(h, h)
        if self.use_cross:
            text = tf.cast(text, x.dtype)
            mask = tf.broadcast_to(text_mask[:, None, :],
                                   tf.stack([tf.shape(x)[0], tf.shape(x)[1], tf.shape(text)[1]]))
            x = x + self.attn_c(self.norm_c(x), text, attention_mask=mask)
        return x + self.ff2(self.ff1(self.norm_f(x)))


class Level(layers.Layer):
    """One UNet level: [down-sampling conv] → ResNet blocks → [transformer] → [up-sampling].
    Sub-layers are named attributes (Keras 3 lists are not tf.train.Checkpoint children)."""

    def __init__(self, channels, items, attention, cross, heads, head_features, down_factor=0,
                 up_factor=0, out_channels=0, **kw):
        super().__init__(**kw)
        self.items, self.down_factor, self.up_factor = items, down_factor, up_factor
        if down_factor:
            f = down_factor
            self.down = layers.Conv1D(channels, 2 * f + 1 if f > 1 else 3, strides=f,
                                      padding="same")
        track(self, {f"resnet_{k}": ResnetBlock(channels) for k in range(items)})
        self.attn = TransformerBlock(channels, heads, head_features, attention, cross) \
            if attention or cross else None
        if up_factor:
            self.up = layers.Conv1D(out_channels, 3, padding="same")

    def call(self, h, emb, text=None, text_mask=None, context=None):
        if self.down_factor:
            h = self.down(h)
        if context is not None:                          # nearest up-sampling to this length
            repeat = tf.shape(h)[1] // tf.shape(context)[1]
            h = tf.concat([h, tf.repeat(tf.cast(context, h.dtype), repeat, axis=1)], axis=-1)
        for k in range(self.items):
            h = getattr(self, f"resnet_{k}")(h, emb)
        if self.attn is not None:
            h = self.attn(h, text, text_mask)
        if self.up_factor:
            h = self.up(tf.repeat(h, self.up_factor, axis=1) if self.up_factor > 1 else h)
        return h


class UNet1D(keras.Model):
    def __init__(self, in_channels, channels, factors, items, attentions, cross_attentions=None,
                 heads=4, head_features=32, text_dim=0, text_length=0, context_channels=0,
                 context_depth=0, patch=1, step_scale=1000.0, **kw):
        super().__init__(**kw)
        depth = len(channels)
        cross = tuple(cross_attentions or (0,) * depth)
        if not len(factors) == len(items) == len(attentions) == len(cross) == depth:
            raise ValueError("channels, factors, items, attentions, cross_attentions: one per level")
        self.depth, self.in_channels, self.patch = depth, in_channels, patch
        self.context_depth = context_depth
        self.context_channels, self.text_dim = context_channels, text_dim
        self.downsampling = patch * math.prod(factors)          # lengths must divide by this
        self.embed = StepEmbedding(channels[0], step_scale)
        self.stem = layers.Conv1D(channels[0], 7, padding="same")
        for i in range(depth):                                  # network/tracking.py
            track(self, {f"down_{i}": Level(channels[i], items[i], attentions[i], cross[i], heads,
                                            head_features, down_factor=factors[i]),
                         f"up_{i}": Level(channels[i], items[i], attentions[i], cross[i], heads,
                                          head_features, up_factor=factors[i],
                                          out_channels=channels[max(i - 1, 0)])})
        self.mid = Level(channels[-1], 2, True, cross[-1], heads, head_features)
        self.head_norm = _group_norm(channels[0])
        self.head = layers.Conv1D(in_channels * patch, 3, padding="same",
                                  kernel_initializer="zeros")
        if text_dim:
            # ∅: the learned null text (classifier-free guidance), one vector per token position.
            self.null_text = self.add_weight(shape=(text_length, text_dim), name="null_text",
                                             initializer=keras.initializers.RandomNormal(0, 0.02))

    def _text(self, inputs):
        if not self.text_dim:
            return None, None
        text = tf.cast(inputs["text"], tf.float32)
        mask = tf.cast(inputs["text_mask"], tf.bool)
        keep = inputs.get("text_keep")
        if keep is not None:
            keep = tf.cast(keep, tf.bool)
            text = tf.where(keep[:, None, None], text, tf.cast(self.null_text, tf.float32)[None])
            mask = tf.logical_or(mask, tf.logical_not(keep)[:, None])
        return text, mask

    def call(self, inputs, training=False):
        x = inputs["x"]
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        text, text_mask = self._text(inputs)
        emb = self.embed(inputs["step"])
        h = self.stem(tf.reshape(x, [batch, length // self.patch, self.in_channels * self.patch]))
        skips = []
        for i in range(self.depth):
            context = inputs["context"] if self.context_channels and i == self.context_depth \
                else None
            h = getattr(self, f"down_{i}")(h, emb, text, text_mask, context)
            skips.append(h)
        h = self.mid(h, emb, text, text_mask)
        for i in reversed(range(self.depth)):
            h = getattr(self, f"up_{i}")(tf.concat([h, skips.pop()], axis=-1), emb, text,
                                         text_mask)
        out = self.head(tf.nn.silu(self.head_norm(h)))
        return tf.reshape(out, [batch, length, self.in_channels])
