"""DiffWave network: reference parameter count, shapes, step embedding, conditioning, receptive
field, and the fused implementation against the reference one (same weights)."""
import math
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

import network.diffwave.fused as fused
from network.diffwave import DiffWave, step_table
from network.diffwave.reference import residual_block as _reference_block


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


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_output_shape_matches_input_for_any_length_and_batch(impl):
    net = _tiny(impl=impl)
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
    # The reference's float32 rounding (t·10^(4d/63) in float32): a few 1e-3 off the exact
    # values at t = 3 (tests/parity compares with lmnt's own table).
    np.testing.assert_allclose(table[3, :64], np.sin(3 * 10.0 ** (4 * d / 63)), atol=5e-3)
    np.testing.assert_allclose(table[3, 64:], np.cos(3 * 10.0 ** (4 * d / 63)), atol=5e-3)
    angles = np.float32(3) * (10.0 ** (np.arange(64, dtype=np.float32) * np.float32(4) /
                                       np.float32(63)).astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(table[3, :64], np.sin(angles.astype(np.float64)), atol=1e-7)

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


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_receptive_field_bounds_the_influence_of_one_sample(impl):
    net = _tiny(layers=4, cycle=3, impl=impl)               # dilations 1, 2, 4, 1
    assert net.receptive_field == 1 + 2 * (1 + 2 + 4 + 1) == 17
    half = (net.receptive_field - 1) // 2
    inputs = _inputs(1, 101)
    j = 50
    moved = {**inputs, "audio": inputs["audio"] + tf.one_hot([j], 101)[:, :, None] * 3.0}
    diff = np.abs(net(moved).numpy() - net(inputs).numpy())[0, :, 0]
    inside = np.arange(101)[np.abs(np.arange(101) - j) <= half]
    assert np.all(np.delete(diff, inside) == 0.0)
    assert diff[j - half] > 0 and diff[j + half] > 0        # the bound is tight


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_mixed_bfloat16_policy_outputs_float32(impl):
    # bf16 kernels exist everywhere TF runs (emulated by Eigen where the CPU has none); whether
    # a run USES bf16 is diffusion/training/precision.py's decision (tests/test_portability.py).
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        net = _tiny("mel", impl=impl)
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


# --- the fast residual layers against the straightforward formulation -------------------------

def _reference_call(net, inputs):
    """The same weights through the reference implementation (Keras layers, autodiff)."""
    impl, net.impl = net.impl, "reference"
    try:
        return net(inputs)
    finally:
        net.impl = impl


def _randomised(conditioning, layers=4, cycle=3, seed=1):
    """Tiny net (dilations 1, 2, 4, 1) with every weight random: biases and head too."""
    net = _tiny(conditioning, perturb_head=False, layers=layers, cycle=cycle, seed=seed)
    rng = np.random.default_rng(seed)
    for v in net.trainable_variables:
        v.assign(v.numpy() + 0.1 * rng.standard_normal(v.shape).astype(np.float32))
    return net


def _conditioned_inputs(conditioning, batch, length):
    inputs = _inputs(batch, length)
    inputs["step"] = tf.constant(np.linspace(0.0, 9.0, batch) + 0.25, tf.float32)   # fractional
    if conditioning == "class":
        inputs["label"] = tf.constant(np.arange(batch) % 4, tf.int32)
    if conditioning == "mel":
        inputs["mel"] = tf.constant(np.random.default_rng(length).standard_normal(
            (batch, length // 16, 5)), tf.float32)
    return inputs


def _value_and_grads(fn, net, inputs):
    """ε̂ and ∂L/∂(weights, audio) of a loss that weights every output sample differently."""
    with tf.GradientTape() as tape:
        tape.watch(inputs["audio"])
        out = fn(inputs)
        w = tf.sin(tf.range(tf.shape(out)[1], dtype=tf.float32) * 0.37 + 1.0)
        loss = tf.reduce_sum(out * w[None, :, None] * tf.range(1.0, 1.0 + len(out))[:, None, None])
    grads = tape.gradient(loss, net.trainable_variables + [inputs["audio"]])
    return out.numpy(), [tf.convert_to_tensor(g).numpy() for g in grads]


def _assert_close(fast, ref, rtol):
    """Each array within rtol of the reference, relative to the reference's largest entry."""
    out_f, grads_f = fast
    out_r, grads_r = ref
    np.testing.assert_allclose(out_f, out_r, rtol=0, atol=rtol * np.abs(out_r).max())
    for g_f, g_r in zip(grads_f, grads_r):
        assert g_f.shape == g_r.shape
        np.testing.assert_allclose(g_f, g_r, rtol=0, atol=rtol * max(np.abs(g_r).max(), 1e-30))


@pytest.mark.parametrize("conditioning", ["none", "class", "mel"])
def test_fast_layers_match_the_keras_conv1d_formulation(conditioning):
    # Static batches: 3 → three one-example chains (kernel gradient from row slices); 6 → four
    # chains of 2, 2, 1, 1 (gathered shifted views). Dynamic batch (input_signature): one chain.
    # Lengths 48 and 3: the second is shorter than the dilation 4 (all taps off the edge).
    net = _randomised(conditioning)
    spec = {"audio": tf.TensorSpec([None, None, 1], tf.float32),
            "step": tf.TensorSpec([None], tf.float32)}
    if conditioning == "class":
        spec["label"] = tf.TensorSpec([None], tf.int32)
    if conditioning == "mel":
        spec["mel"] = tf.TensorSpec([None, None, 5], tf.float32)
    # Tolerance: float32 rounding. Summed over B·T with cancellation, the worst gradient entry
    # of either formulation is ~1e-4 (of that gradient's largest entry) from a float64 run.
    dynamic = tf.function(net, input_signature=[spec])
    reference = tf.function(lambda inputs: _reference_call(net, inputs))
    for batch, length in [(3, 48), (6, 48), (2, 3)] if conditioning != "mel" else [(3, 48), (6, 48)]:
        inputs = _conditioned_inputs(conditioning, batch, length)
        ref = _value_and_grads(reference, net, inputs)
        _assert_close(_value_and_grads(tf.function(net), net, inputs), ref, 5e-4)
        _assert_close(_value_and_grads(dynamic, net, inputs), ref, 5e-4)
    _assert_close(_value_and_grads(net, net, inputs), ref, 5e-4)              # eager


@pytest.mark.parametrize("conditioning", ["none", "class", "mel"])
def test_one_fast_block_equals_keras_conv1d_block(conditioning):
    # The stream [x·2^(i/2) | Σ skip] through one ResidualBlock (dilation 4) against
    # ((x + residual)/√2, skip_in + skip) from Keras Conv1D with the same kernel [3, C, 2C].
    net = _randomised(conditioning, layers=4, cycle=3)
    block, scale = net.blocks[2], 2.0                    # index 2: stream scale 2^(2/2)
    assert block.dilated_conv.kernel.shape == (3, 8, 16)
    rng = np.random.default_rng(5)
    x = tf.constant(rng.standard_normal((2, 37, 8)), tf.float32)
    skip_in = tf.constant(rng.standard_normal((2, 37, 8)), tf.float32)
    emb = tf.constant(rng.standard_normal((2, 512)), tf.float32)
    cond = {"none": None, "class": tf.constant(rng.standard_normal((2, 1, 128)), tf.float32),
            "mel": tf.constant(rng.standard_normal((2, 37, 5)), tf.float32)}[conditioning]
    probe = tf.constant(rng.standard_normal((2, 37, 16)), tf.float32)

    def run(fast):
        sources = [x, skip_in, emb] + ([] if cond is None else [cond])
        with tf.GradientTape() as tape:
            tape.watch(sources)
            if fast:
                stream = block(tf.concat([x * scale, skip_in], -1), emb, cond, scale=scale)
                x_next, skip = stream[..., :8] / (scale * math.sqrt(2.0)), stream[..., 8:]
            else:
                x_next, skip = _reference_block(block, x, emb, cond)
                skip = skip_in + skip
            out = tf.concat([x_next, skip], -1)
            loss = tf.reduce_sum(out * probe)
        grads = tape.gradient(loss, sources + block.trainable_variables)
        return out.numpy(), [g.numpy() for g in grads]

    _assert_close(run(True), run(False), 2e-5)


def test_plain_tf_glue_equals_xla_glue(monkeypatch):
    net = _randomised("class")
    inputs = _conditioned_inputs("class", 3, 40)
    xla = _value_and_grads(tf.function(net), net, inputs)
    for name in ("_layer_input", "_gate_act", "_gate_product", "_gate_grad", "_stream_grad"):
        fn = getattr(fused, name)
        monkeypatch.setattr(fused, name, getattr(fn, "python_function", fn))
    _assert_close(_value_and_grads(tf.function(net), net, inputs), xla, 2e-5)


def test_mixed_bfloat16_fast_path_tracks_the_float32_formulation():
    net32 = _tiny("none", layers=6, cycle=3)               # Kaiming init, random head
    inputs = _conditioned_inputs("none", 4, 200)
    out32, grads32 = _value_and_grads(tf.function(lambda i: _reference_call(net32, i)), net32,
                                      inputs)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        net16 = _tiny("none", layers=6, cycle=3)
        net16.set_weights(net32.get_weights())
        out16, grads16 = _value_and_grads(tf.function(net16), net16, inputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out16.dtype == np.float32
    assert np.abs(out16 - out32).max() < 0.03 * np.abs(out32).max()        # bf16: 8-bit mantissa
    for g16, g32 in zip(grads16, grads32):
        cos = np.sum(g16 * g32) / (np.linalg.norm(g16) * np.linalg.norm(g32) + 1e-30)
        assert cos > 0.95     # oneDNN bf16 ≥ 0.98; Eigen's emulated bf16 accumulates in bf16


@pytest.mark.parametrize("conditioning", ["none", "class", "mel"])
def test_a_checkpoint_restores_every_weight(tmp_path, conditioning):
    # Layers kept only in Python lists are invisible to tf.train.Checkpoint (the residual blocks
    # once were: --no-ema sampling then ran on freshly initialised blocks).
    saved = _randomised(conditioning)
    path = tf.train.Checkpoint(model=saved).save(str(tmp_path / "ckpt"))
    fresh = _tiny(conditioning, layers=4, cycle=3, seed=2)
    tf.train.Checkpoint(model=fresh).restore(path).expect_partial()
    inner = lambda net: [v.path.split("/", 1)[1] for v in net.variables]  # noqa: E731
    assert inner(fresh) == inner(saved)
    for a, b in zip(saved.variables, fresh.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.parametrize("conditioning", ["none", "class", "mel"])
def test_the_sampling_path_equals_the_training_path(conditioning):
    # training=False runs the layers without the custom-gradient bookkeeping (one gate kernel).
    net = _randomised(conditioning)
    inputs = _conditioned_inputs(conditioning, 3, 48)                 # 3 mel frames × hop 16
    train = tf.function(lambda i: net(i, training=True))(inputs)
    sample = tf.function(lambda i: net(i, training=False))(inputs)
    np.testing.assert_allclose(sample.numpy(), train.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("conditioning", ["none", "class", "mel"])
def test_a_checkpoint_of_either_implementation_loads_into_the_other(tmp_path, conditioning):
    fused_net = _randomised(conditioning)
    assert fused_net.impl == "fused"
    path = tf.train.Checkpoint(model=fused_net).save(str(tmp_path / "fused"))
    ref_net = _tiny(conditioning, layers=4, cycle=3, seed=2, impl="reference")
    tf.train.Checkpoint(model=ref_net).restore(path).assert_existing_objects_matched()
    inputs = _conditioned_inputs(conditioning, 2, 48)
    ref_out, fused_out = ref_net(inputs).numpy(), fused_net(inputs).numpy()
    np.testing.assert_allclose(fused_out, ref_out, rtol=0, atol=5e-5 * np.abs(ref_out).max())
    # … and back: the reference's checkpoint into a fresh fused net.
    path = tf.train.Checkpoint(model=ref_net).save(str(tmp_path / "reference"))
    again = _tiny(conditioning, layers=4, cycle=3, seed=3, impl="fused")
    tf.train.Checkpoint(model=again).restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(again(inputs).numpy(), fused_out)
