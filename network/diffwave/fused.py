"""The fused DiffWave implementation (`network.impl=fused`): the reference's layers, computed
in as few memory passes and as large GEMMs as TF allows on a CPU (oneDNN or Eigen).

Same weights and same function as network/diffwave/reference.py (lmnt-com/diffwave line for
line); tests/test_diffwave_net.py checks values and gradients against it in every mode.

Speed (CPU, benchmarks/bench_diffwave.py). The weights are the reference's Keras layers with
their shapes and initialisers, but the residual layers do not call them: `_residual_core` runs a
layer's forward and its hand-written backward (tf.custom_gradient) in as few memory passes and
as large GEMMs as TF allows, since on a 2-core CPU every extra pass over a [B, T, C] tensor costs
about as much as a small GEMM:
  * the residual stream and the skip sum travel as ONE tensor U = [x·2^(i/2) | Σ skip] [B,T,2C],
    so a layer's output 1×1 projection is one GEMM with its bias and "+ U" fused (oneDNN): no
    split, "+ x", "/√2" or "skip +=" passes. The 2^(i/2) is folded into the residual half of
    the projection weights (in float32): x_{i+1}·2^((i+1)/2) = x_i·2^(i/2) + residual_i·2^(i/2);
  * the dilated conv is the native dilated Conv2D with the bias fused (Keras' Conv1D goes
    through space-to-batch on CPU); its input gradient is the same forward conv with the
    flipped, transposed kernel (Eigen has no dilated Conv2DBackpropInput; oneDNN runs both
    equally fast); its kernel gradient GEMMs over the shifted views y(t−d), y(t), y(t+d);
  * the gate runs as three small XLA-compiled elementwise kernels (XLA only for that glue: for
    the whole step it is slower on CPU): A = [σ(h_g) | tanh(h_f)] (σ(h) = ½ + ½·tanh(h/2), one
    tanh per value), z = A_g·A_f, and backward dH = [dz·A_f·A_g(1 − A_g) | dz·A_g(1 − A_f²)];
    bfloat16 is converted by its bits (XLA's own conversion is ~2× slower);
  * bias and step-embedding gradients are GEMMs with a ones vector (float32 accumulation);
  * a batch of static size B runs as min(B, 4) independent chains, whose ops TF's inter-op
    threads overlap (each about one core: both cores stay busy, smaller working sets).
"""
from __future__ import annotations

import math
import os
import sys

import tensorflow as tf
from keras import ops

# Read at import. DIFFWAVE_XLA_GLUE=0: the elementwise glue as plain TF ops (same results,
# slower; for debugging or a TF build without the XLA CPU JIT). DIFFWAVE_CHAINS: independent
# chains a static batch is split into (1 = none).
XLA_GLUE = os.environ.get("DIFFWAVE_XLA_GLUE", "1") != "0"
MAX_CHAINS = max(1, int(os.environ.get("DIFFWAVE_CHAINS", "4")))


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


def _flipped(Wd):
    """[3, C, 2C] → [3, 2C, C]: W'_k = W_{2−k}ᵀ (the kernel of the input gradient)."""
    return tf.reverse(tf.transpose(Wd, [0, 2, 1]), [0])


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
            # ∂L/∂y(s) = Σ_k dH(s − (k−1)d)·W_kᵀ: the same 'same' dilated conv with W'_k = W_{2−k}ᵀ.
            # A forward conv, not Conv2DBackpropInput: Eigen (oneDNN off) has no dilated one.
            dy = tf.nn.conv2d(tf.reshape(dH, tf.stack([B, 1, T, 2 * C])), _flipped(Wd)[None], 1,
                              "SAME", dilations=[1, 1, dilation, 1])
            dy = tf.reshape(dy, tf.stack([B, T, C]))
            grads = [_stream_grad(dout, dy, inv_scale), _time_sum(dy),
                     _dilated_kernel_grad(y, dH2d, dilation), _column_sum(dH2d),
                     tf.matmul(z2d, dout2d, transpose_a=True), _column_sum(dout2d)]
            if cond is not None:                       # mel: [B, T, 2C]; class: [B, 1, 2C]
                grads.append(dH if cond.shape[1] != 1 else _time_sum(dH))
            return grads

        return out, grad

    return layer(*inputs)




# ---------------------------------------------------------------------------------------------
# The network on these layers: a block's weights (model.ResidualBlock) and the whole trunk.

