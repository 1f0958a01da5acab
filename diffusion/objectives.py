"""The ε-prediction objective of DDPM / DiffWave, model-agnostic.

    t, noise = draw_steps_and_noise(schedule, tf.shape(x0), seed)
    loss = epsilon_loss(denoise, schedule, x0, t, noise, kind="l1")    # per example, [B]

`denoise(x_t, t)` is any callable returning ε̂ with x_t's shape (the family's adapter adds its
conditioning). Randomness is stateless: t ~ U{0..T−1} per example and ε ~ N(0, I) are drawn
from `seed` [2] int32. The trainer keys it by the step and draws for the whole global batch,
so a resumed run, or the same run on another number of replicas, draws the same numbers.
"""
from __future__ import annotations

import tensorflow as tf


def draw_steps_and_noise(schedule, shape, seed):
    """t ~ U{0, …, T−1} per example [B] and ε ~ N(0, I) of `shape` ([B, …])."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    t = tf.random.stateless_uniform(shape[:1], seeds[0], 0, schedule.num_steps, dtype=tf.int32)
    noise = tf.random.stateless_normal(shape, seeds[1])
    return t, noise


def epsilon_loss(denoise, schedule, x0, t, noise, kind: str = "l1"):
    """Per-example ‖ε − ε_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t)‖ averaged over the non-batch axes:
    L1 (the DiffWave reference) or L2 (DDPM's L_simple). Returns [B] float32."""
    x0 = tf.cast(x0, tf.float32)
    x_t = schedule.q_sample(x0, t, noise)                     # q(x_t | x_0)
    error = tf.cast(denoise(x_t, t), tf.float32) - noise
    error = tf.abs(error) if kind == "l1" else tf.square(error)
    return tf.reduce_mean(tf.reshape(error, [tf.shape(x0)[0], -1]), axis=1)
