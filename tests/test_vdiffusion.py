"""v-diffusion core against its formulas: the v-objective, the V sampler (a perfect oracle
recovers x₀), classifier-free guidance (scale 1 is the conditional prediction, the null
embedding is drawn at the configured rate), the DiffAE's lengths and the UNet's checkpoint."""
import math

import numpy as np
import pytest
import tensorflow as tf

from configs import get_preset
from diffusion.core.guidance import draw_keep_mask, guided
from diffusion.core.objectives import (
    EpsilonObjective,
    VObjective,
    draw_sigmas_and_noise,
    make_objective,
    v_loss,
)
from diffusion.core.sampling import sample
from diffusion.core.schedulers import VScheduler
from network.unet1d import UNet1D
from params import apply_overrides


def test_v_loss_matches_the_formulas():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, (3, 16, 2)).astype(np.float32)
    eps = rng.normal(size=(3, 16, 2)).astype(np.float32)
    sigma = np.array([0.0, 0.3, 1.0], np.float32)
    pred = rng.normal(size=(3, 16, 2)).astype(np.float32)
    seen = {}

    def denoise(x, s):
        seen["x"], seen["s"] = x.numpy(), s.numpy()
        return tf.constant(pred)
    loss = v_loss(denoise, x0, tf.constant(sigma), tf.constant(eps)).numpy()
    a = np.cos(sigma * math.pi / 2)[:, None, None]          # α = cos(σπ/2)
    b = np.sin(sigma * math.pi / 2)[:, None, None]          # β = sin(σπ/2)
    np.testing.assert_allclose(seen["x"], a * x0 + b * eps, atol=1e-6)      # x_σ = αx₀ + βε
    np.testing.assert_allclose(seen["s"], sigma)
    v = a * eps - b * x0                                                     # v = αε − βx₀
    np.testing.assert_allclose(loss, ((pred - v) ** 2).mean(axis=(1, 2)), rtol=1e-5)
    # σ = 0: v = ε; σ = 1: v = −x₀ and x_σ = ε.
    np.testing.assert_allclose(v[0], eps[0], atol=1e-7)
    np.testing.assert_allclose(v[2], -x0[2], atol=1e-6)


def test_sigma_draws_are_stateless_and_uniform():
    seed = tf.constant([5, 0])
    s1, n1 = draw_sigmas_and_noise(tf.constant([4000, 3]), seed)
    s2, n2 = draw_sigmas_and_noise(tf.constant([4000, 3]), seed)
    assert np.array_equal(s1, s2) and np.array_equal(n1, n2)
    s = s1.numpy()
    assert s.min() >= 0 and s.max() < 1 and abs(s.mean() - 0.5) < 0.02
    other, _ = draw_sigmas_and_noise(tf.constant([4000, 3]), tf.constant([6, 0]))
    assert not np.array_equal(s, other)
    assert isinstance(make_objective("v", None), VObjective)
    assert isinstance(make_objective("epsilon", None), EpsilonObjective)


@pytest.mark.parametrize("steps", [1, 7, 50])
def test_v_sampler_with_an_oracle_recovers_x0(steps):
    x0 = tf.constant(np.random.default_rng(1).uniform(-0.9, 0.9, (2, 64, 3)), tf.float32)

    def oracle(x, sigma):
        a, b = (tf.reshape(f(sigma * math.pi / 2), [-1, 1, 1]) for f in (tf.cos, tf.sin))
        eps = (x - a * x0) / b                        # the ε that x came from
        return a * eps - b * x0                       # the true v
    scheduler = VScheduler(steps)
    assert scheduler.num_inference_steps == steps
    np.testing.assert_allclose(scheduler.model_steps.numpy()[::-1],
                               np.linspace(1, 0, steps + 1)[:-1], atol=1e-6)   # σ: 1 → 0
    out = sample(oracle, scheduler, x0.shape.as_list(), seed=3)
    np.testing.assert_allclose(out, x0, atol=2e-5)
    seq = sample(oracle, scheduler, x0.shape.as_list(), seed=3, return_sequence=True)
    assert len(seq) == steps + 1 and float(tf.math.reduce_std(seq[0])) > 0.8   # starts at noise


def test_v_sampler_add_noise_and_start_index():
    s = VScheduler(10)
    x0, eps = tf.ones([1, 4, 1]), tf.zeros([1, 4, 1])
    n = s.start_index(0.5)
    assert n == 4
    a = math.cos(s.sigmas[n + 1] * math.pi / 2)
    np.testing.assert_allclose(s.add_noise(x0, eps, n), a * np.ones([1, 4, 1]), rtol=1e-6)
    with pytest.raises(ValueError):
        s.set_timesteps(0)


@pytest.fixture(scope="module")
def text_unet():
    net = UNet1D(4, (16, 32), (1, 2), (1, 1), (0, 1), (1, 1), heads=2, head_features=8,
                 text_dim=12, text_length=6)
    rng = np.random.default_rng(2)
    text = tf.constant(rng.normal(size=(2, 6, 12)), tf.float32)
    mask = tf.sequence_mask([3, 5], 6)
    x, t = tf.constant(rng.normal(size=(2, 8, 4)), tf.float32), tf.constant([0.2, 0.7])
    net({"x": x, "step": t, "text": text, "text_mask": mask})
    # Zero-initialised heads predict 0: give the head weights so outputs depend on the text.
    net.head.kernel.assign(rng.normal(size=net.head.kernel.shape) * 0.1)
    return net, x, t, text, mask


