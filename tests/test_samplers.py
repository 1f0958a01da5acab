"""The ancestral sampler against a NumPy transcription of the DiffWave reference loop."""
import numpy as np
import pytest
import tensorflow as tf

from diffusion.core.sampling import sample
from diffusion.core.schedule import NoiseSchedule
from diffusion.core.schedulers import AncestralScheduler

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


def test_ddim_eta0_encode_decode_round_trip():
    """DDIM inversion then η = 0 decoding returns the input; the error shrinks with more
    steps (inversion reuses ε̂ from the neighbouring level: an O(step) approximation)."""
    from diffusion.core.sampling import encode
    from diffusion.core.schedulers import DDIMScheduler
    t = np.arange(800) / 16000
    x0 = (0.5 * np.sin(2 * np.pi * 440 * t))[None, :, None].astype(np.float32)
    errors = []
    for steps in (10, 50):
        scheduler = DDIMScheduler(BASE, eta=0.0)
        scheduler.set_timesteps(steps)
        latent = encode(toy_denoise, scheduler, x0).numpy()
        assert np.max(np.abs(latent - x0)) > 0.05             # the encoding is not the input
        decoded = sample(toy_denoise, scheduler, x0.shape, seed=9, noise=latent).numpy()
        errors.append(np.max(np.abs(decoded - x0)))
    assert errors[1] < 0.02 and errors[1] < 0.5 * errors[0], errors


def test_ddim_formulas_and_timesteps():
    from diffusion.core.schedulers import DDIMScheduler
    scheduler = DDIMScheduler(BASE, eta=1.0)
    scheduler.set_timesteps(10)
    tau = scheduler.model_steps.numpy()
    assert len(tau) == 10 and tau[0] == 0 and tau[-1] == 49 and np.all(np.diff(tau) > 0)
    # η = 1 makes σ_n the DDPM posterior σ between consecutive τ's.
    ab = BASE.alpha_bars[tau.astype(int)]
    prev = np.concatenate([[1.0], ab[:-1]])
    expected = np.sqrt((1 - prev) / (1 - ab) * (1 - ab / prev))
    np.testing.assert_allclose(scheduler.sigma.numpy(), expected, rtol=1e-5)
    x, eps = tf.constant([[[0.3]]]), tf.constant([[[0.2]]])
    n = tf.constant(5)
    x0 = (0.3 - np.sqrt(1 - ab[5]) * 0.2) / np.sqrt(ab[5])
    want = np.sqrt(prev[5]) * x0 + np.sqrt(1 - prev[5] - expected[5] ** 2) * 0.2 + expected[5]
    got = scheduler.step(eps, n, x, tf.constant([[[1.0]]])).numpy().item()
    assert abs(got - want) < 1e-5
    with pytest.raises(ValueError, match="DDIM steps must be in 1..50"):
        scheduler.set_timesteps(51)
    with pytest.raises(ValueError, match="must increase"):
        scheduler.set_timesteps(timesteps=[3, 2])


def test_audio_to_audio_starts_from_noised_input():
    scheduler = AncestralScheduler(BASE)
    scheduler.set_timesteps("fast", FAST)
    x0 = np.full((1, 500, 1), 0.25, np.float32)
    seq = sample(toy_denoise, scheduler, x0.shape, seed=2, init=x0, strength=0.5,
                 return_sequence=True)
    start = scheduler.start_index(0.5)
    assert start == 2 and len(seq) == start + 2                 # x_start, then start+1 steps
    ab = scheduler.alpha_bars[start]
    z = tf.random.stateless_normal(x0.shape, [2, 0]).numpy()
    np.testing.assert_allclose(seq[0].numpy(), np.sqrt(ab) * x0 + np.sqrt(1 - ab) * z,
                               atol=1e-6)
    with pytest.raises(ValueError, match="strength must be in"):
        scheduler.start_index(0.0)


