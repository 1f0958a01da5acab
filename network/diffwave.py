"""DiffWave noise-prediction network ε_θ(x_t, t[, c]) (Kong et al. 2020, arXiv 2009.09761).

Follows the architecture of the reference implementation (lmnt-com/diffwave v0.1.8) in
channels-last Keras 3: audio is [B, T, 1], every tensor is [B, time, channels].

    net = DiffWave.from_params(params)
    eps_hat = net({"audio": x_t, "step": t})             # + "label" [B] or "mel" [B, frames, n_mels]

Unconditional BASE (L=30, C=64, cycle 10, T=50) has 2,308,737 trainable parameters.

Speed (CPU, benchmarks/bench_diffwave.py). The weights are the reference's Keras layers with
their shapes and initialisers, but the residual layers do not call them: `_residual_core` runs a
layer's forward and its hand-written backward (tf.custom_gradient) in as few memory passes and
as large GEMMs as TF allows, since on a 2-core CPU every extra pass over a [B, T, C] tensor costs
about as much as a small GEMM:
  * the residual stream and the skip sum travel as ONE tensor U = [x·2^(i/2) | Σ skip] [B,T,2C],
    so a layer's output 1×1 projection is one GEMM with its bias and "+ U" fused (oneDNN): no
    split, "+ x", "/√2" or "skip +=" passes. The 2^(i/2) is folded into the residual half of
    the projection weights (in float32): x_{i+1}·2^((i+1)/2) = x_i·2^(i/2) + residual_i·2^(i/2);
  * the dilated conv is oneDNN's native dilated Conv2D with the bias fused (Keras' Conv1D goes
    through space-to-batch on CPU); its input gradient is the native dilated backprop; its kernel
    gradient GEMMs over the shifted views y(t−d), y(t), y(t+d);
  * the gate runs as three small XLA-compiled elementwise kernels (XLA only for that glue: for
    the whole step it is slower on CPU): A = [σ(h_g) | tanh(h_f)] (σ(h) = ½ + ½·tanh(h/2), one
    tanh per value), z = A_g·A_f, and backward dH = [dz·A_f·A_g(1 − A_g) | dz·A_g(1 − A_f²)];
    bfloat16 is converted by its bits (XLA's own conversion is ~2× slower);
  * bias and step-embedding gradients are GEMMs with a ones vector (float32 accumulation);
  * a batch of static size B runs as min(B, 4) independent chains, whose ops TF's inter-op
    threads overlap (each about one core: both cores stay busy, smaller working sets).
tests/test_diffwave_net.py checks all of it against the straightforward formulation (Keras
Conv1D per layer, `(x + residual)/√2`, `skip +=`), values and gradients, in every mode.
"""
from __future__ import annotations

import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

EMBED_DIM = 128     # sinusoidal step encoding width (64 sin + 64 cos)
HIDDEN_DIM = 512    # step-embedding MLP width
LABEL_DIM = 128     # class-conditional label embedding width

# Read at import. DIFFWAVE_XLA_GLUE=0: the elementwise glue as plain TF ops (same results,
# slower; for debugging or a TF build without the XLA CPU JIT). DIFFWAVE_CHAINS: independent
# chains a static batch is split into (1 = none).
XLA_GLUE = os.environ.get("DIFFWAVE_XLA_GLUE", "1") != "0"
MAX_CHAINS = max(1, int(os.environ.get("DIFFWAVE_CHAINS", "4")))


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


# ---------------------------------------------------------------------------------------------
# One residual layer, forward and backward (see the module docstring).

def _f32(x):
    """→ float32. bfloat16 by its bits (a shift: XLA's own conversion is ~2× slower on CPU)."""
    if x.dtype == tf.bfloat16 and XLA_GLUE:
        bits = tf.cast(tf.bitcast(x, tf.uint16), tf.uint32)
        return tf.bitcast(tf.bitwise.left_shift(bits, 16), tf.float32)
    return tf.cast(x, tf.float32)


