"""DiffWave noise-prediction network ε_θ(x_t, t[, c]) (Kong et al. 2020, arXiv 2009.09761).

The architecture of the reference implementation (lmnt-com/diffwave v0.1.8) in channels-last
Keras 3: audio is [B, T, 1], every tensor is [B, time, channels].

    net = DiffWave.from_params(params)                   # params.network.impl: auto|reference|fused
    eps_hat = net({"audio": x_t, "step": t})             # + "label" [B] or "mel" [B, frames, n_mels]

Unconditional BASE (L=30, C=64, cycle 10, T=50) has 2,308,737 trainable parameters.

This file owns the weights (the reference's layers, shapes and initialisers); two
implementations compute the network from them: reference.py (Keras layers, autodiff; runs
everywhere) and fused.py (hand-fused layers and backward; fastest on CPUs). A checkpoint written
under either loads into the other. select.py picks one per process from capability probes.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from network.diffwave import fused, reference
from network.diffwave.select import choose_impl
from network.tracking import track

EMBED_DIM = 128     # sinusoidal step encoding width (64 sin + 64 cos)
HIDDEN_DIM = 512    # step-embedding MLP width
LABEL_DIM = 128     # class-conditional label embedding width


def _kaiming():
    # PyTorch kaiming_normal_ (untruncated normal, std = √(2 / fan_in)), as the reference.
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")


def _conv1x1(filters, name, **kwargs):
    return layers.Conv1D(filters, 1, kernel_initializer=kwargs.pop("kernel_initializer", _kaiming()),
                         name=name, **kwargs)


def step_table(num_steps: int) -> np.ndarray:
    """Fixed encoding of integer steps t = 0..T−1: [sin(t·10^(4d/63)), cos(t·10^(4d/63))], d=0..63.

    Rounded as the reference builds it in float32 (4d/63, 10^x and t·10^x each rounded to
    float32, then sin/cos): at t = 49 the float32 angle of the fastest rows is off the exact one
    by up to ~0.02 rad, and the networks were trained with those values (tests/parity: ε̂ of a
    converted lmnt checkpoint is 1.5e-3 off with the exact table, ~1e-6 with this one).
    """
    f32 = np.float32
    t = np.arange(num_steps, dtype=f32)[:, None]
    exponent = np.arange(EMBED_DIM // 2, dtype=f32)[None, :] * f32(4.0) / f32(63.0)
    freqs = (10.0 ** exponent.astype(np.float64)).astype(f32)       # correctly rounded 10^x
    angles = (t * freqs).astype(np.float64)                          # float32 product
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


def _split_factors(hop: int):
    """hop = s1·s2 with s1 the largest divisor ≤ √hop (256 → 16×16, as the reference)."""
    s1 = max(d for d in range(1, math.isqrt(hop) + 1) if hop % d == 0)
    return s1, hop // s1


class ResidualBlock(layers.Layer):
    """The weights of one gated residual layer: step_projection (512 → C), dilated_conv (kernel
    [3, C, 2C], Kaiming fan_in 3C), cond_projection (c → 2C), output_projection ([1, C, 2C]).

    Calling it runs the fused layer on the stream U = [x·scale | Σ skip] [B, T, 2C]
    (fused.block_call); reference.residual_block uses the same layers on (x, skip).
    """

    def __init__(self, channels, dilation, conditioned, index=0, **kwargs):
        # autocast=False: the fused layer reads the weights in float32, scales, then casts.
        super().__init__(autocast=False, **kwargs)
        self.channels, self.dilation, self.index = channels, dilation, index
        self.step_projection = layers.Dense(channels, name="step_projection")   # 512 → C
        self.dilated_conv = layers.Conv1D(2 * channels, 3, dilation_rate=dilation, padding="same",
                                          kernel_initializer=_kaiming(), name="dilated_conv")
        # Conditioner c → 2C, added before the gate (1×1 conv; for a time-constant c a Dense).
        self.cond_projection = (layers.Dense(2 * channels, kernel_initializer=_kaiming(),
                                             name="cond_projection") if conditioned else None)
        self.output_projection = _conv1x1(2 * channels, "output_projection")     # C → 2C

    def build(self, cond_dim=None):
        C = self.channels
        self.step_projection.build((None, HIDDEN_DIM))
        self.dilated_conv.build((None, None, C))
        if self.cond_projection is not None:
            self.cond_projection.build((None, None, cond_dim))
        self.output_projection.build((None, None, C))
        self.built = True

    def call(self, U, emb, cond=None, scale=1.0, training=None):
        return fused.block_call(self, U, emb, cond, scale, training)


class DiffWave(keras.Model):
    """ε_θ(x_t, t[, c]): inputs {"audio": [B,T,1], "step": [B], "label"?: [B], "mel"?: [B,F,n_mels]}.

    impl: "auto" (probe this machine once per process), "reference" or "fused"; `self.impl` is
    the one in use.
    """

    def __init__(self, residual_layers=30, residual_channels=64, dilation_cycle=10, num_steps=50,
                 conditioning="none", num_classes=10, n_mels=80, hop_length=256, impl="auto",
                 **kwargs):
        super().__init__(**kwargs)
        if conditioning not in ("none", "class", "mel"):
            raise ValueError(f"conditioning must be none, class or mel; got {conditioning!r}")
        self.requested_impl, self.impl = impl, choose_impl(impl)
        self.residual_layers, self.residual_channels = residual_layers, residual_channels
        self.dilation_cycle, self.num_steps = dilation_cycle, num_steps
        self.conditioning, self.num_classes = conditioning, num_classes
        self.n_mels, self.hop_length = n_mels, hop_length
        C = residual_channels

        self.input_projection = _conv1x1(C, "input_projection")                 # 1 → C
        self._table = tf.constant(step_table(num_steps))                       # [T, 128]
        self.step_mlp1 = layers.Dense(HIDDEN_DIM, name="step_mlp1")              # 128 → 512
        self.step_mlp2 = layers.Dense(HIDDEN_DIM, name="step_mlp2")              # 512 → 512

        self.label_embedding, self.upsampler = None, []
        if conditioning == "class":
            # Our choice (the reference has no class mode): label → Embedding(num_classes, 128),
            # broadcast over time and fed to every layer through its own conditioner projection
            # (128 → 2C), exactly like the mel conditioner but with a time-constant c.
            self.label_embedding = layers.Embedding(num_classes, LABEL_DIM, name="label_embedding")
        elif conditioning == "mel":
            # Upsampler: two transposed 2-D convs over (time, mel), each ×s along time,
            # kernel [2s, 3], stride [s, 1]; 'same' padding = the reference's padding [s/2, 1].
            self.upsampler = [layers.Conv2DTranspose(1, (2 * s, 3), strides=(s, 1), padding="same",
                                                     name=f"upsampler_{k}")
                              for k, s in enumerate(_split_factors(hop_length))]

        self.blocks = [ResidualBlock(C, 2 ** (i % dilation_cycle), conditioning != "none", index=i,
                                     name=f"residual_block_{i}") for i in range(residual_layers)]
        self.skip_projection = _conv1x1(C, "skip_projection")                   # C → C
        self.output_projection = _conv1x1(1, "output_projection",              # C → 1, zero init
                                          kernel_initializer="zeros")
        # Checkpoints follow attributes, not lists: name the blocks too (network/tracking.py).
        track(self, {layer.name: layer for layer in self.blocks + self.upsampler})

    @classmethod
    def from_params(cls, params, **kwargs):
        n = params.network
        kwargs.setdefault("impl", getattr(n, "impl", "auto"))
        return cls(n.residual_layers, n.residual_channels, n.dilation_cycle,
                   params.diffusion.num_steps, conditioning=n.conditioning,
                   num_classes=n.num_classes, n_mels=n.n_mels, hop_length=n.hop_length, **kwargs)

    @property
    def receptive_field(self) -> int:
        """Samples that affect one output sample: 1 + Σ_i (k−1)·2^(i mod cycle), k = 3."""
        return 1 + sum(2 * 2 ** (i % self.dilation_cycle) for i in range(self.residual_layers))

    def build(self, input_shape=None):
        # Every weight shape follows from the constructor, so the input shape is not needed.
        C = self.residual_channels
        self.input_projection.build((None, None, 1))
        self.step_mlp1.build((None, EMBED_DIM))
        self.step_mlp2.build((None, HIDDEN_DIM))
        cond_dim = None
        if self.label_embedding is not None:
            self.label_embedding.build((None,))
            cond_dim = LABEL_DIM
        for conv in self.upsampler:
            conv.build((None, None, self.n_mels, 1))
            cond_dim = self.n_mels
        for block in self.blocks:
            block.build(cond_dim)
        self.skip_projection.build((None, None, C))
        self.output_projection.build((None, None, C))
        self.built = True

    def embed_step(self, step):
        """Table row for t; fractional t interpolates rows ⌊t⌋ and ⌈t⌉ (fast sampling). → [B, 128]."""
        t = tf.clip_by_value(tf.cast(step, tf.float32), 0.0, float(self.num_steps - 1))
        low, high = tf.floor(t), tf.math.ceil(t)
        row_low = tf.gather(self._table, tf.cast(low, tf.int32))
        row_high = tf.gather(self._table, tf.cast(high, tf.int32))
        return row_low + (row_high - row_low) * (t - low)[:, None]

    def upsample_mel(self, mel):
        """[B, frames, n_mels] → [B, frames·hop, n_mels] (LeakyReLU 0.4 after each stage)."""
        y = ops.cast(mel, self.compute_dtype)[..., None]                     # [B, F, n_mels, 1]
        for conv in self.upsampler:
            y = ops.leaky_relu(conv(y), negative_slope=0.4)
        return y[..., 0]

    def call(self, inputs, training=None):
        dtype = self.compute_dtype
        audio = ops.cast(inputs["audio"], dtype)                               # [B, T, 1]
        emb = ops.cast(self.embed_step(inputs["step"]), dtype)                 # t → [B, 128]
        emb = ops.silu(self.step_mlp2(ops.silu(self.step_mlp1(emb))))          # [B, 512]

        cond = None
        if self.conditioning == "class":
            label = ops.cast(inputs["label"], "int32")
            cond = ops.cast(self.label_embedding(label), dtype)[:, None, :]    # [B, 1, 128]
        elif self.conditioning == "mel":
            cond = self.upsample_mel(inputs["mel"])                            # [B, T, n_mels]
        impl = reference if self.impl == "reference" else fused
        return impl.trunk(self, audio, emb, cond, training)

    def get_config(self):
        return {**super().get_config(),
                "residual_layers": self.residual_layers, "residual_channels": self.residual_channels,
                "dilation_cycle": self.dilation_cycle, "num_steps": self.num_steps,
                "conditioning": self.conditioning, "num_classes": self.num_classes,
                "n_mels": self.n_mels, "hop_length": self.hop_length,
                "impl": self.requested_impl}
