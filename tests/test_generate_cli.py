"""generate.py as a user runs it on a (briefly) trained tiny run."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

ROOT = Path(__file__).resolve().parent.parent


def cli(script, *args):
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, extra in (("uncond", []), ("class", ["--set", "conditioning=class"])):
        out = cli("train.py", "--data", ROOT / "dataset" / "digits", "--run", root / name,
                  "--preset", "tiny", "--steps", "3", *extra)
        assert out.returncode == 0, out.stderr
    return root


def test_writes_wav_and_png_reproducibly(runs, tmp_path):
    out = cli("generate.py", "--run", runs / "uncond", "--seconds", "0.25", "--num", "2",
              "--out", tmp_path / "a", "--seed", "1")
    assert out.returncode == 0, out.stderr
    assert "wrote 2 clip(s) of 0.25 s" in out.stdout
    wavs = sorted((tmp_path / "a").glob("*.wav"))
    assert len(wavs) == 2 and len(list((tmp_path / "a").glob("*.png"))) == 2
    audio, rate = sf.read(wavs[0])
    assert rate == 16000 and audio.shape == (4000,) and np.abs(audio).max() <= 1.0
    png = tf.io.decode_png(tf.io.read_file(str(wavs[0].with_suffix(".png"))))
    assert png.shape == (480, 750, 4)                    # the labelled figure (data/figures.py)
    again = cli("generate.py", "--run", runs / "uncond", "--seconds", "0.25", "--num", "2",
                "--out", tmp_path / "b", "--seed", "1")
    other = cli("generate.py", "--run", runs / "uncond", "--seconds", "0.25", "--num", "2",
                "--out", tmp_path / "c", "--seed", "2", "--sampler", "ddpm", "--no-ema")
    assert again.returncode == 0 and other.returncode == 0, other.stderr
    same = sf.read(sorted((tmp_path / "b").glob("*.wav"))[0])[0]
    assert np.array_equal(audio, same)
    assert "ddpm, 50 steps" in other.stdout


def test_class_conditional_needs_a_label_in_range(runs, tmp_path):
    ok = cli("generate.py", "--run", runs / "class", "--label", "7", "--seconds", "0.1",
             "--out", tmp_path / "o")
    assert ok.returncode == 0, ok.stderr


# (The cases shared with the other CLIs live in test_bad_input_matrix.py.)
@pytest.mark.parametrize("args,message", [
    (["--run", "{runs}/class"], "--label: {runs}/class is class-conditional: give a label 0..9"),
    (["--run", "{runs}/class", "--label", "10"], "--label: 10 is out of range 0..9"),
    (["--run", "{runs}/uncond", "--steps", "5"], "--steps: applies to sampler ddim"),
    (["--run", "{runs}/uncond", "--from-audio", "/etc/hostname"], "not a readable audio file"),
    (["--run", "{runs}/uncond", "--from-audio", "x.wav"], "--from-audio: no such file x.wav"),
    (["--run", "{runs}/uncond", "--from-audio", "{source}", "--strength", "0"],
     "--strength: must be in (0, 1], got 0.0"),
    (["--run", "{runs}/uncond", "--mask-end", "1"], "--mask-end: keeps seconds of from_audio"),
    (["--run", "{runs}/uncond", "--mel", "x.npy"], "drop it (it is for vocoder models)"),
    (["--run", "{runs}/uncond", "--consistency", "0.3"], "--consistency: {runs}/uncond is an unconditional diffwave run: drop it"),
])
def test_errors_are_one_line(runs, tmp_path, args, message):
    source = sorted((ROOT / "dataset" / "digits").glob("*.flac"))[0]
    args = [a.format(runs=runs, source=source) for a in args]
    out = cli("generate.py", *args, "--out", tmp_path / "x")
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and message.format(runs=runs) in out.stderr, \
        out.stderr
    assert out.stderr.count("\n") == 1


def test_ddim_audio_to_audio_and_chunking(runs, tmp_path):
    ddim = cli("generate.py", "--run", runs / "uncond", "--sampler", "ddim", "--steps", "8",
               "--eta", "0.5", "--seconds", "0.2", "--out", tmp_path / "d")
    assert ddim.returncode == 0 and "ddim, 8 steps" in ddim.stdout, ddim.stderr
    source = sorted((ROOT / "dataset" / "digits").glob("*.flac"))[0]
    a2a = cli("generate.py", "--run", runs / "uncond", "--from-audio", source, "--strength",
              "0.5", "--out", tmp_path / "a")
    assert a2a.returncode == 0 and "fast, 3 steps" in a2a.stdout, a2a.stderr
    clip, _ = sf.read(next((tmp_path / "a").glob("*.wav")))
    assert clip.shape == (16000,)                               # the input's length
    # Chunked denoising gives the whole-length result (the halo covers the receptive field).
    whole = cli("generate.py", "--run", runs / "uncond", "--seconds", "0.6", "--out",
                tmp_path / "w", "--chunk-seconds", "0")
    parts = cli("generate.py", "--run", runs / "uncond", "--seconds", "0.6", "--out",
                tmp_path / "p", "--chunk-seconds", "0.05")
    assert whole.returncode == 0 and parts.returncode == 0, parts.stderr
    w = sf.read(next((tmp_path / "w").glob("*.wav")))[0]
    p = sf.read(next((tmp_path / "p").glob("*.wav")))[0]
    assert np.abs(w - p).max() <= 2 / 32768                    # equal up to 16-bit rounding


def test_mel_vocoder_run(tmp_path):
    run = tmp_path / "voc"
    out = cli("train.py", "--data", ROOT / "dataset" / "digits", "--run", run, "--preset", "tiny",
              "--steps", "2", "--set", "conditioning=mel", "--set", "hop_length=64",
              "--set", "n_mels=32")
    assert out.returncode == 0, out.stderr
    source = sorted((ROOT / "dataset" / "digits").glob("*.flac"))[3]
    gen = cli("generate.py", "--run", run, "--mel", source, "--out", tmp_path / "o")
    assert gen.returncode == 0, gen.stderr
    clip, _ = sf.read(next((tmp_path / "o").glob("*.wav")))
    assert clip.shape == (16000 // 64 * 64,)
    # Steered toward --mel and refined on it: another clip, closer to the log-mel it was given.
    steered = cli("generate.py", "--run", run, "--mel", source, "--out", tmp_path / "c",
                  "--consistency", "0.3", "--refine-steps", "20")
    assert steered.returncode == 0, steered.stderr
    other, _ = sf.read(next((tmp_path / "c").glob("*.wav")))
    from data.features import log_mel, read_mono
    from data.pipeline import normalize
    from params import Params
    real = normalize(read_mono(str(source), 16000), Params.load(run / "params.json").data)
    target = log_mel(np.asarray(real)[None, :len(clip)], 16000, 64, 32).numpy()
    distance = [np.abs(log_mel(x[None].astype(np.float32), 16000, 64, 32).numpy() - target).mean()
                for x in (clip, other)]
    assert distance[1] < 0.8 * distance[0], distance
    negative = cli("generate.py", "--run", run, "--mel", source, "--out", tmp_path / "n",
                   "--refine-steps", "-1")
    assert negative.returncode == 2 and "--refine-steps: must be >= 0, got -1" in \
        negative.stderr
    missing = cli("generate.py", "--run", run, "--out", tmp_path / "o")
    assert missing.returncode == 2 and "--mel: " in missing.stderr and "give a log-mel [frames, 32]" in \
        missing.stderr
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 7), np.float32))
    wrong = cli("generate.py", "--run", run, "--mel", bad, "--out", tmp_path / "o")
    assert wrong.returncode == 2 and "expected a [frames, 32] log-mel" in wrong.stderr