def _to(x, dtype):
    """float32 → dtype. bfloat16 by its bits, rounding to nearest even (= tf.cast; NaN stays)."""
    if dtype == tf.bfloat16 and XLA_GLUE:
        bits = tf.bitcast(x, tf.uint32)
        bits = bits + 0x7FFF + tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 16), 1)
        bits = tf.where(tf.math.is_nan(x), tf.constant(0x7FC00000, tf.uint32), bits)
        return tf.bitcast(tf.cast(tf.bitwise.right_shift(bits, 16), tf.uint16), tf.bfloat16)
    return tf.cast(x, dtype)


def _layer_input(U, e, inv_scale):
    """y = x + step embedding, x = U[..., :C]·inv_scale (the stream's residual half)."""
    C = U.shape[-1] // 2
    return _to(_f32(U[..., :C]) * inv_scale + _f32(e), U.dtype)


def _gate_constants(C):
    """σ(h) = ½ + ½·tanh(h/2): both gate halves as a·tanh(k·h) + b, one tanh per channel."""
    k = tf.concat([tf.fill([C], 0.5), tf.ones([C])], 0)
    return k, k, tf.concat([tf.fill([C], 0.5), tf.zeros([C])], 0)        # k, a, b


def _gate_act(H, cond=None):
    """[σ(h_g) | tanh(h_f)] of h = H (+ cond): [B, T, 2C], computed in float32."""
    h = _f32(H)
    if cond is not None:
        h = h + _f32(cond)
    k, a, b = _gate_constants(H.shape[-1] // 2)
    return _to(a * tf.tanh(k * h) + b, H.dtype)


def _gate_product(A):
    """z = σ(h_g)·tanh(h_f) from A = [σ(h_g) | tanh(h_f)]."""
    C = A.shape[-1] // 2
    return _to(_f32(A[..., :C]) * _f32(A[..., C:]), A.dtype)


def _gate_output(H, cond=None):
    """z = σ(h_g)·tanh(h_f) of h = H (+ cond) in one kernel, A never stored (inference)."""
    return _gate_product(_gate_act(H, cond))


def _gate_grad(A, dz):
    """∂L/∂h = [dz·tanh(h_f)·σ'(h_g) | dz·σ(h_g)·tanh'(h_f)], derivatives from A itself."""
    C = A.shape[-1] // 2
    s, t, g = _f32(A[..., :C]), _f32(A[..., C:]), _f32(dz)
    return _to(tf.concat([g * t * s * (1.0 - s), g * s * (1.0 - t * t)], -1), A.dtype)


def _stream_grad(dout, dy, inv_scale):
    """∂L/∂U = ∂L/∂U' + [∂L/∂y · inv_scale | 0]."""
    C = dy.shape[-1]
    return _to(_f32(dout) + tf.pad(_f32(dy) * inv_scale, [[0, 0], [0, 0], [0, C]]), dout.dtype)


def _start_xla_quietly():
    """Starts XLA (once per process) with file descriptor 2 on /dev/null when
    TF_CPP_MIN_LOG_LEVEL ≥ 1: XLA's C++ (absl) INFO lines at its first compile ignore that
    setting and would otherwise reach stderr (4 lines; later compiles log nothing)."""
    global _XLA_STARTED
    if _XLA_STARTED or not XLA_GLUE:
        return
    _XLA_STARTED = True
    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip() not in ("", "0")
    with tf.init_scope():
        if not quiet:
            _layer_input(tf.zeros([1, 1, 2]), tf.zeros([1, 1, 1]), tf.constant(1.0))
            return
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
            _layer_input(tf.zeros([1, 1, 2]), tf.zeros([1, 1, 1]), tf.constant(1.0))
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_XLA_STARTED = False
if XLA_GLUE:
    _layer_input = tf.function(_layer_input, jit_compile=True)
    _gate_act = tf.function(_gate_act, jit_compile=True)
    _gate_output = tf.function(_gate_output, jit_compile=True)     # one cluster, A not stored
    _gate_product = tf.function(_gate_product, jit_compile=True)
    _gate_grad = tf.function(_gate_grad, jit_compile=True)
    _stream_grad = tf.function(_stream_grad, jit_compile=True)


def _column_sum(x2d):
    """Σ over rows of [N, K] → [K], as a GEMM (float32 accumulation even for bfloat16)."""
    ones = tf.ones(tf.stack([1, tf.shape(x2d)[0]]), x2d.dtype)
    return tf.reshape(tf.matmul(ones, x2d), [x2d.shape[-1]])


def _time_sum(x):
    """Σ over time of [B, T, K] → [B, 1, K], as a batched GEMM."""
    s = tf.shape(x)
    return tf.matmul(tf.ones(tf.stack([s[0], 1, s[1]]), x.dtype), x)


def _dilated_kernel_grad(y, dH2d, dilation):
    """∂L/∂W [3, C, 2C] of the 'same' dilated conv H = conv(y, W): Σ_t y(t+(k−1)d)ᵀ·dH(t).

    One example (static batch 1, every chain of a batch ≤ MAX_CHAINS): three GEMMs on row
    ranges of y and dH (slices along the first axis are views, no copy). Otherwise ONE GEMM
    over the gathered shifted views [y(t−d), y(t), y(t+d)] (zeros outside [0, T)).
    """
    T, C = tf.shape(y)[1], y.shape[-1]
    if y.shape[0] == 1:
        y2d, n = tf.reshape(y, [-1, C]), tf.maximum(T - dilation, 0)
        return tf.stack([tf.matmul(y2d[:n], dH2d[T - n:], transpose_a=True),      # y(t − d)
                         tf.matmul(y2d, dH2d, transpose_a=True),                   # y(t)
                         tf.matmul(y2d[T - n:], dH2d[:n], transpose_a=True)])      # y(t + d)
    t = tf.range(T)
    idx = tf.stack([t - dilation, t, t + dilation], 1)
    idx = tf.where((idx < 0) | (idx >= T), T, idx)                     # → the zero row
    padded = tf.concat([y, tf.zeros_like(y[:, :1])], 1)
    views = tf.reshape(tf.gather(padded, idx, axis=1), [-1, 3 * C])
    return tf.reshape(tf.matmul(views, dH2d, transpose_a=True), [3, C, 2 * C])


def _residual_forward(U, e, cond, Wd, bd, Wo, bo, dilation, inv_scale):
    """The layer without autodiff bookkeeping (sampling): the gate is one kernel, A is never
    stored. Same values as `_residual_core`; differentiable by TF if ever needed."""
    C = U.shape[-1] // 2
    B, T = tf.shape(U)[0], tf.shape(U)[1]
    y = _layer_input(U, e, inv_scale)
    conv = tf.nn.conv2d(tf.reshape(y, tf.stack([B, 1, T, C])), Wd[None], 1, "SAME",
                        dilations=[1, 1, dilation, 1])
    H = tf.reshape(tf.nn.bias_add(conv, bd), tf.stack([B, T, 2 * C]))
    z2d = tf.reshape(_gate_output(H) if cond is None else _gate_output(H, cond), [-1, C])
    out = tf.nn.bias_add(tf.matmul(z2d, Wo), bo) + tf.reshape(U, [-1, 2 * C])
    return tf.reshape(out, tf.shape(U))


def _residual_core(U, e, cond, Wd, bd, Wo, bo, *, dilation, inv_scale):
    """U' = U + z·Wo + bo with z = gate(dilated_conv(U[..., :C]·inv_scale + e) + bd [+ cond]).

    U [B,T,2C], e [B,1,C], cond None | [B,1,2C] | [B,T,2C], Wd [3,C,2C], bd [2C], Wo [C,2C],
    bo [2C], all in the compute dtype; inv_scale a float32 scalar tensor.
    """
    C = U.shape[-1] // 2
    inputs = (U, e, Wd, bd, Wo, bo) + (() if cond is None else (cond,))

    @tf.custom_gradient
    def layer(*args):
        U, e, Wd, bd, Wo, bo = args[:6]
        cond = args[6] if len(args) > 6 else None
        B, T = tf.shape(U)[0], tf.shape(U)[1]
        y = _layer_input(U, e, inv_scale)
        conv = tf.nn.conv2d(tf.reshape(y, tf.stack([B, 1, T, C])), Wd[None], 1, "SAME",
                            dilations=[1, 1, dilation, 1])
        H = tf.reshape(tf.nn.bias_add(conv, bd), tf.stack([B, T, 2 * C]))
        A = _gate_act(H) if cond is None else _gate_act(H, cond)
        z2d = tf.reshape(_gate_product(A), [-1, C])
        U2d = tf.reshape(U, [-1, 2 * C])
        out = tf.reshape(tf.nn.bias_add(tf.matmul(z2d, Wo), bo) + U2d, tf.shape(U))

        def grad(dout):
            dout2d = tf.reshape(dout, [-1, 2 * C])
            dz = tf.reshape(tf.matmul(dout2d, Wo, transpose_b=True), tf.stack([B, T, C]))
            dH = _gate_grad(A, dz)
            dH2d = tf.reshape(dH, [-1, 2 * C])
            dy = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.stack([B, 1, T, C]), filter=Wd[None],
                out_backprop=tf.reshape(dH, tf.stack([B, 1, T, 2 * C])), strides=[1, 1, 1, 1],
                padding="SAME", dilations=[1, 1, dilation, 1])
            dy = tf.reshape(dy, tf.stack([B, T, C]))
            grads = [_stream_grad(dout, dy, inv_scale), _time_sum(dy),
                     _dilated_kernel_grad(y, dH2d, dilation), _column_sum(dH2d),
                     tf.matmul(z2d, dout2d, transpose_a=True), _column_sum(dout2d)]
            if cond is not None:                       # mel: [B, T, 2C]; class: [B, 1, 2C]
                grads.append(dH if cond.shape[1] != 1 else _time_sum(dH))
            return grads

        return out, grad

    return layer(*inputs)


