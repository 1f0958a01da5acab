"""Generation features of the mel-UNet family on a tiny net: in/out-painting keeps the masked
columns, DDIM encode/decode and slerp, beat-aligned loops, and their generate.py flags."""
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from diffusion.core.sampling import edge_mask, encode, known_noise, sample, slerp
from diffusion.core.schedule import NoiseSchedule
from diffusion.core.schedulers import DDIMScheduler

ROOT = Path(__file__).resolve().parent.parent
CHORALE = sorted((ROOT / "dataset" / "chorales").glob("*.flac"))[0]


def make_untrained_run(run, preset="tiny", overrides=()):
    """A run directory (params.json + one checkpoint) of a freshly initialised model."""
    from configs import get_preset
    from diffusion.families.registry import family_for
    from diffusion.training.ema import EMA
    from params import apply_overrides
    params = apply_overrides(get_preset(preset, "mel-unet"), list(overrides))
    params.save(str(run / "params.json"))
    family = family_for(params)
    model = family.build_model()
    tf.train.Checkpoint(model=model, ema=EMA(model, 0.9)).save(str(run / "checkpoints" / "ckpt"))
    return params, family, model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    run = tmp_path_factory.mktemp("melgen") / "run"
    params, family, model = make_untrained_run(run)
    from data.features import read_mono
    init = family.from_audio(read_mono(str(CHORALE), params.data.sample_rate), 2)
    return run, params, family, model, init


def ddim(params, steps):
    scheduler = DDIMScheduler(NoiseSchedule.from_params(params))
    scheduler.set_timesteps(steps)
    return scheduler


def test_masked_columns_are_the_renoised_input_at_every_step(tiny):
    _, params, family, model, init = tiny
    scheduler = ddim(params, 6)
    mask = edge_mask(init.shape, family.time_axis, 5, 3)
    assert mask.shape == (1, 1, 32, 1) and mask.sum() == 8
    seq = sample(family.denoiser(model, {}), scheduler, init.shape, seed=3, init=init,
                 strength=1.0, known=(init, mask), return_sequence=True)
    z = known_noise(tf.constant(init.shape), 3).numpy()
    keep = np.broadcast_to(mask, init.shape) > 0
    levels = list(scheduler.alpha_bars[::-1]) + [1.0]          # x_T … x₀
    assert len(seq) == len(levels)
    for x, alpha_bar in zip(seq, levels):
        expected = np.sqrt(alpha_bar) * init + np.sqrt(1 - alpha_bar) * z
        np.testing.assert_allclose(x.numpy()[keep], expected[keep], atol=1e-5)
    final = seq[-1].numpy()
    np.testing.assert_array_equal(final[keep], init[keep])      # clean input at the end
    assert np.abs(final[~keep] - init[~keep]).mean() > 0.1       # the rest was generated


def test_known_region_is_model_agnostic_on_waveforms():
    """The same hook on DiffWave-shaped x [B, T, 1] (mask along T)."""
    schedule = NoiseSchedule(np.linspace(1e-4, 0.05, 50))
    scheduler = DDIMScheduler(schedule)
    scheduler.set_timesteps(5)
    audio = np.sin(np.arange(200) / 5.0)[None, :, None].astype(np.float32)
    mask = edge_mask(audio.shape, 1, 50, 0)
    out = sample(lambda x, t: 0.1 * x, scheduler, audio.shape, seed=1, known=(audio, mask))
    np.testing.assert_array_equal(out.numpy()[:, :50], audio[:, :50])
    assert not np.allclose(out.numpy()[:, 50:], audio[:, 50:])


def test_ddim_encode_decode_round_trip_and_slerp(tiny):
    """Inversion needs an ε̂ consistent across levels, as a trained net's is and a random one's
    is not: the Gaussian-optimal ε*(x_t) = √(1−ᾱ)·x_t/(ᾱs² + 1 − ᾱ) (s² = 0.25) plus 1 % of
    the tiny UNet stands in for a trained net, on 4-D images through the family's denoiser."""
    _, params, family, model, init = tiny
    net = family.denoiser(model, {})
    alpha_bars = tf.constant(NoiseSchedule.from_params(params).alpha_bars, tf.float32)

    def denoise(x, t):
        a = tf.gather(alpha_bars, tf.cast(t, tf.int32))[:, None, None, None]
        return tf.sqrt(1 - a) * x / (0.25 * a + 1 - a) + 0.01 * net(x, t)
    scheduler = ddim(params, 50)
    x0 = init[:1]
    latent = encode(denoise, scheduler, x0).numpy()
    assert latent.shape == x0.shape and np.abs(latent - x0).mean() > 0.3
    decoded = sample(denoise, scheduler, x0.shape, seed=5, noise=latent).numpy()
    error = np.abs(decoded - x0).mean()
    unrelated = np.abs(sample(denoise, scheduler, x0.shape, seed=5).numpy() - x0).mean()
    assert error < 0.08 and error < 0.2 * unrelated, (error, unrelated)
    again = sample(denoise, scheduler, x0.shape, seed=6, noise=latent).numpy()
    np.testing.assert_allclose(again, decoded, atol=1e-6)       # η = 0: seed plays no part
    a, b = np.random.default_rng(0).standard_normal((2, 1, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-6)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-6)
    middle = slerp(a, b, 0.5)
    assert abs(np.linalg.norm(middle) / np.linalg.norm(a) - 1) < 0.05     # keeps the norm
    assert np.linalg.norm((a + b) / 2) / np.linalg.norm(a) < 0.8          # (lerp would not)
    with pytest.raises(ValueError, match="shapes differ"):
        slerp(a, b[..., :4, :], 0.5)


