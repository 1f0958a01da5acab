"""Measurement consistency: steer sampling toward what is known about the result, then refine it.

A vocoder knows the log-mel its audio must have. Two steps use that, for any ε family:

    loss = lambda x0: mean |log_mel(x0) − target| per example          # → [B]
    denoise = consistency_guided(denoise, schedule, loss, scale=0.3, steps=10)
    x0 = sample(denoise, scheduler, shape, seed)                        # diffusion/core/sampling.py
    x0 = refine(x0, loss, steps=100, rate=1e-3)

Guidance, at network step t (fractional on DiffWave's fast schedule):
    x̂₀ = (x_t − √(1−ᾱ) ε̂)/√ᾱ
    `steps` times: x̂₀ ← x̂₀ − s·√(1−ᾱ)·g/rms(g),  g = ∇ loss(x̂₀), rms per example
    ε̂' = (x_t − √ᾱ x̂₀)/√(1−ᾱ), which the scheduler then steps with.
The move is normalised and scaled by the noise level √(1−ᾱ), so it shrinks as sampling ends and
the network's next steps can smooth what it changed. The gradient stops at x̂₀, as in manifold-
constrained / projection samplers (Chung et al. 2022; Wang et al. 2023 "DDNM"): no backward pass
through the network, unlike DPS (Chung et al. 2023). ᾱ(t) is √ᾱ interpolated linearly in t, the
alignment NoiseSchedule.fast_steps uses, so ᾱ(t_n) is exactly the fast schedule's ᾱ'_n.

Refinement: `steps` Adam steps (Kingma & Ba 2015, β = 0.9, 0.999) on x₀ itself, the same loss.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Consistency:
    """A run's settings (params.network: consistency, consistency_steps, refine_steps,
    refine_rate). `off` samples exactly as without it."""
    scale: float = 0.0
    steps: int = 10
    refine_steps: int = 0
    refine_rate: float = 1e-3

    @property
    def off(self) -> bool:
        return self.scale == 0.0 and self.refine_steps == 0

    @classmethod
    def from_params(cls, network) -> "Consistency":
        return cls(network.consistency, network.consistency_steps, network.refine_steps,
                   network.refine_rate)


def alpha_bar_at(schedule, t):
    """ᾱ at training steps t [B] (float; fractional between two steps): √ᾱ linear in t."""
    root = tf.constant(np.sqrt(schedule.alpha_bars), tf.float32)
    t = tf.clip_by_value(tf.cast(t, tf.float32), 0.0, float(len(schedule.alpha_bars) - 1))
    low = tf.minimum(tf.cast(tf.floor(t), tf.int32), len(schedule.alpha_bars) - 2)
    frac = t - tf.cast(low, tf.float32)
    return ((1.0 - frac) * tf.gather(root, low) + frac * tf.gather(root, low + 1)) ** 2


def _per_example_rms(g):
    return tf.sqrt(tf.reduce_mean(g ** 2, axis=tf.range(1, tf.rank(g)), keepdims=True)) + 1e-12


def _broadcast(value, like):
    """[B] → [B, 1, …] against `like`."""
    return tf.reshape(value, tf.concat([tf.shape(value), tf.ones([tf.rank(like) - 1], tf.int32)],
                                       0))


def consistency_guided(denoise, schedule, loss, scale: float, steps: int):
    """denoise(x, t) → ε̂ whose implied x̂₀ has been moved `steps` times down `loss` (see the
    module docstring). `loss(x0)` → [B], one value per example."""
    if scale == 0.0 or steps == 0:
        return denoise

    def run(x, t):
        eps = denoise(x, t)
        alpha_bar = _broadcast(alpha_bar_at(schedule, t), x)
        noise_level = tf.sqrt(1.0 - alpha_bar)
        x0 = (x - noise_level * eps) / tf.sqrt(alpha_bar)                    # x̂₀

        def move(i, x0):
            with tf.GradientTape() as tape:
                tape.watch(x0)
                total = tf.reduce_sum(loss(x0))           # examples apart: one gradient each
            g = tape.gradient(total, x0)
            return i + 1, x0 - scale * noise_level * g / _per_example_rms(g)

        x0 = tf.while_loop(lambda i, _: i < steps, move, (0, x0))[1]         # a small graph
        return (x - tf.sqrt(alpha_bar) * x0) / noise_level                   # ε̂'
    return run


def refine(x, loss, steps: int, rate: float):
    """x₀ after `steps` Adam steps of learning rate `rate` down sum(loss(x))."""
    if steps == 0:
        return x
    b1, b2, eps = 0.9, 0.999, 1e-8

    @tf.function
    def run(x):
        def body(i, x, m, v):
            with tf.GradientTape() as tape:
                tape.watch(x)
                total = tf.reduce_sum(loss(x))
            g = tape.gradient(total, x)
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g ** 2
            k = tf.cast(i + 1, tf.float32)
            step = rate * (m / (1 - b1 ** k)) / (tf.sqrt(v / (1 - b2 ** k)) + eps)
            return i + 1, x - step, m, v
        zeros = tf.zeros_like(x)
        return tf.while_loop(lambda i, *_: i < steps, body, (0, x, zeros, zeros))[1]
    return run(tf.convert_to_tensor(x, tf.float32))
