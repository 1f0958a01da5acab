"""The V sampler of v-diffusion (Moûsai / audio-diffusion-pytorch's VSampler), DDIM-like over a
linear σ schedule, with the interface of diffusion/samplers.py's schedulers:

    scheduler = VScheduler(); scheduler.set_timesteps(50)
    x0 = sample(denoise, scheduler, shape, seed)         # denoise(x_σ, σ [B]) → v̂

Grid σ_0 = 0 < σ_1 < … < σ_S = 1 (linear). Inference index n = S−1 … 0 is at σ_{n+1} (the
network's step input, `model_steps`) and moves to σ_n. With α = cos(σπ/2), β = sin(σπ/2):
    x̂₀ = α x − β v̂,   ε̂ = β x + α v̂,   x ← α_n x̂₀ + β_n ε̂   (deterministic, as the reference)
Since α(1) = 0, the start x at σ = 1 is pure noise, as `sample` draws it.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from diffusion.samplers import Scheduler


class VScheduler(Scheduler):
    def __init__(self, num_steps: int = 50, clip: bool = True):
        self.clip = clip                # clamp x̂₀ to [−1, 1] (audio and tanh latents live there)
        self.set_timesteps(num_steps)

    def set_timesteps(self, num_steps: int = 50) -> None:
        if not 1 <= int(num_steps) <= 10_000:
            raise ValueError(f"V sampler steps must be in 1..10000, got {num_steps}")
        sigmas = np.linspace(0.0, 1.0, int(num_steps) + 1)                      # σ_0 … σ_S
        self.sigmas = sigmas
        alphas, betas = np.cos(sigmas * np.pi / 2), np.sin(sigmas * np.pi / 2)
        alphas[-1], betas[0] = 0.0, 0.0                                         # exact ends
        self._set(sigmas[1:], alphas[1:] ** 2)                                  # ᾱ = α²
        self.tf_alpha = tf.constant(alphas, tf.float32)                         # α_n
        self.tf_beta = tf.constant(betas, tf.float32)                           # β_n

    def predict_x0(self, v, n, x):
        alpha, beta = self.tf_alpha[n + 1], self.tf_beta[n + 1]
        x0 = alpha * x - beta * v                                               # x̂₀
        return tf.clip_by_value(x0, -1.0, 1.0) if self.clip else x0

    def step(self, v, n, x, noise=None):
        """From σ_{n+1} to σ_n; `noise` is unused (deterministic), kept for the interface."""
        alpha, beta = self.tf_alpha[n + 1], self.tf_beta[n + 1]
        x0 = self.predict_x0(v, n, x)
        eps = beta * x + alpha * v                                              # ε̂
        return self.tf_alpha[n] * x0 + self.tf_beta[n] * eps

    def add_noise(self, x0, noise, n):
        """x_σ at inference index n: α x₀ + β ε (audio-to-audio's starting point)."""
        return self.tf_alpha[n + 1] * x0 + self.tf_beta[n + 1] * noise
