"""Measurement consistency (diffusion/core/consistency.py): ᾱ at fractional steps, the guided ε̂,
the refinement, and the DiffWave family's use of them on a mel run."""
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from diffusion.core.consistency import Consistency, alpha_bar_at, consistency_guided, refine
from diffusion.core.schedule import NoiseSchedule
from params import Params, ParamsError

ROOT = Path(__file__).resolve().parent.parent

BETAS = np.linspace(1e-4, 0.05, 50)
FAST = (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5)


def test_alpha_bar_at_whole_and_fast_steps():
    schedule = NoiseSchedule(BETAS)
    whole = alpha_bar_at(schedule, tf.range(50, dtype=tf.float32)).numpy()
    np.testing.assert_allclose(whole, np.cumprod(1 - BETAS), rtol=1e-6)
    # DiffWave's fast steps are placed so that √ᾱ interpolates to the fast schedule's ᾱ'_n.
    fast = alpha_bar_at(schedule, tf.constant(schedule.fast_steps(FAST), tf.float32)).numpy()
    np.testing.assert_allclose(fast, np.cumprod(1 - np.array(FAST)), rtol=1e-5)


def _implied_x0(x, eps, alpha_bar):
    return (x - np.sqrt(1 - alpha_bar) * eps) / np.sqrt(alpha_bar)


def test_guided_noise_estimate_moves_x0_down_the_loss_by_the_noise_level():
    schedule = NoiseSchedule(BETAS)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal([2, 64, 1]), tf.float32)
    target = tf.constant(rng.standard_normal([2, 64, 1]) * 0.1, tf.float32)
    denoise = lambda x, t: 0.5 * x                                         # noqa: E731
    loss = lambda x0: tf.reduce_mean((x0 - target) ** 2, axis=[1, 2])      # noqa: E731
    assert consistency_guided(denoise, schedule, loss, 0.0, 10) is denoise
    t = tf.constant([10.0, 30.5])
    eps, guided = denoise(x, t).numpy(), consistency_guided(denoise, schedule, loss, 0.2, 3)(x, t)
    alpha_bar = alpha_bar_at(schedule, t).numpy()[:, None, None]
    before = _implied_x0(x.numpy(), eps, alpha_bar)
    after = _implied_x0(x.numpy(), guided.numpy(), alpha_bar)
    assert (loss(after).numpy() < loss(before).numpy()).all()
    # Each of the 3 moves has RMS s·√(1 − ᾱ) per example: together at most 3× that.
    moved = np.sqrt(((after - before) ** 2).mean(axis=(1, 2)))
    bound = 3 * 0.2 * np.sqrt(1 - alpha_bar[:, 0, 0])
    assert (moved <= bound * 1.001).all() and (moved > 0.5 * bound).all(), (moved, bound)


def test_refine_descends_the_log_mel_distance_of_a_real_clip():
    from data.features import log_mel, read_mono
    clip = read_mono(str(sorted((ROOT / "dataset" / "digits").glob("*.flac"))[0]), 16000)[:8192]
    target = log_mel(clip[None], 16000)
    noisy = clip[None, :, None] + 0.02 * np.random.default_rng(0).standard_normal(
        [1, len(clip), 1]).astype(np.float32)
    loss = lambda x: tf.reduce_mean(tf.abs(log_mel(x[..., 0], 16000) - target), [1, 2])  # noqa
    before = float(loss(tf.constant(noisy)))
    after = float(loss(refine(noisy, loss, 100, 1e-3)))
    assert after < 0.6 * before, (before, after)
    assert refine(noisy, loss, 0, 1e-4) is noisy


def test_consistency_params_are_checked():
    params = Params.from_dict({"model": "diffwave", "network": {"conditioning": "mel",
                                                                "consistency": 0.3,
                                                                "refine_steps": 100}})
    settings = Consistency.from_params(params.network)
    assert settings == Consistency(0.3, 10, 100, 1e-3) and not settings.off
    assert Consistency().off
    with pytest.raises(ParamsError, match="need conditioning 'mel', not 'class'"):
        Params.from_dict({"model": "diffwave", "network": {"conditioning": "class",
                                                           "consistency": 0.3}})
    with pytest.raises(ParamsError, match="network.refine_steps must be >= 0, got -1"):
        Params.from_dict({"model": "diffwave", "network": {"conditioning": "mel",
                                                           "refine_steps": -1}})
