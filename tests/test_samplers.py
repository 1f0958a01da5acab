"""The ancestral sampler against a NumPy transcription of the DiffWave reference loop."""
import numpy as np
import pytest
import tensorflow as tf

from diffusion.samplers import AncestralScheduler, sample
from diffusion.schedule import NoiseSchedule

BASE = NoiseSchedule.linear(50, 1e-4, 0.05)
FAST = [1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5]


def toy_denoise(x, t):
    """A deterministic stand-in for ε_θ that depends on x and on the (fractional) step."""
    t = tf.cast(t, x.dtype)[:, None, None]
    return 0.3 * x + 0.01 * t


def reference_loop(x, noises, betas, steps, variance="beta_tilde"):
    """The reference's inference loop in NumPy (c1, c2, σ, clamp to [−1, 1])."""
    alphas = 1.0 - betas
    alpha_bars = np.cumprod(alphas)
    for k, n in enumerate(range(len(betas) - 1, -1, -1)):
        t = np.full(x.shape[0], steps[n])
        eps = 0.3 * x + 0.01 * t[:, None, None]
        x = (x - betas[n] / np.sqrt(1 - alpha_bars[n]) * eps) / np.sqrt(alphas[n])
        if n > 0:
            sigma2 = (1 - alpha_bars[n - 1]) / (1 - alpha_bars[n]) * betas[n] \
                if variance == "beta_tilde" else betas[n]
            x = x + np.sqrt(sigma2) * noises[k]
        x = np.clip(x, -1.0, 1.0)
    return x


@pytest.mark.parametrize("kind,variance", [("fast", "beta_tilde"), ("ddpm", "beta_tilde"),
                                           ("ddpm", "beta")])
def test_sampler_matches_reference_loop(kind, variance):
    scheduler = AncestralScheduler(BASE, variance=variance)
    scheduler.set_timesteps(kind, FAST)
    shape, seed = [2, 300, 1], 5
    out = sample(toy_denoise, scheduler, shape, seed).numpy()
    # Re-draw the same stateless noise the sampler used, then run the reference loop.
    x = tf.random.stateless_normal(shape, [seed, 0]).numpy().astype(np.float64)
    noises = [tf.random.stateless_normal(shape, [seed, n + 1]).numpy()
              for n in scheduler.timesteps]
    betas = np.asarray(FAST) if kind == "fast" else BASE.betas
    steps = BASE.fast_steps(FAST) if kind == "fast" else np.arange(50)
    expected = reference_loop(x, noises, betas, steps, variance)
    np.testing.assert_allclose(out, expected, atol=2e-5)


def test_sampling_is_reproducible_per_seed_and_any_length():
    scheduler = AncestralScheduler(BASE)
    scheduler.set_timesteps("fast", FAST)
    a = sample(toy_denoise, scheduler, [1, 1000, 1], seed=3).numpy()
    b = sample(toy_denoise, scheduler, [1, 1000, 1], seed=3).numpy()
    c = sample(toy_denoise, scheduler, [1, 1000, 1], seed=4).numpy()
    assert np.array_equal(a, b) and not np.allclose(a, c)
    for length in (1, 17, 2345):
        assert sample(toy_denoise, scheduler, [3, length, 1], 0).shape == (3, length, 1)
    seen = []
    sample(toy_denoise, scheduler, [1, 10, 1], 0, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 6) for i in range(1, 7)]


def test_bad_scheduler_arguments():
    with pytest.raises(ValueError, match="variance"):
        AncestralScheduler(BASE, variance="other")
    with pytest.raises(ValueError, match="unknown timestep kind"):
        AncestralScheduler(BASE).set_timesteps("ddim")