class ResidualBlock(layers.Layer):
    """One gated residual layer, acting on the stream U = [x·2^(index/2) | Σ skip] [B, T, 2C].

    Same weights as the reference layer ((x + residual)/√2, skip): step_projection, dilated_conv
    (kernel [3, C, 2C], Kaiming fan_in 3C), cond_projection, output_projection (kernel [1, C, 2C]).
    """

    def __init__(self, channels, dilation, conditioned, index=0, **kwargs):
        # autocast=False: the weights are read in float32, scaled, then cast (mixed precision).
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
        """U [B,T,2C] holds [x·scale | Σ skip]; returns the stream after this layer, whose
        residual half is x_next·scale·√2 (x_next = (x + residual)/√2)."""
        dtype, C = self.compute_dtype, self.channels
        e = ops.cast(self.step_projection(emb), dtype)[:, None, :]            # [B, 1, C]
        c = None if cond is None else ops.cast(self.cond_projection(cond), dtype)
        # Residual half of the output projection × scale: the stream carries x·scale.
        col_scale = tf.concat([tf.fill([C], float(scale)), tf.ones([C])], 0)
        # (read in float32: under an autocast scope, e.g. stateless_call, they may come as bf16)
        Wo = ops.cast(self.output_projection.kernel[0], "float32") * col_scale
        bo = ops.cast(self.output_projection.bias, "float32") * col_scale
        cast = lambda w: ops.cast(w, dtype)                                   # noqa: E731
        args = (U, e, c, cast(self.dilated_conv.kernel), cast(self.dilated_conv.bias), cast(Wo),
                cast(bo))
        inv_scale = tf.constant(1.0 / scale, tf.float32)
        if training is False:                   # sampling: no backward to prepare for
            return _residual_forward(*args, self.dilation, inv_scale)
        return _residual_core(*args, dilation=self.dilation, inv_scale=inv_scale)