def _with_keep(net, text, mask):
    def run(x, t, keep):
        times = tf.shape(x)[0] // tf.shape(text)[0]
        return net({"x": x, "step": t, "text": tf.tile(text, [times, 1, 1]),
                    "text_mask": tf.tile(mask, [times, 1]), "text_keep": keep})
    return run


def test_guidance_scale_one_is_the_conditional_prediction(text_unet):
    net, x, t, text, mask = text_unet
    cond = net({"x": x, "step": t, "text": text, "text_mask": mask}).numpy()
    fn = _with_keep(net, text, mask)
    assert np.array_equal(guided(fn, 1.0)(x, t).numpy(), cond)                  # exactly
    assert np.array_equal(guided(fn, tf.constant(1.0))(x, t).numpy(),
                          fn(tf.concat([x, x], 0), tf.concat([t, t], 0),
                             tf.constant([True, True, False, False])).numpy()[:2])
    uncond = fn(x, t, tf.constant([False, False])).numpy()
    assert np.abs(cond - uncond).max() > 1e-4                 # the text matters
    np.testing.assert_allclose(guided(fn, 5.0)(x, t), uncond + 5.0 * (cond - uncond),
                               atol=2e-5)


def test_null_embedding_replaces_the_text(text_unet):
    net, x, t, text, mask = text_unet
    dropped = net({"x": x, "step": t, "text": text, "text_mask": mask,
                   "text_keep": tf.constant([False, True])}).numpy()
    null = tf.tile(net.null_text[None], [2, 1, 1])
    expect = net({"x": x, "step": t, "text": null, "text_mask": tf.ones([2, 6], tf.bool)})
    np.testing.assert_allclose(dropped[0], expect.numpy()[0], atol=1e-6)
    np.testing.assert_allclose(dropped[1], net({"x": x, "step": t, "text": text,
                                                "text_mask": mask}).numpy()[1], atol=1e-6)


def test_null_embedding_rate_is_binomial():
    """p = 0.1 over 2000 draws: the count of nulls is within 4.5 σ of the binomial mean, for
    several (step, seed) keys; the same key redraws the same mask; p = 0 never drops."""
    n, p = 2000, 0.1
    bound = 4.5 * math.sqrt(n * p * (1 - p))
    for step in (0, 1, 17, 999):
        keep = draw_keep_mask(n, p, tf.constant([step, 0])).numpy()
        assert abs((~keep).sum() - n * p) < bound, (step, (~keep).sum())
        assert np.array_equal(keep, draw_keep_mask(n, p, tf.constant([step, 0])).numpy())
    pooled = np.concatenate([draw_keep_mask(n, 0.3, tf.constant([s, 4])).numpy()
                             for s in range(5)])
    assert abs((~pooled).mean() - 0.3) < 4.5 * math.sqrt(0.3 * 0.7 / pooled.size)
    assert draw_keep_mask(n, 0.0, tf.constant([0, 0])).numpy().all()


def test_diffae_encode_decode_keeps_the_length():
    from diffusion.families.registry import family_for
    params = get_preset("tiny", "diffae")
    family = family_for(params)
    assert family.objective == "v" and family.default_sampler == "v"
    ae = family.build_model()
    assert ae.latent_hop == 256 and ae.length_multiple == 256
    for length in (5000, 300):
        audio = tf.random.uniform([2, length], -1, 1, seed=1)
        latent = ae.encode(audio)
        assert latent.shape == (2, -(-length // 256), 8)
        assert float(tf.reduce_max(tf.abs(latent))) <= 1.0                      # tanh
        assert float(tf.reduce_mean(tf.abs(latent))) < 0.9                      # not saturated
        out = family.reconstruct(ae, audio, steps=2)
        assert out.shape == (2, length) and np.isfinite(out.numpy()).all()


def test_unet_checkpoint_holds_every_variable(text_unet, tmp_path):
    net = text_unet[0]
    path = tf.train.Checkpoint(model=net).save(str(tmp_path / "c"))
    saved = [n for n, _ in tf.train.list_variables(path) if n.startswith("model/")]
    assert len(saved) == len(net.variables) > 50


def test_t2a_params_are_validated():
    from params import ParamsError
    for bad, msg in [(["crop_samples=8000"], "multiple of 256"),
                     (["inject_depth=4"], "inject_depth"),
                     (["attentions=[0,1,1]"], "one entry per level"),
                     (["encoder_multipliers=[1,1]"], "encoder_multipliers")]:
        with pytest.raises(ParamsError, match=msg):
            apply_overrides(get_preset("tiny", "diffae"), bad)
    with pytest.raises(ParamsError, match="cfg_drop"):
        apply_overrides(get_preset("tiny", "diffgen"), ["cfg_drop=1.5"])
    assert get_preset("base", "diffgen").network.items == (2, 2, 2, 4, 8, 8)
