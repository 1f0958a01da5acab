"""In-graph anti-aliasing low-pass filter and rational resampler, in pure TF ops.

Design (NumPy, once per ratio, at trace time): a Kaiser-windowed sinc prototype h at the
"upsampled" rate L·f_in for the ratio L/M = f_out/f_in, with
  f_N = min(f_in, f_out)/2   the new Nyquist; every frequency ≥ f_N is attenuated ≥ 80 dB
  f_p = 0.9·f_N              passband edge (ripple ≪ 0.05 dB below it)
  f_c = (f_p + f_N)/2        cutoff; Kaiser β and length N from Kaiser's formulas.
h is symmetric and centred on t = 0, so output n sits exactly at input time n·M/L (zero delay).

Apply (polyphase, in-graph, any length): output n = b·Lb + q (block b, phase q) is
  y[n] = Σ_k x[b·Mb + k] · h(q·M − k·L),   Lb = L·R, Mb = M·R.
The Lb phases are split in G groups of consecutive phases; group g reads the window
x[b·Mb + k_g : b·Mb + k_g + F_g], cut in views of S samples (S divides Mb), so each group is one
strided tf.nn.conv1d over the view sequence. Per output sample that costs F_g ≈ Mb/G + N/L
multiply-adds: O(taps/L), never the upsampled-rate cost. Every phase has unity DC gain.
Signals are taken as zero outside their extent (the edges see the usual filter transient).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

PASSBAND = 0.9          # passband edge as a fraction of the new Nyquist
ATTENUATION_DB = 90.0   # Kaiser design target; the tested floor is 80 dB


def _prototype(up: int, down: int, passband: float, attenuation_db: float):
    """Returns (h, half): h(t) for integer upsampled-rate offsets t, zero for |t| > half."""
    f_n = 0.5 / max(up, down)                    # new Nyquist, cycles per upsampled sample
    f_p = passband * f_n
    f_c = 0.5 * (f_p + f_n)
    beta = 0.1102 * (attenuation_db - 8.7)       # Kaiser's β for A > 50 dB
    half = int(math.ceil((attenuation_db - 7.95) / (14.36 * (f_n - f_p)) / 2))

    def h(t):  # gain L makes up for the L−1 zeros of upsampling
        t = np.asarray(t, dtype=np.float64)
        r = np.clip(t / half, -1.0, 1.0)
        window = np.i0(beta * np.sqrt(1.0 - r * r)) / np.i0(beta)
        return np.where(np.abs(t) <= half, up * 2 * f_c * np.sinc(2 * f_c * t) * window, 0.0)
    return h, half


def _group(h, half, up, down, mb, phases):
    """One phase group: (pad_left, weights [kw, S, Q]) with the S that wastes the least."""
    k_min = -((half - phases[0] * down) // up)           # ceil((q₀·M − half)/L)
    k_max = (phases[-1] * down + half) // up              # floor((q₁·M + half)/L)
    span = k_max - k_min + 1
    step = min((d for d in range(1, mb + 1) if mb % d == 0 and d >= min(mb, 32)),
               key=lambda d: (-(-span // d)) * d)
    inputs = k_min + np.arange(-(-span // step) * step)  # input offset within the block
    weights = h(phases[None, :] * down - inputs[:, None] * up)
    weights /= weights.sum(axis=0, keepdims=True)         # unity DC gain for every phase
    return -k_min, weights.reshape(-1, step, len(phases)).astype(np.float32)


@functools.lru_cache(maxsize=64)
def polyphase_plan(up: int, down: int, passband: float = PASSBAND,
                   attenuation_db: float = ATTENUATION_DB):
    """Returns (Lb, Mb, groups) for up/down; groups = [(pad_left, weights [kw, S, Q]), …]."""
    g = math.gcd(up, down)
    up, down = up // g, down // g
    h, half = _prototype(up, down, passband, attenuation_db)
    # Blocks of Lb ≥ 64 outputs, so that each group's product is a GEMM, not a GEMV.
    r = max(1, math.ceil(64 / up))
    lb, mb = up * r, down * r
    best = None
    for count in (d for d in range(1, lb // 32 + 1) if lb % d == 0):
        q = lb // count
        groups = [_group(h, half, up, down, mb, np.arange(i * q, (i + 1) * q))
                  for i in range(count)]
        # Multiply-adds per block, plus a copy of the input per group.
        cost = sum(w.size for _, w in groups) + 8 * count * mb
        if best is None or cost < best[0]:
            best = (cost, groups)
    return lb, mb, tuple(best[1])


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer sample rate or factor, got {value!r}")
    return int(value)


def _apply(audio, up, down, num_out, axis):
    """Filter + resample `audio` along `axis`, producing `num_out` samples (a scalar tensor)."""
    audio = tf.convert_to_tensor(audio)
    if not audio.dtype.is_floating:
        raise TypeError(f"audio must be floating point, got {audio.dtype.name}")
    rank = audio.shape.rank
    if rank is None or rank == 0:
        raise ValueError("audio must have a known rank ≥ 1 (time axis)")
    axis = axis % rank
    lb, mb, groups = polyphase_plan(up, down)
    # Time last, every other axis flattened into rows: x [rows, 1, T].
    perm = [d for d in range(rank) if d != axis] + [axis]
    moved = tf.transpose(audio, perm)
    other_shape = tf.shape(moved)[:-1]
    length = tf.shape(moved)[-1]
    x = tf.reshape(moved, [-1, 1, length])
    num_blocks = tf.maximum((num_out + lb - 1) // lb, 1)   # ≥ 1 block, even for 0 outputs
    outputs = []
    for pad_left, weights in groups:
        kw, step = weights.shape[:2]
        stride = mb // step
        views = (num_blocks - 1) * stride + kw
        total = views * step
        # Group windows start at input k_g = −pad_left: drop (k_g > 0) or zero-pad (k_g < 0).
        xg = x[..., max(0, -pad_left):]
        pad_left = max(0, pad_left)
        right = tf.maximum(total - pad_left - tf.shape(xg)[-1], 0)
        xg = tf.pad(xg, [[0, 0], [0, 0], [pad_left, right]])
        xg = tf.reshape(xg[..., :total], [-1, views, step])
        # y[b, q] = Σ_d view[b·Mb/S + d] · W[d, :, q]: a strided conv over the views.
        outputs.append(tf.nn.conv1d(xg, tf.constant(weights, dtype=audio.dtype), stride, "VALID"))
    y = outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=-1)
    y = tf.reshape(y, [-1, num_blocks * lb])[:, :num_out]
    y = tf.reshape(y, tf.concat([other_shape, [num_out]], 0))
    inverse = np.argsort(perm).tolist()
    return tf.transpose(y, inverse)


def resample(audio, orig_rate: int, new_rate: int, axis: int = 0):
    """Resamples `audio` from `orig_rate` to `new_rate` along `axis` (time; 0 for [T] or [T, C]).

    Anti-aliased at min(orig, new)/2; output length round(len·new/orig), output sample n at
    input time n·orig/new (zero delay). Works inside tf.function and tf.data.
    """
    orig_rate = _check_rate("orig_rate", orig_rate)
    new_rate = _check_rate("new_rate", new_rate)
    audio = tf.convert_to_tensor(audio)
    if orig_rate == new_rate:
        return audio
    g = math.gcd(orig_rate, new_rate)
    up, down = new_rate // g, orig_rate // g
    length = tf.shape(audio, out_type=tf.int64)[axis]
    num_out = tf.cast((length * up + down // 2) // down, tf.int32)     # round(len·L/M)
    return _apply(audio, up, down, num_out, axis)


def downsample(audio, factor: int, axis: int = 0):
    """Low-passes at the new Nyquist and keeps every `factor`-th sample (like x[::factor]).

    Output length ceil(len/factor); output n is the filtered signal at input index n·factor.
    """
    factor = _check_rate("factor", factor)
    audio = tf.convert_to_tensor(audio)
    if factor == 1:
        return audio
    length = tf.shape(audio)[axis]
    return _apply(audio, 1, factor, (length + factor - 1) // factor, axis)
