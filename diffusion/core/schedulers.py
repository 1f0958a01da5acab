"""Backward-process schedulers, separate from the network (diffusers' set_timesteps / step split).

    scheduler = AncestralScheduler(schedule)               # schedule: diffusion.core.schedule.NoiseSchedule
    scheduler.set_timesteps("fast", inference_betas)       # or "ddpm" (every training step)
    scheduler = DDIMScheduler(schedule, eta=0.0); scheduler.set_timesteps(10)
    audio = sample(denoise, scheduler, shape=[4, 16000, 1], seed=0)   # diffusion/core/sampling.py

Every scheduler walks inference indices n = S−1 … 0; index n has the network step t_n
(`model_steps`, fractional for "fast"), the cumulative ᾱ_n of its noise level (`alpha_bars`)
and `step(ε̂, n, x, z)` → x at index n−1 (x₀ after n = 0).

Ancestral (DDPM; DiffWave's fast schedule uses a short β' aligned by NoiseSchedule.fast_steps):
    x ← (x − β'_n / √(1 − ᾱ'_n) · ε̂) / √α'_n + σ_n z,   σ_n² = β̃_n = (1−ᾱ'_{n−1})/(1−ᾱ'_n)·β'_n
    (or β'_n), σ_0 = 0, and x clamped to [−1, 1] after every step, as the DiffWave reference
    (clip="x"). clip="x0" is diffusers' DDPMScheduler (clip_sample, the mel family): the
    posterior mean of the clamped x̂₀ = (x − √(1−ᾱ'_n) ε̂)/√ᾱ'_n, x itself never clamped:
    x ← √ᾱ'_{n−1} β'_n/(1−ᾱ'_n) · x̂₀ + √α'_n (1−ᾱ'_{n−1})/(1−ᾱ'_n) · x + σ_n z
    (the same step as clip="x" while x̂₀ stays in [−1, 1]).
DDIM (Song et al. 2020) over a sub-sequence τ of the training steps:
    x̂₀ = (x − √(1−ᾱ_τn) ε̂)/√ᾱ_τn (clipped to [−1, 1]),  σ_n = η √((1−ᾱ_prev)/(1−ᾱ_τn)) √(1−ᾱ_τn/ᾱ_prev)
    x ← √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ_n²) ε̂ + σ_n z,   ᾱ_prev = ᾱ_τ(n−1) (1 after n = 0)
V (v-diffusion; Moûsai / audio-diffusion-pytorch's VSampler), DDIM-like over a linear σ grid:
    σ_0 = 0 < σ_1 < … < σ_S = 1; index n is at σ_{n+1} and moves to σ_n; α = cos(σπ/2),
    β = sin(σπ/2):  x̂₀ = α x − β v̂,  ε̂ = β x + α v̂,  x ← α_n x̂₀ + β_n ε̂ (deterministic).
    Since α(1) = 0, the start x at σ = 1 is pure noise, as `sample` draws it.

    scheduler = build_scheduler(params, "fast" | "ddpm" | "ddim" | "v", steps=None, eta=0.0)
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


class Scheduler:
    """Shared bookkeeping: inference indices, network steps and noise levels per index."""

    def _set(self, model_steps, alpha_bars):
        self.num_inference_steps = len(alpha_bars)
        self.timesteps = np.arange(self.num_inference_steps)[::-1]           # n = S−1 … 0
        self.alpha_bars = np.asarray(alpha_bars, np.float64)                   # ᾱ_n
        self.model_steps = tf.constant(model_steps, tf.float32)                # t_n
        self.tf_alpha_bars = tf.constant(self.alpha_bars, tf.float32)

    def add_noise(self, x0, noise, n):
        """x at inference index n given x₀: √ᾱ_n x₀ + √(1 − ᾱ_n) z (SDEdit's starting point)."""
        alpha_bar = self.tf_alpha_bars[n]
        return tf.sqrt(alpha_bar) * x0 + tf.sqrt(1.0 - alpha_bar) * noise

    def start_index(self, strength: float) -> int:
        """Inference index to start audio-to-audio from: strength 1 = pure noise, → 0 = input."""
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        return max(0, int(np.ceil(strength * self.num_inference_steps)) - 1)


class AncestralScheduler(Scheduler):
    """DDPM's ancestral sampler (Ho et al. 2020, Alg. 2; DiffWave Alg. 2 with its fast schedule).

    Notation (code → paper):
        eps          → ε_θ(x_n, t_n), the network's noise estimate
        x            → x_n          (the return value: x_{n−1})
        noise        → z ~ N(0, I)
        self.c1[n]   → 1/√α'_n      (α'_n = 1 − β'_n)
        self.c2[n]   → β'_n/√(1 − ᾱ'_n)
        self.sigma[n] → σ_n = √β̃_n = √((1 − ᾱ'_{n−1})/(1 − ᾱ'_n)·β'_n), σ_0 = 0 (or √β'_n)
        model_steps  → t_n, the network's step (fractional on DiffWave's fast schedule)
        self.c_x0[n], self.c_x[n] → √ᾱ'_{n−1}β'_n/(1 − ᾱ'_n), √α'_n(1 − ᾱ'_{n−1})/(1 − ᾱ'_n):
                       the posterior mean's weights of x̂₀ and x_n (clip="x0")
    clip: "x" clamps x_{n−1} to [−1, 1] (the DiffWave reference); "x0" clamps x̂₀ instead and
    never x (diffusers' DDPMScheduler with clip_sample: the mel family).
    """

    def __init__(self, schedule, variance: str = "beta_tilde", clip: str = "x"):
        if variance not in ("beta_tilde", "beta"):
            raise ValueError(f"variance must be beta_tilde or beta, got {variance!r}")
        if clip not in ("x", "x0"):
            raise ValueError(f"clip must be x or x0, got {clip!r}")
        self.schedule = schedule
        self.variance, self.clip = variance, clip
        self.set_timesteps("ddpm")

    def set_timesteps(self, kind: str = "ddpm", inference_betas=None) -> None:
        if kind == "ddpm":
            betas = self.schedule.betas
            steps = np.arange(self.schedule.num_steps, dtype=np.float64)
            alpha_bars = self.schedule.alpha_bars                              # ᾱ_t
        elif kind == "fast":
            betas = np.asarray(inference_betas, np.float64)
            steps = self.schedule.fast_steps(betas)
            alpha_bars = np.cumprod(1.0 - betas)                               # ᾱ'_n
        else:
            raise ValueError(f"unknown timestep kind {kind!r} (ddpm or fast)")
        prev = np.concatenate([[1.0], alpha_bars[:-1]])                        # ᾱ'_{n−1}
        sigma2 = (1.0 - prev) / (1.0 - alpha_bars) * betas if self.variance == "beta_tilde" \
            else betas.copy()
        sigma2[0] = 0.0                                                        # no noise at n = 0
        self._set(steps, alpha_bars)
        self.c1 = tf.constant(1.0 / np.sqrt(1.0 - betas), tf.float32)          # 1/√α'_n
        self.c2 = tf.constant(betas / np.sqrt(1.0 - alpha_bars), tf.float32)   # β'_n/√(1−ᾱ'_n)
        self.sigma = tf.constant(np.sqrt(sigma2), tf.float32)                  # σ_n
        # clip="x0": posterior-mean coefficients of x̂₀ and x
        self.c_x0 = tf.constant(np.sqrt(prev) * betas / (1.0 - alpha_bars), tf.float32)
        self.c_x = tf.constant(np.sqrt(1.0 - betas) * (1.0 - prev) / (1.0 - alpha_bars),
                               tf.float32)

    def step(self, eps, n, x, noise):
        """One ancestral step from inference index n (a scalar int tensor) → index n−1."""
        if self.clip == "x0":
            # 1. x̂₀ = (x_n − √(1 − ᾱ'_n)·ε̂)/√ᾱ'_n, clamped to [−1, 1]
            # 2. the posterior mean c_x0·x̂₀ + c_x·x_n, plus σ_n z; x itself is not clamped
            alpha_bar = self.tf_alpha_bars[n]
            x0 = tf.clip_by_value((x - tf.sqrt(1.0 - alpha_bar) * eps) / tf.sqrt(alpha_bar),
                                  -1.0, 1.0)
            return self.c_x0[n] * x0 + self.c_x[n] * x + self.sigma[n] * noise
        # 1. the posterior mean μ_θ(x_n) = (x_n − β'_n/√(1 − ᾱ'_n)·ε̂)/√α'_n
        # 2. plus σ_n z (σ_0 = 0: the last step adds no noise)
        x = self.c1[n] * (x - self.c2[n] * eps) + self.sigma[n] * noise
        # 3. clamp to [−1, 1] after every step, as the DiffWave reference
        return tf.clip_by_value(x, -1.0, 1.0)


class DDIMScheduler(Scheduler):
    """DDIM (Song et al. 2020, eq. 12), after diffusers' scheduling_ddim.py.

    Notation (code → paper):
        eps            → ε_θ(x_τn, τ_n)
        x              → x_τn          (the return value: x_τ(n−1))
        alpha_bar      → ᾱ_τn          (tf_alpha_bars[n]; diffusers' alpha_prod_t)
        prev           → ᾱ_τ(n−1)      (tf_prev[n], 1 below n = 0; alpha_prod_t_prev)
        x0             → x̂₀ = "predicted x_0"
        sigma          → σ_n = η·√((1 − ᾱ_prev)/(1 − ᾱ_τn))·√(1 − ᾱ_τn/ᾱ_prev)
        direction      → √(1 − ᾱ_prev − σ_n²)·ε̂, "direction pointing to x_t"
        noise          → z ~ N(0, I)   (unused when η = 0)
    """

    def __init__(self, schedule, eta: float = 0.0, clip: bool = True):
        if eta < 0.0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        self.schedule, self.eta, self.clip = schedule, float(eta), clip
        self.set_timesteps(schedule.num_steps)

    def set_timesteps(self, num_steps: int = None, timesteps=None) -> None:
        """Evenly spaced τ over 0..T−1 (num_steps of them), or an explicit increasing τ."""
        total = self.schedule.num_steps
        if timesteps is None:
            if not 1 <= (num_steps or 0) <= total:
                raise ValueError(f"DDIM steps must be in 1..{total}, got {num_steps}")
            timesteps = np.unique(np.round(np.linspace(0, total - 1, num_steps)).astype(int))
        tau = np.asarray(timesteps, int)
        if tau.ndim != 1 or not len(tau) or np.any(np.diff(tau) <= 0) or tau[0] < 0 \
                or tau[-1] >= total:
            raise ValueError(f"DDIM timesteps must increase within 0..{total - 1}")
        alpha_bars = self.schedule.alpha_bars[tau]                              # ᾱ_τn
        prev = np.concatenate([[1.0], alpha_bars[:-1]])                         # ᾱ_τ(n−1)
        sigma = self.eta * np.sqrt((1 - prev) / (1 - alpha_bars) * (1 - alpha_bars / prev))
        self._set(tau.astype(np.float64), alpha_bars)
        self.tf_prev = tf.constant(prev, tf.float32)
        self.sigma = tf.constant(sigma, tf.float32)                             # σ_n

    def predict_x0(self, eps, n, x):
        alpha_bar = self.tf_alpha_bars[n]
        x0 = (x - tf.sqrt(1.0 - alpha_bar) * eps) / tf.sqrt(alpha_bar)          # x̂₀
        return tf.clip_by_value(x0, -1.0, 1.0) if self.clip else x0

    def step(self, eps, n, x, noise):
        # 1. ᾱ_prev and σ_n of this index (precomputed in set_timesteps)
        prev, sigma = self.tf_prev[n], self.sigma[n]
        # 2. "predicted x_0" x̂₀ = (x − √(1 − ᾱ_τn)·ε̂)/√ᾱ_τn, clipped (predict_x0)
        x0 = self.predict_x0(eps, n, x)
        # 3. "direction pointing to x_t"
        direction = tf.sqrt(tf.maximum(1.0 - prev - sigma ** 2, 0.0)) * eps
        # 4. x_τ(n−1) = √ᾱ_prev·x̂₀ + direction + σ_n z
        return tf.sqrt(prev) * x0 + direction + sigma * noise

    def invert_step(self, eps, n, x):
        """Deterministic DDIM inversion, index n−1 → n (ᾱ 1 below index 0): the encoder."""
        prev = self.tf_prev[n]
        x0 = (x - tf.sqrt(1.0 - prev) * eps) / tf.sqrt(prev)
        alpha_bar = self.tf_alpha_bars[n]
        return tf.sqrt(alpha_bar) * x0 + tf.sqrt(1.0 - alpha_bar) * eps


class VScheduler(Scheduler):
    """The V sampler (v-diffusion; audio-diffusion-pytorch's VSampler).

    Notation (code → paper):
        v              → v̂_θ(x_σ, σ) = α ε − β x₀ (the network's output)
        x              → x at σ_{n+1}  (the return value: x at σ_n)
        tf_alpha[k]    → α_k = cos(σ_k π/2)        tf_beta[k] → β_k = sin(σ_k π/2)
        x0             → x̂₀ = α x − β v̂          eps → ε̂ = β x + α v̂
        model_steps    → σ_{n+1}, the network's step input
    """

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
        # 1. α, β at the current σ_{n+1}
        alpha, beta = self.tf_alpha[n + 1], self.tf_beta[n + 1]
        # 2. x̂₀ = α x − β v̂ (clipped) and ε̂ = β x + α v̂
        x0 = self.predict_x0(v, n, x)
        eps = beta * x + alpha * v
        # 3. re-noise to σ_n: x = α_n x̂₀ + β_n ε̂
        return self.tf_alpha[n] * x0 + self.tf_beta[n] * eps

    def add_noise(self, x0, noise, n):
        """x_σ at inference index n: α x₀ + β ε (audio-to-audio's starting point)."""
        return self.tf_alpha[n + 1] * x0 + self.tf_beta[n + 1] * noise


def build_scheduler(params, sampler: str, steps=None, eta: float = 0.0, clip: str = "x"):
    """The scheduler of a run by name: fast | ddpm | ddim (ε families), v (v families).
    `clip`: the ancestral sampler's clamp (the family's `ddpm_clip`)."""
    from diffusion.core.schedule import NoiseSchedule
    if sampler == "v":                     # v-diffusion families: σ linear from 1 to 0
        return VScheduler(steps or 50)
    schedule = NoiseSchedule.from_params(params)
    if sampler == "ddim":
        scheduler = DDIMScheduler(schedule, eta=eta)
        scheduler.set_timesteps(steps or min(50, schedule.num_steps))
        return scheduler
    if sampler not in ("fast", "ddpm"):
        raise ValueError(f"unknown sampler {sampler!r} (choose from fast, ddpm, ddim, v)")
    scheduler = AncestralScheduler(schedule, clip=clip)
    if sampler == "fast":
        scheduler.set_timesteps("fast", params.diffusion.inference_betas)
    return scheduler
