"""Backward-process samplers, separate from the network (diffusers' set_timesteps / step split).

    scheduler = AncestralScheduler(schedule)               # schedule: diffusion.schedule.NoiseSchedule
    scheduler.set_timesteps("fast", inference_betas)       # or "ddpm" (every training step)
    audio = sample(denoise, scheduler, shape=[4, 16000, 1], seed=0)

Ancestral update for inference step n (β'_n, α'_n = 1 − β'_n, ᾱ'_n = Π α'):
    x ← (x − β'_n / √(1 − ᾱ'_n) · ε_θ(x, t_n)) / √α'_n  + σ_n z     (n > 0)
with σ_n² = β̃_n = (1 − ᾱ'_{n−1}) / (1 − ᾱ'_n) · β'_n (default) or β'_n, and t_n the network's
(fractional, for "fast") training step. DDPM uses β' = β and t_n = n; DiffWave's fast sampling
uses a short β' aligned to fractional steps by NoiseSchedule.fast_steps. Like the reference,
x is clamped to [−1, 1] after every step.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


class AncestralScheduler:
    def __init__(self, schedule, variance: str = "beta_tilde"):
        if variance not in ("beta_tilde", "beta"):
            raise ValueError(f"variance must be beta_tilde or beta, got {variance!r}")
        self.schedule = schedule
        self.variance = variance
        self.set_timesteps("ddpm")

    def set_timesteps(self, kind: str = "ddpm", inference_betas=None) -> None:
        if kind == "ddpm":
            betas = self.schedule.betas
            steps = np.arange(self.schedule.num_steps, dtype=np.float64)
        elif kind == "fast":
            betas = np.asarray(inference_betas, np.float64)
            steps = self.schedule.fast_steps(betas)
        else:
            raise ValueError(f"unknown timestep kind {kind!r} (ddpm or fast)")
        alpha_bars = np.cumprod(1.0 - betas)                                   # ᾱ'_n
        prev = np.concatenate([[1.0], alpha_bars[:-1]])                        # ᾱ'_{n−1}
        sigma2 = (1.0 - prev) / (1.0 - alpha_bars) * betas if self.variance == "beta_tilde" \
            else betas.copy()
        sigma2[0] = 0.0                                                        # no noise at n = 0
        self.num_inference_steps = len(betas)
        self.timesteps = np.arange(len(betas))[::-1]                           # n = S−1 … 0
        self.model_steps = tf.constant(steps, tf.float32)                      # t_n
        self.c1 = tf.constant(1.0 / np.sqrt(1.0 - betas), tf.float32)          # 1/√α'_n
        self.c2 = tf.constant(betas / np.sqrt(1.0 - alpha_bars), tf.float32)   # β'_n/√(1−ᾱ'_n)
        self.sigma = tf.constant(np.sqrt(sigma2), tf.float32)                  # σ_n

    def step(self, eps, n, x, noise):
        """One ancestral step from inference index n (a scalar int tensor) → x_{n−1}."""
        x = self.c1[n] * (x - self.c2[n] * eps) + self.sigma[n] * noise
        return tf.clip_by_value(x, -1.0, 1.0)

    def add_noise(self, x0, noise, t):
        """q(x_t | x_0) for integer training steps t [B]."""
        return self.schedule.q_sample(x0, t, noise)


def sample(denoise, scheduler, shape, seed: int = 0, progress=None):
    """Runs the whole backward process x_T ~ N(0, I) → x_0, one compiled step per inference
    step (one trace for all of them). `denoise(x, t [B]) → ε̂`; `progress(i, total)` is called
    after each step. Reproducible from `seed` (stateless noise, one key per step)."""
    shape = tf.constant(shape, tf.int32)

    @tf.function(reduce_retracing=True)
    def one_step(x, n):
        t = tf.fill(shape[:1], scheduler.model_steps[n])
        noise = tf.random.stateless_normal(shape, tf.stack([seed, n + 1]))
        return scheduler.step(denoise(x, t), n, x, noise)

    x = tf.random.stateless_normal(shape, tf.constant([seed, 0], tf.int32))
    for i, n in enumerate(scheduler.timesteps):
        x = one_step(x, tf.constant(n, tf.int32))
        if progress is not None:
            progress(i + 1, scheduler.num_inference_steps)
    return x
