"""network/unet2d.py: shapes for any width, conditioning paths, the diffusers layout."""
import numpy as np
import pytest
import tensorflow as tf

from network.unet2d import UNet2D, step_encoding

SMALL = dict(block_channels=(16, 32, 32), attention=(False, True, False), layers_per_block=1,
             norm_groups=8)


def test_shapes_any_width_and_batch():
    net = UNet2D(**SMALL)
    for batch, height, width in ((1, 16, 16), (3, 16, 32), (2, 32, 8)):
        x = tf.random.normal([batch, height, width, 1])
        out = net({"image": x, "step": tf.fill([batch], 10)})
        assert out.shape == (batch, height, width, 1) and out.dtype == tf.float32
    assert net.downsampling == 4


def test_step_and_encoding_change_the_output():
    net = UNet2D(**SMALL, encoding_dim=5)
    x = tf.random.normal([2, 16, 16, 1], seed=1)
    enc = tf.random.normal([2, 5], seed=2)
    a = net({"image": x, "step": tf.constant([1, 1]), "encoding": enc}).numpy()
    b = net({"image": x, "step": tf.constant([900, 900]), "encoding": enc}).numpy()
    c = net({"image": x, "step": tf.constant([1, 1]), "encoding": enc * 3}).numpy()
    assert np.abs(a - b).max() > 1e-4 and np.abs(a - c).max() > 1e-4


def test_layout_matches_the_diffusers_structure():
    net = UNet2D(**SMALL)
    net({"image": tf.zeros([1, 16, 16, 1]), "step": tf.constant([0])})
    # Down: 1 ResNet per level, downsampling except the last; up: 2 ResNets per level.
    assert [len(blocks) for blocks, _ in net.down] == [1, 1, 1]
    assert [s is not None for _, s in net.down] == [True, True, False]
    assert [len(blocks) for blocks, _ in net.up] == [2, 2, 2]
    assert [a is not None for (blocks, _) in net.down for _, a in blocks] == [False, True, False]
    # Skips: conv_in + one per ResNet + one per downsample = what the up path consumes.
    assert 1 + 3 + 2 == sum(len(blocks) for blocks, _ in net.up)


def test_step_encoding_formula():
    emb = step_encoding(tf.constant([0.0, 3.0]), 8).numpy()
    freqs = np.exp(-np.log(10000.0) * np.arange(4) / 4)
    np.testing.assert_allclose(emb[1], np.concatenate([np.cos(3 * freqs), np.sin(3 * freqs)]),
                               rtol=1e-5)
    np.testing.assert_allclose(emb[0], [1, 1, 1, 1, 0, 0, 0, 0])


def test_bad_configs():
    with pytest.raises(ValueError, match="one flag per level"):
        UNet2D(block_channels=(16, 32), attention=(False,), norm_groups=8)
    with pytest.raises(ValueError, match="multiples of norm_groups"):
        UNet2D(block_channels=(12, 32), attention=(False, False), norm_groups=8)
