"""Backward-process schedulers, separate from the network (diffusers' set_timesteps / step split).

    scheduler = AncestralScheduler(schedule)               # schedule: diffusion.schedule.NoiseSchedule
    scheduler.set_timesteps("fast", inference_betas)       # or "ddpm" (every training step)
    scheduler = DDIMScheduler(schedule, eta=0.0); scheduler.set_timesteps(10)
    audio = sample(denoise, scheduler, shape=[4, 16000, 1], seed=0)

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
            alpha_bar = self.tf_alpha_bars[n]
            x0 = tf.clip_by_value((x - tf.sqrt(1.0 - alpha_bar) * eps) / tf.sqrt(alpha_bar),
                                  -1.0, 1.0)
            return self.c_x0[n] * x0 + self.c_x[n] * x + self.sigma[n] * noise
        x = self.c1[n] * (x - self.c2[n] * eps) + self.sigma[n] * noise
        return tf.clip_by_value(x, -1.0, 1.0)


class DDIMScheduler(Scheduler):
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
        prev, sigma = self.tf_prev[n], self.sigma[n]
        direction = tf.sqrt(tf.maximum(1.0 - prev - sigma ** 2, 0.0)) * eps
        return tf.sqrt(prev) * self.predict_x0(eps, n, x) + direction + sigma * noise

    def invert_step(self, eps, n, x):
        """Deterministic DDIM inversion, index n−1 → n (ᾱ 1 below index 0): the encoder."""
        prev = self.tf_prev[n]
        x0 = (x - tf.sqrt(1.0 - prev) * eps) / tf.sqrt(prev)
        alpha_bar = self.tf_alpha_bars[n]
        return tf.sqrt(alpha_bar) * x0 + tf.sqrt(1.0 - alpha_bar) * eps


def step_noise(shape, seed, n):
    """z for inference index n: stateless, keyed (seed, n + 1); (seed, 0) is x_T's."""
    return tf.random.stateless_normal(shape, tf.stack([tf.cast(seed, tf.int32), n + 1]))


def initial_noise(shape, seed):
    return tf.random.stateless_normal(shape, tf.stack([tf.cast(seed, tf.int32), 0]))


def known_noise(shape, seed):
    """The fixed z that re-noises the known region of in/out-painting, keyed (seed, −1)."""
    return tf.random.stateless_normal(shape, tf.stack([tf.cast(seed, tf.int32), -1]))


def edge_mask(shape, axis: int, start: int, end: int):
    """1 on the first `start` and last `end` positions along `axis` of `shape`, else 0, shaped to
    broadcast against x (the in/out-painting mask: keep the beginning and/or the end)."""
    length = int(shape[axis])
    start, end = max(0, min(int(start), length)), max(0, min(int(end), length))
    line = np.zeros(length, np.float32)
    line[:start] = 1.0
    if end:
        line[length - end:] = 1.0
    view = [1] * len(shape)
    view[axis] = length
    return line.reshape(view)


def slerp(x0, x1, alpha: float):
    """Spherical interpolation of two noise tensors (flattened per whole tensor, as diffusers'
    AudioDiffusionPipeline.slerp): θ = arccos(x₀·x₁/‖x₀‖‖x₁‖),
    sin((1−α)θ)/sin θ · x₀ + sin(αθ)/sin θ · x₁; linear when θ ≈ 0. Keeps Gaussian norms."""
    a, b = np.asarray(x0, np.float64), np.asarray(x1, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"slerp: shapes differ, {a.shape} vs {b.shape}")
    cos = np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b))
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    if theta < 1e-6:
        return ((1 - alpha) * a + alpha * b).astype(np.float32)
    return ((np.sin((1 - alpha) * theta) * a + np.sin(alpha * theta) * b) /
            np.sin(theta)).astype(np.float32)