def block_call(block, U, emb, cond=None, scale=1.0, training=None):
    """U [B,T,2C] holds [x·scale | Σ skip]; returns the stream after this layer, whose residual
    half is x_next·scale·√2 (x_next = (x + residual)/√2)."""
    dtype, C = block.compute_dtype, block.channels
    e = ops.cast(block.step_projection(emb), dtype)[:, None, :]               # [B, 1, C]
    c = None if cond is None else ops.cast(block.cond_projection(cond), dtype)
    # Residual half of the output projection × scale: the stream carries x·scale.
    col_scale = tf.concat([tf.fill([C], float(scale)), tf.ones([C])], 0)
    # (read in float32: under an autocast scope, e.g. stateless_call, they may come as bf16)
    Wo = ops.cast(block.output_projection.kernel[0], "float32") * col_scale
    bo = ops.cast(block.output_projection.bias, "float32") * col_scale
    cast = lambda w: ops.cast(w, dtype)                                       # noqa: E731
    args = (U, e, c, cast(block.dilated_conv.kernel), cast(block.dilated_conv.bias), cast(Wo),
            cast(bo))
    inv_scale = tf.constant(1.0 / scale, tf.float32)
    if training is False:                       # sampling: no backward to prepare for
        return _residual_forward(*args, block.dilation, inv_scale)
    return _residual_core(*args, dilation=block.dilation, inv_scale=inv_scale)


def _stream_scales(net):
    """Scale of x carried by the stream entering each layer: 2^(i/2), re-based to 1 (one
    multiply) past 2^6 in float16, past 2^20 otherwise (never for L ≤ 41)."""
    limit = 2.0 ** 6 if net.compute_dtype == "float16" else 2.0 ** 20
    scales, s = [], 1.0
    for _ in net.blocks:
        if s > limit:
            s = 1.0
        scales.append(s)
        s *= math.sqrt(2.0)
    return scales


def trunk(net, audio, emb, cond, training=None):
    """audio [B,T,1], emb [B,512], cond None | [B,1,128] | [B,T,n_mels] → ε̂ [B,T,1] float32.

    A batch of static size B runs as min(B, MAX_CHAINS) independent chains of examples: with
    TF's inter-op threads the chains' ops overlap, each on about one core, which on a 2-core
    CPU beats every op split over both cores (~10% a step)."""
    batch = audio.shape[0]
    chains = min(batch, MAX_CHAINS) if batch is not None else 1
    if chains <= 1:
        return _chain(net, audio, emb, cond, training)
    sizes = [batch // chains + (k < batch % chains) for k in range(chains)]
    parts = zip(tf.split(audio, sizes), tf.split(emb, sizes),
                tf.split(cond, sizes) if cond is not None else [None] * chains)
    return tf.concat([_chain(net, *part, training) for part in parts], 0)


def _chain(net, audio, emb, cond, training=None):
    dtype, C = net.compute_dtype, net.residual_channels
    shape = tf.shape(audio)

    # Stream U = [relu(input_projection(audio)) | 0]: one GEMM [BT,1]@[1,2C], bias, ReLU.
    zeros = tf.zeros([C], dtype)
    w_in = tf.concat([ops.cast(net.input_projection.kernel[0, 0], dtype), zeros], 0)
    b_in = tf.concat([ops.cast(net.input_projection.bias, dtype), zeros], 0)
    U = tf.nn.relu(tf.nn.bias_add(tf.matmul(tf.reshape(audio, [-1, 1]), w_in[None]), b_in))
    U = tf.reshape(U, tf.stack([shape[0], shape[1], 2 * C]))

    scales = _stream_scales(net)
    for i, (block, scale) in enumerate(zip(net.blocks, scales)):
        if i and scale < scales[i - 1]:                                       # re-base (float16)
            rebase = tf.concat([tf.fill([C], 1.0 / (scales[i - 1] * math.sqrt(2.0))),
                                tf.ones([C])], 0)
            U = U * ops.cast(rebase, dtype)
        U = block(U, emb, cond, scale=scale, training=training)

    # Σ skip / √L → ReLU(skip_projection) → output_projection (C → 1).
    skip = tf.reshape(U[..., C:], [-1, C])
    w_skip = ops.cast(net.skip_projection.kernel[0], dtype) / ops.cast(
        math.sqrt(len(net.blocks)), dtype)
    y = tf.nn.relu(tf.nn.bias_add(tf.matmul(skip, w_skip),
                                  ops.cast(net.skip_projection.bias, dtype)))
    y = tf.nn.bias_add(tf.matmul(y, ops.cast(net.output_projection.kernel[0], dtype)),
                       ops.cast(net.output_projection.bias, dtype))
    return ops.cast(tf.reshape(y, tf.stack([shape[0], shape[1], 1])), "float32")  # ε̂ [B,T,1]