def click_track(bpm, seconds, rate=22050, offset=0.13):
    audio = np.zeros(int(seconds * rate), np.float32)
    burst = np.random.default_rng(0).standard_normal(200) * np.exp(-np.arange(200) / 40)
    for start in np.arange(offset, seconds - 0.02, 60.0 / bpm):
        i = int(start * rate)
        audio[i:i + 200] += burst[:len(audio[i:i + 200])]
    return audio


@pytest.mark.parametrize("bpm", [92.0, 128.0, 171.0])
def test_beat_tracker_recovers_tempo_and_phase(bpm):
    from data.beats import track_beats
    tempo, beats = track_beats(click_track(bpm, 8.0), 22050)
    assert abs(tempo / bpm - 1) < 0.03, tempo
    assert abs(beats[0] - 0.13) < 0.015, beats[:3]               # the phase of the first click


def test_loop_is_a_whole_number_of_bars():
    from data.beats import loop_bounds, make_loop
    audio = click_track(120.0, 6.0)
    start, end, bpm, beats = loop_bounds(audio, 22050)
    assert beats % 4 == 0 and beats >= 8
    assert abs((end - start) - beats * 60 * 22050 / bpm) <= 1
    assert abs((end - start) / (22050 * 0.5) - beats) < 0.03 * beats    # 0.5 s per beat
    loop = make_loop(audio, 22050, 3)
    assert len(loop) == 3 * (end - start)
    np.testing.assert_array_equal(loop[:end - start], loop[end - start:2 * (end - start)])
    with pytest.raises(ValueError, match="too short"):
        make_loop(audio[:2000], 22050, 2)


def cli(capsys, *args):
    """generate.main in-process (the TF import and the run load are the slow part of a CLI)."""
    from generate import main
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def test_generate_cli_inpaint_encode_slerp(tiny, tmp_path, capsys):
    run, params, family, _, init = tiny
    common = ["--run", run, "--steps", "4", "--from-audio", CHORALE]
    out = cli(capsys, *common, "--out", tmp_path / "m", "--strength", "1", "--mask-start", "0.1")
    assert out.returncode == 0, out.stderr
    png = next((tmp_path / "m").glob("*_image.png"))
    image = tf.io.decode_png(tf.io.read_file(str(png))).numpy()[..., 0]
    columns = round(0.1 * family.frames_per_second())                   # 9 of 32 columns
    expected = np.round((init[0, ..., 0] + 1) * 127.5)
    np.testing.assert_array_equal(image[:, :columns], expected[:, :columns])
    assert np.abs(image[:, columns:] - expected[:, columns:]).mean() > 5
    code = tmp_path / "x.npy"
    out = cli(capsys, *common, "--out", tmp_path / "e", "--encode", code, "--slerp", CHORALE,
              "--alpha", "0.3")
    assert out.returncode == 0, out.stderr
    assert np.load(code).shape == (1, 32, 32, 1)
    out = cli(capsys, "--run", run, "--steps", "4", "--out", tmp_path / "n", "--noise", code,
              "--seconds", "0.3")
    assert out.returncode == 0, out.stderr
    for bad, message in [(["--mask-end", "1"], "--mask-end: keeps seconds of from_audio"),
                         (["--from-audio", CHORALE, "--encode", "x.npy", "--sampler", "ddpm"],
                          "--sampler ddim"),
                         (["--noise", code, "--num", "2"], "--noise: x_T must be")]:
        out = cli(capsys, "--run", run, "--out", tmp_path / "bad", *bad)
        assert out.returncode == 2 and out.stderr.startswith("error: ") and message in \
            out.stderr, out.stderr
