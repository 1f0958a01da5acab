"""Model-agnostic noise schedule of the forward process q(x_t | x_0) (DDPM / DiffWave).

    schedule = NoiseSchedule.linear(50, 1e-4, 0.05)
    x_t = schedule.q_sample(x0, t, noise)               # t: [B] integer steps in 0..T−1
    steps = schedule.fast_steps([1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5])

Steps are 0-indexed like the DiffWave reference: index t holds the paper's step t+1,
so alpha_bars[t] = Π_{s≤t} (1 − β_s) and alpha_bars[0] = 1 − β_1.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


class NoiseSchedule:
    """β_t, α_t = 1 − β_t and ᾱ_t = Π_{s≤t} α_s, as NumPy float64 and tf.float32 constants."""

    def __init__(self, betas):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or betas.size == 0:
            raise ValueError(f"betas must be a non-empty 1-D sequence, got shape {betas.shape}")
        if not np.all((betas > 0.0) & (betas < 1.0)):
            raise ValueError("every beta must be in (0, 1)")
        self.num_steps = betas.size             # T
        self.betas = betas                      # β_t
        self.alphas = 1.0 - betas               # α_t = 1 − β_t
        self.alpha_bars = np.cumprod(self.alphas)  # ᾱ_t = Π_{s≤t} α_s
        self.tf_betas = tf.constant(self.betas, tf.float32)
        self.tf_alphas = tf.constant(self.alphas, tf.float32)
        self.tf_alpha_bars = tf.constant(self.alpha_bars, tf.float32)

    @classmethod
    def linear(cls, num_steps: int, beta_start: float, beta_end: float) -> "NoiseSchedule":
        """β_t spaced linearly from β_1 = beta_start to β_T = beta_end."""
        return cls(np.linspace(beta_start, beta_end, num_steps))

    @classmethod
    def from_params(cls, params) -> "NoiseSchedule":
        d = params.diffusion
        return cls.linear(d.num_steps, d.beta_start, d.beta_end)

    def q_sample(self, x0, t, noise):
        """x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε, with t [B] broadcast over x_0's other axes."""
        x0 = tf.convert_to_tensor(x0)
        noise = tf.convert_to_tensor(noise, dtype=x0.dtype)
        alpha_bar = tf.gather(self.tf_alpha_bars, tf.cast(t, tf.int32))      # ᾱ_t, [B]
        shape = tf.concat([tf.shape(alpha_bar), tf.ones([tf.rank(x0) - 1], tf.int32)], axis=0)
        alpha_bar = tf.cast(tf.reshape(alpha_bar, shape), x0.dtype)           # [B, 1, ...]
        return tf.sqrt(alpha_bar) * x0 + tf.sqrt(1.0 - alpha_bar) * noise

    def fast_steps(self, inference_betas) -> np.ndarray:
        """Fractional training steps aligned with a short inference schedule (DiffWave fast sampling).

        For each inference step s, ᾱ'_s = Π_{u≤s} (1 − β'_u) lies between ᾱ_{t+1} and ᾱ_t;
        the returned step is t + (√ᾱ_t − √ᾱ'_s) / (√ᾱ_t − √ᾱ_{t+1}), i.e. the interpolation
        point in √ᾱ, used as the (fractional) step fed to the network's step embedding.
        """
        inference_alpha_bars = np.cumprod(1.0 - np.asarray(inference_betas, np.float64))  # ᾱ'_s
        sqrt_ab = np.sqrt(self.alpha_bars)                                                # √ᾱ_t
        steps = []
        tol = 1e-12   # absorbs round-off when ᾱ'_s equals a training ᾱ_t (β'_1 = β_1 → step 0)
        for s, ab in enumerate(inference_alpha_bars):
            found = [t for t in range(self.num_steps - 1)
                     if self.alpha_bars[t + 1] - tol <= ab <= self.alpha_bars[t] + tol]
            if not found:
                raise ValueError(f"inference step {s}: ᾱ'={ab:.6g} is outside the training range "
                                 f"[{self.alpha_bars[-1]:.6g}, {self.alpha_bars[0]:.6g}]")
            t = found[0]
            frac = (sqrt_ab[t] - np.sqrt(ab)) / (sqrt_ab[t] - sqrt_ab[t + 1])
            steps.append(t + float(np.clip(frac, 0.0, 1.0)))
        return np.asarray(steps, dtype=np.float64)