def sample(denoise, scheduler, shape, seed: int = 0, progress=None, init=None,
           strength: float = 1.0, noise=None, return_sequence: bool = False, known=None):
    """Runs the backward process, one compiled step per inference step (a single trace).

    From pure noise x_T (drawn from `seed`, or `noise` — e.g. a DDIM encoding), or
    (audio-to-audio / SDEdit) from `init` noised to the index that `strength` picks.
    `known = (x_known, mask)` (in/out-painting, any family): where mask is 1, x is overwritten
    after every step with x_known re-noised to the level just reached (clean after the last),
    with the fixed noise z_known of `seed`; mask broadcasts against x.
    `denoise(x, t [B]) → ε̂`; `progress(i, total)` after each step.
    Returns x₀, or with return_sequence the list [x_start, …, x₀]. Reproducible per seed.
    """
    shape = tf.constant(shape, tf.int32)
    if known is not None:
        x_known = tf.convert_to_tensor(known[0], tf.float32)
        mask = tf.cast(tf.convert_to_tensor(known[1]), tf.float32)
        z_known = known_noise(shape, seed)

    def keep_known(x, n):
        """x at index n (n = −1: x₀) with the known region at the same noise level."""
        if known is None:
            return x
        renoised = tf.where(n >= 0, scheduler.add_noise(x_known, z_known, tf.maximum(n, 0)),
                            x_known)
        return mask * renoised + (1.0 - mask) * x

    @tf.function(reduce_retracing=True)
    def one_step(x, n):
        t = tf.fill(shape[:1], scheduler.model_steps[n])
        x = scheduler.step(denoise(x, t), n, x, step_noise(shape, seed, n))
        return keep_known(x, n - 1)

    start = scheduler.num_inference_steps - 1
    x = initial_noise(shape, seed) if noise is None else tf.convert_to_tensor(noise, tf.float32)
    if init is not None:
        start = scheduler.start_index(strength)
        x = scheduler.add_noise(tf.convert_to_tensor(init, tf.float32), x, start)
    x = keep_known(x, tf.constant(start))
    sequence = [x] if return_sequence else None
    indices = [n for n in scheduler.timesteps if n <= start]
    for i, n in enumerate(indices):
        x = one_step(x, tf.constant(n, tf.int32))
        if return_sequence:
            sequence.append(x)
        if progress is not None:
            progress(i + 1, len(indices))
    return sequence if return_sequence else x


def encode(denoise, scheduler: DDIMScheduler, x0, progress=None):
    """DDIM inversion (η = 0): audio x₀ → the noise x_T that DDIM decodes back to ≈ x₀."""
    x = tf.convert_to_tensor(x0, tf.float32)

    @tf.function(reduce_retracing=True)
    def one_step(x, n):
        below = tf.maximum(n - 1, 0)                        # ε̂ at the level x is at now
        t = tf.fill(tf.shape(x)[:1], scheduler.model_steps[below])
        return scheduler.invert_step(denoise(x, t), n, x)

    for n in range(scheduler.num_inference_steps):
        x = one_step(x, tf.constant(n, tf.int32))
        if progress is not None:
            progress(n + 1, scheduler.num_inference_steps)
    return x


def chunked(denoise, chunk: int, halo: int):
    """denoise over overlapping windows: the same ε̂ as the whole-length pass, in bounded memory.

    Each window is a chunk plus `halo` samples each side (clipped at the signal's ends, where
    the network's own zero padding applies, as in the whole pass); only the chunk is kept.
    Exact when halo ≥ (receptive_field − 1)/2. Windows run one at a time (parallel_iterations
    = 1) so only one window's activations are alive.
    """
    def run(x, t):
        length = tf.shape(x)[1]
        count = (length + chunk - 1) // chunk
        parts = tf.TensorArray(x.dtype, size=count, infer_shape=False)

        def body(i, parts):
            start = i * chunk
            end = tf.minimum(start + chunk, length)
            low, high = tf.maximum(start - halo, 0), tf.minimum(end + halo, length)
            eps = denoise(x[:, low:high], t)[:, start - low:end - low]
            return i + 1, parts.write(i, tf.transpose(eps, [1, 0, 2]))   # time-major pieces

        _, parts = tf.while_loop(lambda i, _: i < count, body, (0, parts), parallel_iterations=1)
        return tf.transpose(parts.concat(), [1, 0, 2])
    return run