class DiffWave(keras.Model):
    """ε_θ(x_t, t[, c]): inputs {"audio": [B,T,1], "step": [B], "label"?: [B], "mel"?: [B,F,n_mels]}."""

    def __init__(self, residual_layers=30, residual_channels=64, dilation_cycle=10, num_steps=50,
                 conditioning="none", num_classes=10, n_mels=80, hop_length=256, **kwargs):
        super().__init__(**kwargs)
        if conditioning not in ("none", "class", "mel"):
            raise ValueError(f"conditioning must be none, class or mel; got {conditioning!r}")
        _start_xla_quietly()
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
        # tf.train.Checkpoint follows attributes only, not layers kept in lists: name them too
        # (same objects and variable order), or checkpoints would miss the raw block weights.
        for layer in self.blocks + getattr(self, "upsampler", []):
            setattr(self, layer.name, layer)

    @classmethod
    def from_params(cls, params, **kwargs):
        n = params.network
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

    def _stream_scales(self):
        """Scale of x carried by the stream entering each layer: 2^(i/2), re-based to 1 (one
        multiply) past 2^6 in float16, past 2^20 otherwise (never for L ≤ 41)."""
        limit = 2.0 ** 6 if self.compute_dtype == "float16" else 2.0 ** 20
        scales, s = [], 1.0
        for _ in self.blocks:
            if s > limit:
                s = 1.0
            scales.append(s)
            s *= math.sqrt(2.0)
        return scales

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

        # A batch of static size B runs as min(B, MAX_CHAINS) independent chains of examples:
        # with TF's inter-op threads the chains' ops overlap, each on about one core, which on
        # a 2-core CPU beats every op split over both cores (~10% a step).
        batch = audio.shape[0]
        chains = min(batch, MAX_CHAINS) if batch is not None else 1
        if chains <= 1:
            return self._trunk(audio, emb, cond, training)
        sizes = [batch // chains + (k < batch % chains) for k in range(chains)]
        parts = zip(tf.split(audio, sizes), tf.split(emb, sizes),
                    tf.split(cond, sizes) if cond is not None else [None] * chains)
        return tf.concat([self._trunk(*part, training) for part in parts], 0)

    def _trunk(self, audio, emb, cond, training=None):
        """audio [B,T,1], emb [B,512], cond None | [B,1,128] | [B,T,n_mels] → ε̂ [B,T,1] float32."""
        dtype, C = self.compute_dtype, self.residual_channels
        shape = tf.shape(audio)

        # Stream U = [relu(input_projection(audio)) | 0]: one GEMM [BT,1]@[1,2C], bias, ReLU.
        zeros = tf.zeros([C], dtype)
        w_in = tf.concat([ops.cast(self.input_projection.kernel[0, 0], dtype), zeros], 0)
        b_in = tf.concat([ops.cast(self.input_projection.bias, dtype), zeros], 0)
        U = tf.nn.relu(tf.nn.bias_add(tf.matmul(tf.reshape(audio, [-1, 1]), w_in[None]), b_in))
        U = tf.reshape(U, tf.stack([shape[0], shape[1], 2 * C]))

        scales = self._stream_scales()
        for i, (block, scale) in enumerate(zip(self.blocks, scales)):
            if i and scale < scales[i - 1]:                                    # re-base (float16)
                rebase = tf.concat([tf.fill([C], 1.0 / (scales[i - 1] * math.sqrt(2.0))),
                                    tf.ones([C])], 0)
                U = U * ops.cast(rebase, dtype)
            U = block(U, emb, cond, scale=scale, training=training)

        # Σ skip / √L → ReLU(skip_projection) → output_projection (C → 1).
        skip = tf.reshape(U[..., C:], [-1, C])
        w_skip = ops.cast(self.skip_projection.kernel[0], dtype) / ops.cast(
            math.sqrt(len(self.blocks)), dtype)
        y = tf.nn.relu(tf.nn.bias_add(tf.matmul(skip, w_skip),
                                      ops.cast(self.skip_projection.bias, dtype)))
        y = tf.nn.bias_add(tf.matmul(y, ops.cast(self.output_projection.kernel[0], dtype)),
                           ops.cast(self.output_projection.bias, dtype))
        return ops.cast(tf.reshape(y, tf.stack([shape[0], shape[1], 1])), "float32")  # ε̂ [B,T,1]

    def get_config(self):
        return {**super().get_config(),
                "residual_layers": self.residual_layers, "residual_channels": self.residual_channels,
                "dilation_cycle": self.dilation_cycle, "num_steps": self.num_steps,
                "conditioning": self.conditioning, "num_classes": self.num_classes,
                "n_mels": self.n_mels, "hop_length": self.hop_length}
