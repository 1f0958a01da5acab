"""Classifier-free guidance (Ho & Salimans 2022), model-agnostic.

Training: the conditioning of each example is replaced by the network's learned null embedding
with probability p; `draw_keep_mask` draws that mask statelessly from the trainer's
(step, seed) key, for the global batch (so resume and replica count do not change it).
Sampling: v̂ = v̂_∅ + s · (v̂_c − v̂_∅); s = 1 is exactly the conditional prediction (one pass).

    denoise = guided(lambda x, t, keep: model(x, t, text, keep), scale=5.0)
"""
from __future__ import annotations

import tensorflow as tf

CFG_SEED_SALT = 7919   # folds the trainer's key into a stream apart from t and ε


def check_scale(scale) -> None:
    """--guidance: a one-line error unless s > 0."""
    if scale is not None and not scale > 0:
        raise ValueError(f"--guidance must be > 0 (1 = no guidance), got {scale}")


def draw_keep_mask(batch: int, drop_probability: float, seed):
    """keep [B] bool: False (use the null embedding) with probability `drop_probability`."""
    key = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), CFG_SEED_SALT)
    return tf.random.stateless_uniform([batch], key) >= drop_probability


def repeat_to(value, batch):
    """value [b, ...] → [batch, ...] by whole repeats (batch = k·b: the guided pass runs the
    conditional and the null halves of one batch, so each needs the conditioning once)."""
    times = batch // tf.shape(value)[0]
    return tf.tile(value, tf.concat([[times], tf.ones([tf.rank(value) - 1], tf.int32)], 0))


def guided(denoise_keep, scale):
    """denoise_keep(x, t, keep [B] bool) → prediction; returns denoise(x, t) with guidance.

    `scale` is a Python number (1 → only the conditional pass) or a scalar tensor (both
    passes in one batch, then mixed; a tensor equal to 1 still returns v̂_c exactly).
    """
    if not tf.is_tensor(scale) and float(scale) == 1.0:
        return lambda x, t: denoise_keep(x, t, tf.ones(tf.shape(x)[:1], tf.bool))

    def run(x, t):
        n = tf.shape(x)[0]
        keep = tf.concat([tf.ones([n], tf.bool), tf.zeros([n], tf.bool)], 0)
        both = denoise_keep(tf.concat([x, x], 0), tf.concat([t, t], 0), keep)
        cond, uncond = both[:n], both[n:]
        s = tf.cast(scale, cond.dtype)
        return tf.where(tf.equal(s, 1.0), cond, uncond + s * (cond - uncond))
    return run
