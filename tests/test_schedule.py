"""Noise schedule: β/α/ᾱ, q(x_t | x_0) sampling and DiffWave's fast-sampling step alignment."""
import numpy as np
import pytest
import tensorflow as tf

from diffusion.core.schedule import NoiseSchedule

FAST_BETAS = [1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5]


def test_linear_schedule_quantities():
    s = NoiseSchedule.linear(50, 1e-4, 0.05)
    assert s.num_steps == 50 and s.betas.dtype == np.float64
    assert s.betas[0] == 1e-4 and s.betas[-1] == pytest.approx(0.05)
    np.testing.assert_allclose(s.alphas, 1.0 - s.betas)
    np.testing.assert_allclose(s.alpha_bars, np.cumprod(1.0 - s.betas))
    assert np.all(np.diff(s.alpha_bars) < 0) and 0 < s.alpha_bars[-1] < s.alpha_bars[0] < 1
    assert s.tf_alpha_bars.dtype == tf.float32
    np.testing.assert_allclose(s.tf_alpha_bars.numpy(), s.alpha_bars, rtol=1e-6)


def test_fast_steps_match_diffwave_base():
    s = NoiseSchedule.linear(50, 1e-4, 0.05)
    np.testing.assert_allclose(s.fast_steps(FAST_BETAS),
                               [0.0, 0.8941, 4.0867, 10.4518, 22.9925, 42.9186], atol=1e-4)


def test_fast_steps_reproduce_inference_noise_levels():
    s = NoiseSchedule.linear(200, 1e-4, 0.02)
    steps = s.fast_steps(FAST_BETAS[:-1])
    t = np.floor(steps).astype(int)
    frac = steps - t
    t1 = np.minimum(t + 1, s.num_steps - 1)
    sqrt_ab = np.sqrt(s.alpha_bars)
    np.testing.assert_allclose((sqrt_ab[t] + frac * (sqrt_ab[t1] - sqrt_ab[t])) ** 2,
                               np.cumprod(1.0 - np.array(FAST_BETAS[:-1])), rtol=1e-9)


def test_fast_steps_outside_training_range_raise():
    s = NoiseSchedule.linear(50, 1e-4, 0.05)
    with pytest.raises(ValueError, match="outside"):
        s.fast_steps([1e-4, 0.9, 0.9])


@pytest.mark.parametrize("shape", [(3, 17, 1), (3, 17), (3,)])
def test_q_sample_matches_numpy(shape):
    s = NoiseSchedule.linear(50, 1e-4, 0.05)
    rng = np.random.default_rng(0)
    x0, noise = rng.standard_normal(shape), rng.standard_normal(shape)
    t = np.array([0, 25, 49])
    ab = s.alpha_bars[t].reshape((3,) + (1,) * (len(shape) - 1))
    expected = np.sqrt(ab) * x0 + np.sqrt(1 - ab) * noise
    got = s.q_sample(tf.constant(x0, tf.float32), tf.constant(t), tf.constant(noise, tf.float32))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_q_sample_in_graph_with_dynamic_shapes():
    s = NoiseSchedule.linear(20, 1e-4, 0.05)
    fn = tf.function(s.q_sample, input_signature=[tf.TensorSpec([None, None, 1]),
                                                  tf.TensorSpec([None], tf.int32),
                                                  tf.TensorSpec([None, None, 1])])
    x0 = tf.ones([2, 5, 1])
    out = fn(x0, tf.constant([0, 19]), tf.zeros([2, 5, 1])).numpy()
    np.testing.assert_allclose(out[:, 0, 0], np.sqrt(s.alpha_bars[[0, 19]]), rtol=1e-6)


def test_bad_betas_raise():
    with pytest.raises(ValueError):
        NoiseSchedule([0.1, 1.0])
    with pytest.raises(ValueError):
        NoiseSchedule([])