def test_chunked_denoise_equals_whole_pass():
    from diffusion.core.sampling import chunked
    from network.diffwave import DiffWave
    net = DiffWave(residual_layers=6, residual_channels=8, dilation_cycle=3, num_steps=50)
    net.build()
    head = net.output_projection.kernel
    head.assign(tf.random.normal(head.shape, stddev=0.5, seed=1))   # non-zero output
    denoise = lambda x, t: net({"audio": x, "step": t})  # noqa: E731
    halo = (net.receptive_field - 1) // 2
    x = tf.random.normal([2, 5003, 1], seed=3)
    t = tf.constant([3.0, 41.5])
    whole = denoise(x, t).numpy()
    pieces = tf.function(chunked(denoise, chunk=700, halo=halo))(x, t).numpy()
    np.testing.assert_allclose(pieces, whole, atol=1e-5)
    short = chunked(denoise, chunk=700, halo=halo // 4)(x, t).numpy()
    assert np.abs(short - whole).max() > 1e-4                  # a too-small halo is not exact


def test_family_sample_traces_once_and_equals_sample():
    """Family.sample keeps its compiled step per (model, scheduler config, rank): new seeds,
    labels and equal schedulers reuse it, and the result is `sample`'s to the bit."""
    from configs import get_preset
    from diffusion.core.schedulers import build_scheduler
    from diffusion.families.registry import family_for
    from params import apply_overrides
    params = apply_overrides(get_preset("tiny"), ["conditioning=class", "residual_layers=2"])
    family = family_for(params)
    model = family.build_model()
    for seed, labels in ((0, [1, 2]), (3, [4, 5])):
        cond = {"label": tf.constant(labels)}
        got = family.sample(model, build_scheduler(params, "fast"), [2, 600, 1], cond, seed)
        want = sample(family.denoiser(model, cond), build_scheduler(params, "fast"),
                      [2, 600, 1], seed)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    (loop,) = [entry[2] for entry in family._steps.values()]
    assert loop.experimental_get_tracing_count() == 1
    # With a progress callback: one compiled step per index, the same clip.
    calls = []
    stepped = family.sample(model, build_scheduler(params, "fast"), [2, 600, 1], cond, seed,
                            progress=lambda i, n: calls.append((i, n)))
    np.testing.assert_allclose(stepped.numpy(), got.numpy(), atol=1e-6)
    assert calls[-1] == (6, 6) and loop.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("kind", ["fast", "ddpm"])
def test_the_graph_loop_equals_the_step_loop(kind):
    """`sample` without progress runs `backward`'s tf.while_loop; with progress, one traced step
    per index; from noise and from a noised input (audio-to-audio) they agree."""
    scheduler = AncestralScheduler(BASE)
    scheduler.set_timesteps(kind, FAST)
    x0 = np.full((2, 300, 1), 0.25, np.float32)
    for options in ({}, {"init": x0, "strength": 0.5}):
        graph = sample(toy_denoise, scheduler, [2, 300, 1], 7, **options).numpy()
        steps = sample(toy_denoise, scheduler, [2, 300, 1], 7, progress=lambda i, n: None,
                       **options).numpy()
        np.testing.assert_allclose(graph, steps, atol=1e-6)


def test_each_family_chooses_its_ddpm_clamp():
    # mel-unet: diffusers' DDPMScheduler clamps x̂₀ and never x; DiffWave: lmnt clamps x.
    from configs import get_preset
    from diffusion.families.registry import family_for
    mel = family_for(get_preset("tiny", "mel-unet")).scheduler("ddpm")
    wave = family_for(get_preset("tiny")).scheduler("ddpm")
    assert (mel.clip, wave.clip) == ("x0", "x")
    x, eps = tf.fill([1, 4, 1], 3.0), tf.zeros([1, 4, 1])        # x outside [−1, 1], ε̂ = 0
    n = tf.constant(wave.num_inference_steps - 1)
    assert float(tf.reduce_max(wave.step(eps, n, x, tf.zeros_like(x)))) == 1.0
    # x̂₀ = x/√ᾱ clamps to 1: the step is c_x0·1 + c_x·3, above 1 and finite.
    n = tf.constant(mel.num_inference_steps - 1)
    stepped = float(tf.reduce_max(mel.step(eps, n, x, tf.zeros_like(x))))
    want = float(mel.c_x0[n]) * 1.0 + float(mel.c_x[n]) * 3.0
    assert stepped > 1.0 and abs(stepped - want) < 1e-5
