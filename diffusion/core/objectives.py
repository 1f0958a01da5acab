"""The training objectives of the diffusion core, model-agnostic: ε-prediction (DDPM /
DiffWave) and v-prediction (v-diffusion, Moûsai), chosen by the family (`family.objective`).

    t, noise = draw_steps_and_noise(schedule, tf.shape(x0), seed)
    loss = epsilon_loss(denoise, schedule, x0, t, noise, kind="l1")    # per example, [B]

`denoise(x_t, t)` is any callable returning ε̂ with x_t's shape (the family's adapter adds its
conditioning). Randomness is stateless: t ~ U{0..T−1} per example and ε ~ N(0, I) are drawn
from `seed` [2] int32. The trainer keys it by the step and draws for the whole global batch,
so a resumed run, or the same run on another number of replicas, draws the same numbers.

    objective = make_objective("v", schedule)            # σ ~ U[0, 1], MSE on v = αε − βx₀
    sigma, noise = objective.draw(shape, seed); loss = objective.loss(denoise, x0, sigma, noise)
"""
from __future__ import annotations

import math

import tensorflow as tf


def draw_steps_and_noise(schedule, shape, seed):
    """t ~ U{0, …, T−1} per example [B] and ε ~ N(0, I) of `shape` ([B, …])."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    t = tf.random.stateless_uniform(shape[:1], seeds[0], 0, schedule.num_steps, dtype=tf.int32)
    noise = tf.random.stateless_normal(shape, seeds[1])
    return t, noise


def epsilon_loss(denoise, schedule, x0, t, noise, kind: str = "l1", prior_std=None):
    """Per-example ‖ε − ε_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t)‖ averaged over the non-batch axes:
    L1 (the DiffWave reference) or L2 (DDPM's L_simple). Returns [B] float32.
    PriorGrad (Lee et al. 2022, eq. 6): with ε ~ N(0, Σ), Σ^½ = `prior_std` (the caller's
    `noise` is already drawn from it), the error is measured in Σ^−½ units: ‖Σ^−½(ε − ε_θ)‖."""
    x0 = tf.cast(x0, tf.float32)
    x_t = schedule.q_sample(x0, t, noise)                     # q(x_t | x_0)
    error = tf.cast(denoise(x_t, t), tf.float32) - noise
    if prior_std is not None:
        error = error / prior_std
    error = tf.abs(error) if kind == "l1" else tf.square(error)
    return tf.reduce_mean(tf.reshape(error, [tf.shape(x0)[0], -1]), axis=1)


# --- v-diffusion (Salimans & Ho 2022; Moûsai / audio-diffusion-pytorch) ------------------------

def v_alpha_beta(sigma):
    """α = cos(σπ/2), β = sin(σπ/2) for a noise level σ ∈ [0, 1] (α² + β² = 1)."""
    angle = tf.cast(sigma, tf.float32) * (math.pi / 2.0)
    return tf.cos(angle), tf.sin(angle)


def draw_sigmas_and_noise(shape, seed):
    """σ ~ U[0, 1) per example [B] and ε ~ N(0, I) of `shape`: the v-objective's draw, keyed by
    `seed` [2] int32 exactly as draw_steps_and_noise."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    sigma = tf.random.stateless_uniform(shape[:1], seeds[0], 0.0, 1.0)
    noise = tf.random.stateless_normal(shape, seeds[1])
    return sigma, noise


def _per_example(sigma, x):
    """σ [B] → [B, 1, …] broadcastable against x."""
    shape = tf.concat([tf.shape(sigma), tf.ones([tf.rank(x) - 1], tf.int32)], axis=0)
    return tf.reshape(sigma, shape)


def v_loss(denoise, x0, sigma, noise):
    """Per-example MSE of v̂ against v = αε − βx₀ at x_σ = αx₀ + βε. Returns [B] float32."""
    x0 = tf.cast(x0, tf.float32)
    alpha, beta = v_alpha_beta(_per_example(sigma, x0))
    x_sigma = alpha * x0 + beta * noise
    v = alpha * noise - beta * x0
    error = tf.square(tf.cast(denoise(x_sigma, sigma), tf.float32) - v)
    return tf.reduce_mean(tf.reshape(error, [tf.shape(x0)[0], -1]), axis=1)


class EpsilonObjective:
    """DDPM/DiffWave: integer t over the training schedule, loss on ε (L1 or L2)."""

    def __init__(self, schedule, kind: str = "l1"):
        self.schedule, self.kind = schedule, kind

    def draw(self, shape, seed):
        return draw_steps_and_noise(self.schedule, shape, seed)

    def loss(self, denoise, x0, t, noise, prior_std=None):
        return epsilon_loss(denoise, self.schedule, x0, t, noise, self.kind, prior_std)


class VObjective:
    """v-diffusion: continuous σ ~ U[0, 1], MSE on v (the network's step input is σ)."""

    def draw(self, shape, seed):
        return draw_sigmas_and_noise(shape, seed)

    def loss(self, denoise, x0, sigma, noise):
        return v_loss(denoise, x0, sigma, noise)


def make_objective(name: str, schedule, kind: str = "l1"):
    """The family's objective by name: "epsilon" (default) or "v"."""
    if name == "v":
        return VObjective()
    if name == "epsilon":
        return EpsilonObjective(schedule, kind)
    raise ValueError(f"unknown objective {name!r} (epsilon or v)")

