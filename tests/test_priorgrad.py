"""PriorGrad (Lee et al. 2022; network.prior = priorgrad): Σ^½ from the conditioning mel, the
Σ^−½-weighted loss, and a sampler that starts from and adds noise of N(0, Σ), in Python and in
the SavedModel's graph loop alike."""
import numpy as np
import pytest
import tensorflow as tf

from data.features import log_mel
from diffusion.core.objectives import epsilon_loss
from diffusion.core.sampling import graph_sample, sample
from diffusion.core.schedule import NoiseSchedule
from diffusion.core.schedulers import build_scheduler
from diffusion.families.diffwave import DiffWaveFamily
from params import Params, ParamsError


def _params(prior="priorgrad"):
    return Params.from_dict({"model": "diffwave", "network": {
        "conditioning": "mel", "prior": prior, "residual_layers": 2, "residual_channels": 8}})


def _mel(seconds=0.5):
    """A tone that is loud in its first half and near silence in its second."""
    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.9 * np.sin(2 * np.pi * 440 * t) * (t < seconds / 2) + 1e-4 * np.sin(2 * np.pi * 300 * t)
    return log_mel(x[None].astype(np.float32), 16000)


def test_prior_std_follows_the_frame_energy_within_its_bounds():
    family = DiffWaveFamily(_params())
    mel = _mel()
    std = family.prior_std({"mel": mel}).numpy()
    assert std.shape == (1, mel.shape[1] * 256, 1)
    frames = std[0, ::256, 0]
    half = len(frames) // 2
    assert frames[: half - 2].min() > 0.3                          # loud: near the top
    np.testing.assert_allclose(frames[half + 2:], 0.1, rtol=1e-6)   # quiet: the floor σ_min
    assert std.max() <= 1.0
    assert DiffWaveFamily(_params("standard")).prior_std({"mel": mel}) is None


def test_loss_measures_the_error_in_prior_units():
    schedule = NoiseSchedule(np.linspace(1e-4, 0.05, 50))
    rng = np.random.default_rng(0)
    x0 = tf.constant(rng.standard_normal([2, 32, 1]) * 0.1, tf.float32)
    std = tf.constant(rng.uniform(0.1, 1.0, [2, 32, 1]), tf.float32)
    noise = std * tf.constant(rng.standard_normal([2, 32, 1]), tf.float32)
    t = tf.constant([3, 40])
    zero = lambda x, t: tf.zeros_like(x)                             # noqa: E731
    np.testing.assert_allclose(epsilon_loss(zero, schedule, x0, t, noise, "l1", std),
                               tf.reduce_mean(tf.abs(noise / std), [1, 2]), rtol=1e-6)
    np.testing.assert_allclose(epsilon_loss(zero, schedule, x0, t, noise, "l1", tf.ones_like(x0)),
                               epsilon_loss(zero, schedule, x0, t, noise, "l1"), rtol=1e-6)


def test_sampler_draws_from_the_prior_in_python_and_in_the_graph():
    params = _params()
    scheduler = build_scheduler(params, "fast")
    std = tf.constant(np.repeat([[0.1], [1.0]], 2048, axis=1)[..., None], tf.float32)  # [2, T, 1]
    zero = lambda x, t: tf.zeros_like(x)                              # noqa: E731
    x_T = sample(zero, scheduler, [2, 2048, 1], seed=3, prior_std=std, return_sequence=True)[0]
    ratio = np.std(x_T[0]) / np.std(x_T[1])
    assert 0.08 < ratio < 0.12, ratio
    python = sample(zero, scheduler, [2, 2048, 1], seed=3, prior_std=std)
    graph = graph_sample(zero, scheduler, tf.constant([2, 2048, 1]), tf.constant(3),
                         [None, None, 1], std)
    np.testing.assert_allclose(python, graph, atol=1e-6)


def test_family_trains_and_samples_with_priorgrad():
    params = _params()
    family = DiffWaveFamily(params)
    model = family.build_model()
    mel = _mel(0.256)
    x0 = tf.zeros([1, mel.shape[1] * 256, 1])
    draws = {"t": tf.constant([5]), "noise": tf.random.normal(x0.shape)}
    per_example, _ = family.loss(family_objective(params), model, x0, {"mel": mel}, draws, None)
    assert per_example.shape == (1,) and np.isfinite(per_example.numpy()).all()
    x = family.sample(model, family.scheduler("fast"), family.sample_shape(1, 0, {"mel": mel}),
                      {"mel": mel}, seed=0)
    assert x.shape == x0.shape


def family_objective(params):
    from diffusion.core.objectives import make_objective
    return make_objective("epsilon", NoiseSchedule.from_params(params), params.diffusion.loss)


def test_params_validate_the_prior():
    with pytest.raises(ParamsError, match="needs conditioning 'mel'"):
        Params.from_dict({"model": "diffwave", "network": {"prior": "priorgrad"}})
    p = _params()
    p.network.prior = "gaussian"
    with pytest.raises(ParamsError, match="prior"):
        p.validate()
    p = _params()
    p.network.prior_std_min = 1.5
    with pytest.raises(ParamsError, match="prior_std_min"):
        p.validate()
