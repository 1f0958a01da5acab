"""DiffWave network: reference parameter count, shapes, step embedding, conditioning, receptive field."""
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from network.diffwave import DiffWave, step_table


def _params(**network):
    net = dict(residual_layers=30, residual_channels=64, dilation_cycle=10, conditioning="none",
               num_classes=10, n_mels=80, hop_length=256)
    net.update(network)
    return SimpleNamespace(network=SimpleNamespace(**net),
                           diffusion=SimpleNamespace(num_steps=50))


def _tiny(conditioning="none", perturb_head=True, layers=3, cycle=2, seed=0, **kw):
    keras.utils.set_random_seed(seed)
    net = DiffWave(layers, 8, cycle, 10, conditioning=conditioning, num_classes=4, n_mels=5,
                   hop_length=16, **kw)
    net.build()
    if perturb_head:
        net.output_projection.kernel.assign(tf.random.normal([1, 8, 1]))
    return net


def _inputs(batch, length, **extra):
    rng = np.random.default_rng(batch * 7919 + length)
    return {"audio": tf.constant(rng.standard_normal((batch, length, 1)), tf.float32),
            "step": tf.constant(rng.integers(0, 10, batch), tf.float32), **extra}


def test_base_has_reference_parameter_count():
    net = DiffWave.from_params(_params())
    net.build()
    assert sum(int(np.prod(w.shape)) for w in net.trainable_weights) == 2_308_737
    assert net.receptive_field == 1 + 3 * 2 * (2 ** 10 - 1) == 6139


def test_output_shape_matches_input_for_any_length_and_batch():
    net = _tiny()
    spec = {"audio": tf.TensorSpec([None, None, 1], tf.float32),
            "step": tf.TensorSpec([None], tf.float32)}
    forward = tf.function(net, input_signature=[spec])    # one trace, dynamic batch and length
    for batch, length in [(1, 1), (2, 1000), (3, 4001)]:
        out = forward(_inputs(batch, length))
        assert out.shape == (batch, length, 1) and out.dtype == tf.float32


def test_output_is_zero_at_init_and_nonzero_after_perturbing_head():
    net = _tiny(perturb_head=False)
    inputs = _inputs(2, 300)
    assert np.all(net(inputs).numpy() == 0.0)
    net.output_projection.kernel.assign(tf.random.normal([1, 8, 1]))
    assert np.abs(net(inputs).numpy()).max() > 0.0


def test_step_table_and_fractional_interpolation():
    table = step_table(10)
    d = np.arange(64)
    np.testing.assert_allclose(table[3, :64], np.sin(3 * 10.0 ** (4 * d / 63)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(table[3, 64:], np.cos(3 * 10.0 ** (4 * d / 63)), rtol=1e-5, atol=1e-5)

    net = _tiny()
    emb = net.embed_step(tf.constant([2.0, 2.3, 0.8941, 9.0])).numpy()
    np.testing.assert_array_equal(emb[0], table[2])
    np.testing.assert_allclose(emb[1], table[2] + 0.3 * (table[3] - table[2]), atol=1e-6)
    np.testing.assert_allclose(emb[2], table[0] + 0.8941 * (table[1] - table[0]), atol=1e-6)
    np.testing.assert_array_equal(emb[3], table[9])   # last row: floor = ceil


def test_class_conditioning_changes_output():
    net = _tiny("class")
    base = _inputs(2, 200)
    out_a = net({**base, "label": tf.constant([0, 1])}).numpy()
    out_b = net({**base, "label": tf.constant([2, 3])}).numpy()
    assert out_a.shape == (2, 200, 1)
    assert np.abs(out_a - out_b).max() > 1e-6


def test_mel_conditioning_upsamples_and_changes_output():
    net = _tiny("mel")
    mel = tf.random.normal([2, 4, 5])                       # 4 frames × hop 16 = 64 samples
    assert net.upsample_mel(mel).shape == (2, 64, 5)
    base = _inputs(2, 64)
    out_a = net({**base, "mel": mel}).numpy()
    out_b = net({**base, "mel": mel + 1.0}).numpy()
    assert out_a.shape == (2, 64, 1)
    assert np.abs(out_a - out_b).max() > 1e-6

    vocoder = DiffWave(1, 4, 1, 10, conditioning="mel", n_mels=80, hop_length=256)
    assert vocoder.upsample_mel(tf.zeros([1, 3, 80])).shape == (1, 768, 80)   # 16 × 16


def test_receptive_field_bounds_the_influence_of_one_sample():
    net = _tiny(layers=4, cycle=3)                          # dilations 1, 2, 4, 1
    assert net.receptive_field == 1 + 2 * (1 + 2 + 4 + 1) == 17
    half = (net.receptive_field - 1) // 2
    inputs = _inputs(1, 101)
    j = 50
    moved = {**inputs, "audio": inputs["audio"] + tf.one_hot([j], 101)[:, :, None] * 3.0}
    diff = np.abs(net(moved).numpy() - net(inputs).numpy())[0, :, 0]
    inside = np.arange(101)[np.abs(np.arange(101) - j) <= half]
    assert np.all(np.delete(diff, inside) == 0.0)
    assert diff[j - half] > 0 and diff[j + half] > 0        # the bound is tight


def test_mixed_bfloat16_policy_outputs_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        net = _tiny("mel")
        assert net.compute_dtype == "bfloat16"
        inputs = _inputs(2, 64, mel=tf.random.normal([2, 4, 5]))
        with tf.GradientTape() as tape:
            out = tf.function(net)(inputs)
            loss = tf.reduce_mean(tf.abs(out))
        grads = tape.gradient(loss, net.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.dtype == tf.float32 and out.shape == (2, 64, 1)
    assert all(g is not None and g.dtype == tf.float32 for g in grads)


def test_bad_conditioning_raises():
    with pytest.raises(ValueError, match="conditioning"):
        DiffWave(2, 8, 2, 10, conditioning="text")
