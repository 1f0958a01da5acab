"""evaluate.py: BirdNET embeddings, a SavedModel embedder, the reference cache, the digit
classifier and the report with its baselines, as a user runs them."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

import evaluate
from data.audio_io import read
from data.sources import find_sources
from evaluation import report as evaluation_report
from evaluation.birdnet import BIRDNET_EMBEDDING, BirdNET, SavedModelEmbedder, clip_windows
from evaluation.embeddings import save_check
from evaluation.metrics import frechet_distance, gaussian_stats

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "dataset" / "digits"


def cli(script, *args, timeout=300, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def birdnet():
    return BirdNET()


@pytest.fixture(scope="module")
def digits():
    """The bundled digits: (sources, mono audio [330, 16000]) in metadata order."""
    sources = find_sources(DIGITS).sources
    return sources, np.stack([read(s.path)[0][:, 0] for s in sources])


def digit_subset(directory, sources, per_label):
    """A metadata.jsonl naming the first `per_label` bundled clips of each digit."""
    directory.mkdir(parents=True, exist_ok=True)
    counts = {}
    with open(directory / "metadata.jsonl", "w") as f:
        for s in sources:
            counts[s.label] = counts.get(s.label, 0) + 1
            if counts[s.label] <= per_label:
                f.write(json.dumps({"path": os.path.abspath(s.path), "label": s.label}) + "\n")
    return directory


# ---- BirdNET ------------------------------------------------------------------------------

def test_birdnet_embedding_is_the_pooled_tensor_before_the_classifier(birdnet):
    details = {t["index"]: t for t in birdnet.interpreter.get_tensor_details()}
    assert details[birdnet.embedding_index]["name"] == BIRDNET_EMBEDDING
    assert birdnet.embedding_index == birdnet.output_index - 1
    assert (birdnet.sample_rate, birdnet.window, birdnet.embedding_dim) == (48000, 144000, 1024)
    assert len(birdnet.labels) == 6522 and "Human vocal" in birdnet.labels
    tone = np.sin(2 * np.pi * 440 * np.arange(144000) / 48000).astype(np.float32)
    windows = np.stack([tone * 0.3, np.zeros(144000, np.float32), tone * 0.1,
                        np.random.default_rng(0).normal(size=144000).astype(np.float32) * 0.1,
                        tone * 0.5])
    embeddings, logits = birdnet(windows)
    assert embeddings.shape == (5, 1024) and logits.shape == (5, 6522)
    assert np.all(np.isfinite(embeddings)) and np.all(embeddings >= 0)   # after a ReLU + mean
    # batch-size independent (batches of 4 with a partial one vs one at a time)
    single, _ = birdnet(windows[4:5])
    assert np.allclose(single, embeddings[4], atol=1e-4)
    with pytest.raises(ValueError, match=r"windows \[n, 144000\], got \[2, 1000\]"):
        birdnet(np.zeros((2, 1000)))


def test_clip_windows_resample_segment_and_pad(birdnet):
    one_second = np.ones(16000, np.float32) * 0.5
    w = clip_windows(one_second, 16000, birdnet, 1.0)
    assert w.shape == (1, 144000)
    assert np.allclose(w[0, 100:47900], 0.5, atol=1e-3) and np.all(w[0, 48000:] == 0)
    # 7.4 s in 3 s segments: two full ones, the 1.4 s tail (< half a segment) dropped
    assert clip_windows(np.ones(int(7.4 * 16000)), 16000, birdnet, 3.0).shape == (2, 144000)
    # 7.6 s: the 1.6 s tail is kept and zero-padded; 0.3 s alone still gives one window
    assert clip_windows(np.ones(int(7.6 * 16000)), 16000, birdnet, 3.0).shape == (3, 144000)
    assert clip_windows(np.ones(4800), 16000, birdnet, 1.0).shape == (1, 144000)
    # 6 s chorale at 1 s segments: six windows
    assert clip_windows(np.ones(96000), 16000, birdnet, 1.0).shape == (6, 144000)


def test_fad_grows_as_noise_is_added_to_real_digits(birdnet, digits):
    """FAD(x, x) ≈ 0, and FAD against clean clips rises with the noise level."""
    sources, audio = digits
    labels = np.array([s.label for s in sources])
    by_label = [np.flatnonzero(labels == d) for d in range(10)]
    reference = audio[np.concatenate([i[:8] for i in by_label])]     # 8 clips of every digit
    test = audio[np.concatenate([i[8:12] for i in by_label])]        # 4 others of every digit
    ref_embeddings, _ = evaluation_report.embed_clips([(a, 16000) for a in reference], birdnet,
                                                       1.0)
    mu, sigma = gaussian_stats(ref_embeddings)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    distances = []
    for snr_db in (None, 20.0, 5.0, -5.0):
        noisy = []
        for clip in test:
            if snr_db is not None:
                noise = rng.normal(size=clip.shape)
                rms = evaluation_report.rms
                noise *= rms(clip) / rms(noise) * 10 ** (-snr_db / 20)
                clip = (clip + noise).astype(np.float32)
            noisy.append((clip, 16000))
        emb, _ = evaluation_report.embed_clips(noisy, birdnet, 1.0)
        distances.append(frechet_distance(*gaussian_stats(emb), mu, sigma))
    print("FAD clean, 20 dB, 5 dB, -5 dB SNR:", [round(d, 2) for d in distances])
    assert all(b > a for a, b in zip(distances, distances[1:])), distances
    assert distances[-1] > 2 * distances[0]


# ---- another embedding model, from a SavedModel directory ----------------------------------

def projection_weights():
    return tf.constant(np.random.default_rng(0).normal(size=(129, 24)).astype(np.float32))


def log_spectrum(waveform):
    return tf.math.log(tf.abs(tf.signal.stft(waveform, 256, 128)) + 1e-3)


class Projection(tf.Module):
    """A stand-in embedding model: a fixed random projection of a log-spectrogram,
    [n, samples] → {"embedding": [n, 24], "frames": [n, frames, 24]}."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(projection_weights())

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def __call__(self, waveform):
        frames = tf.tensordot(log_spectrum(waveform), self.w, 1)
        return {"embedding": tf.reduce_mean(frames, axis=1), "frames": frames}


class SingleWaveform(Projection):
    """The YAMNet-style convention: one 1-D waveform in, [frames, 24] out."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def __call__(self, waveform):
        return tf.tensordot(log_spectrum(waveform), self.w, 1)


@pytest.fixture(scope="module")
def savedmodel(tmp_path_factory):
    root = tmp_path_factory.mktemp("savedmodels")
    tf.saved_model.save(Projection(), str(root / "batched"))
    tf.saved_model.save(SingleWaveform(), str(root / "single"))
    return root


def test_savedmodel_embedder_batched_and_one_window_at_a_time(savedmodel):
    windows = np.random.default_rng(1).normal(size=(5, 8000)).astype(np.float32)
    expected = tf.reduce_mean(tf.tensordot(log_spectrum(windows), projection_weights(), 1),
                              axis=1).numpy()
    batched = SavedModelEmbedder(str(savedmodel / "batched"), 8000, 1.0)
    single = SavedModelEmbedder(str(savedmodel / "single"), 8000, 1.0)
    for embedder in (batched, single):
        embeddings, logits = embedder(windows)
        assert logits is None and embeddings.shape == (5, 24)
        assert np.allclose(embeddings, expected, atol=1e-4)
    assert batched._batched and not single._batched
    with pytest.raises(ValueError, match="--embedding-rate"):
        SavedModelEmbedder(str(savedmodel / "batched"), None, 1.0)
    with pytest.raises(ValueError, match="no such SavedModel"):
        SavedModelEmbedder(str(savedmodel / "missing"), 8000, 1.0)


def write_tones(directory, freqs, seconds=0.5, rate=16000, seed=0):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    for i, f in enumerate(freqs):
        audio = 0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.normal(size=t.shape)
        sf.write(directory / f"tone_{i:02d}.wav", audio, rate, subtype="PCM_16")
    return directory


def test_reference_cache_hit_and_invalidation(savedmodel, tmp_path, capsys):
    reference = write_tones(tmp_path / "ref", [200, 300, 450, 600, 800, 1000, 1300, 1700])
    generated = write_tones(tmp_path / "gen", [250, 500, 900, 1500], seed=1)
    args = ["--generated", generated, "--reference", reference, "--cache", tmp_path / "cache",
            "--embedding", savedmodel / "batched", "--embedding-rate", "8000",
            "--embedding-window", "1", "--out", tmp_path / "report"]
    args = list(map(str, args))
    # an embedding that has not passed the ordering check on the domain (music: unlabelled
    # tones) is refused before any work; a passed check cached under its id lets it report
    assert evaluate.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: embedding savedmodel has not passed the FAD ordering check "
                          "on music (passed: none)") and "\n" not in err
    assert not (tmp_path / "cache").exists()
    embedder_id = SavedModelEmbedder(str(savedmodel / "batched"), 8000, 1.0).id
    save_check({"embedding": embedder_id, "domain": "music", "passed": True},
               tmp_path / "cache")

    def run():
        assert evaluate.main(args) == 0
        out = capsys.readouterr().out
        return out, json.loads((tmp_path / "report" / "report.json").read_text())

    first, report = run()
    assert "reference: embedded 8 clips" in first and "cache hit" not in first
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".json", ".npz"]
    assert report["reference"]["a_files"] == 4 and report["sets"]["generated"]["windows"] == 4
    assert report["segment_seconds"] == pytest.approx(0.5)
    second, again = run()
    assert "reference: cache hit" in second
    assert again["sets"]["generated"]["fad"] == pytest.approx(report["sets"]["generated"]["fad"])
    # a changed file (new content, new mtime) invalidates the cache
    time.sleep(0.01)
    write_tones(tmp_path / "ref", [200, 300, 450, 600, 800, 1000, 1300, 3000])
    third, changed = run()
    assert "cache stale" in third and "reference: embedded 8 clips" in third
    assert changed["sets"]["noise"]["fad"] != pytest.approx(report["sets"]["noise"]["fad"])
    fourth, _ = run()
    assert "reference: cache hit" in fourth
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| generated | 4 |" in md and "white noise" in md
    assert "✓ embedding savedmodel passed the FAD ordering check on music" in md
    assert "✗ n = 4 < 100" in md and "✗ n = 4 < 100" in fourth


# ---- digit classifier and the report ------------------------------------------------------

@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    out = tmp_path_factory.mktemp("clf") / "digit_classifier"
    start = time.perf_counter()
    result = cli("evaluate.py", "--train-digit-classifier", "--out", out)
    assert result.returncode == 0, result.stderr
    print(result.stdout.strip().splitlines()[-1], f"[{time.perf_counter() - start:.0f} s]")
    return out


def test_digit_classifier_reaches_95_percent_on_held_out_real_digits(classifier):
    config = json.loads((classifier / "config.json").read_text())
    assert config["heldout_count"] == 70 and config["train_count"] == 260
    assert config["heldout_accuracy"] >= 0.95, config["heldout_per_class"]


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "class3"
    out = cli("train.py", "--data", DIGITS, "--run", run, "--preset", "tiny", "--steps", "3",
              "--set", "conditioning=class")
    assert out.returncode == 0, out.stderr
    return run


def test_report_baselines_and_an_untrained_model(untrained_run, classifier, digits, tmp_path):
    reference = digit_subset(tmp_path / "ref", digits[0], per_label=10)    # 100 clips
    # a classifier trained here is not the committed one: it reports speech FAD only once its
    # own ordering check passed (cached under its weights' id)
    refused = cli("evaluate.py", "--run", untrained_run, "--reference", reference,
                  "--digit-classifier", classifier, "--cache", tmp_path / "cache")
    assert refused.returncode == 2 and "has not passed the FAD ordering check on speech" in \
        refused.stderr and "--check-embedding --embedding digit-classifier" in refused.stderr
    check = cli("evaluate.py", "--check-embedding", "--embedding", "digit-classifier",
                "--digit-classifier", classifier, "--domain", "speech", "--cache",
                tmp_path / "cache")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "| digit-classifier | speech: held out flite | 100 (230) |" in check.stdout
    # no --out: the report goes to runs/eval/<run name> (here below tmp_path), not the run
    out = cli("evaluate.py", "--run", untrained_run, "--reference", reference, "--num", 30,
              "--digit-classifier", classifier, "--cache", tmp_path / "cache", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (tmp_path / "runs" / "eval" / "class3").rename(tmp_path / "eval")
    assert not (untrained_run / "eval").exists()
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    sets = report["sets"]
    fad = {name: sets[name]["fad"] for name in ("generated", "real", "noise")}
    print("FAD", fad)
    # a labelled (digit) reference is speech: FAD on the digit classifier's features, the
    # embedding that passed the ordering check there, with n and an interval per figure
    assert report["domain"] == "speech" and report["embedding"]["name"] == "digit-classifier"
    assert sets["generated"]["windows"] == sets["real"]["windows"] == 30
    assert all(s["low"] <= s["fad"] <= s["high"] and s["n_reference"] == 50
               for s in sets.values())
    assert "metric checks:" in out.stdout and "✗ n = 30 < 100" in out.stdout
    assert "✓ embedding digit-classifier passed the FAD ordering check on speech" in out.stdout
    assert "✓ FAD(real, half B)" in out.stdout and "held-out accuracy" in out.stdout
    assert fad["real"] < 0.5 * fad["noise"]
    # An untrained model makes noise: its FAD is at least half the noise baseline's and
    # nearer it than the real baseline's on a log scale (FAD spans orders of magnitude).
    assert fad["generated"] > 0.5 * fad["noise"]
    assert abs(np.log(fad["generated"] / fad["noise"])) < \
        abs(np.log(fad["generated"] / fad["real"]))
    accuracy = sets["generated"]["digit_accuracy"]
    assert sorted(accuracy["per_class"]) == [str(d) for d in range(10)] and accuracy["count"] == 30
    assert accuracy["overall"] < 0.5 and sets["noise"]["digit_accuracy"]["overall"] < 0.5
    assert sets["real"]["digit_accuracy"]["overall"] >= 0.95
    # the second, independent scorer (PocketSphinx, trained on real speech): it recognises
    # the real half B, not the untrained model's noise nor white noise
    sphinx = {name: sets[name]["sphinx_accuracy"] for name in sets}
    assert sphinx["real"]["count"] == 50 and sphinx["real"]["overall"] >= 0.7
    assert sphinx["generated"]["overall"] < 0.3 and sphinx["noise"]["overall"] < 0.2
    # the third: the digit head on Google's speech embedding, the same way
    head = {name: sets[name]["head_accuracy"] for name in sets}
    assert head["real"]["count"] == 50 and head["real"]["overall"] >= 0.9
    assert head["generated"]["overall"] < 0.4 and head["noise"]["overall"] < 0.3
    assert "digit head: held-out-engine accuracy" in out.stdout
    md = (tmp_path / "eval" / "report.md").read_text()
    assert "| real (reference half B) | 30 |" in md and "| generated, per digit | 0 | 1 |" in md
    assert "| PocketSphinx | " in md and "| digit head | " in md
    assert "## Metric checks" in md and "- ✗ n = 30 < 100" in md
    # the written samples carry their labels: re-evaluating them reads the same set
    samples = tmp_path / "eval" / "samples"
    rows = [json.loads(line) for line in (samples / "metadata.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == [i % 10 for i in range(30)]
    args = ["--generated", samples, "--reference", reference, "--cache", tmp_path / "cache",
            "--digit-classifier", classifier, "--out", tmp_path / "again"]
    assert evaluate.main(list(map(str, args))) == 0
    again = json.loads((tmp_path / "again" / "report.json").read_text())["sets"]
    assert again["generated"]["fad"] == pytest.approx(fad["generated"], rel=0.05)
    assert again["noise"]["fad"] == pytest.approx(fad["noise"], rel=1e-6)
    assert again["generated"]["digit_accuracy"]["count"] == 30


def test_birdnet_is_refused_on_speech_and_reports_on_music(tmp_path, capsys):
    """The issue's case (10 clips against the digits with BirdNET) is refused: BirdNET failed
    the speech ordering check. On chorales it reports, with its checks and IS-style score."""
    chorales = ROOT / "dataset" / "chorales"
    generated = tmp_path / "gen"
    generated.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        sf.write(generated / f"clip_{i}.wav", 0.1 * rng.normal(size=16000), 16000,
                 subtype="PCM_16")
    base = ["--generated", generated, "--cache", tmp_path / "cache", "--out", tmp_path / "eval"]
    assert evaluate.main(list(map(str, [*base, "--reference", DIGITS, "--embedding",
                                        "birdnet"]))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: embedding birdnet has not passed the FAD ordering check on "
                          "speech (passed: music)") and "--embedding digit-classifier" in err
    assert evaluate.main(list(map(str, [*base, "--reference", chorales]))) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    sets = report["sets"]
    assert report["domain"] == "music" and report["embedding"]["name"] == "birdnet"
    assert sets["generated"]["windows"] == sets["noise"]["windows"] == sets["real"]["windows"]
    assert sets["real"]["fad"] < sets["noise"]["fad"] and sets["real"]["is"] > sets["noise"]["is"]
    assert "✓ embedding birdnet passed the FAD ordering check on music" in out
    assert "✗ n = 10 < 100: FAD is biased upwards" in out and "FAD (birdnet, music, n = 10" in out


def test_compare_refuses_reports_at_different_n(tmp_path, capsys):
    def write(name, n, fad):
        sets = {k: {"fad": fad, "low": fad - 1, "high": fad + 1, "windows": n,
                    "n_reference": 126} for k in ("generated", "real", "noise")}
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"generated": name, "segment_seconds": 1.0, "sets": sets,
                                    "embedding": {"id": "birdnet:x"}}))
        return str(path)
    assert evaluate.main(["--compare", write("a", 100, 20.0), write("b", 100, 18.0)]) == 0
    assert "20.000 [19.000, 21.000] → 18.000 [17.000, 19.000] (-2.000) at n = 100" in \
        capsys.readouterr().out
    assert evaluate.main(["--compare", write("a", 100, 20.0), write("c", 10, 50.8)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: refusing to compare FAD(generated of a) and FAD(generated "
                          "of c): n 100 vs 10") and "\n" not in err


def test_reports_default_to_runs_eval_never_inside_the_run():
    for run in ("pretrained/vocoder", "pretrained/vocoder/", "/somewhere/runs/vocoder"):
        assert evaluation_report.default_out(run) == os.path.join("runs", "eval", "vocoder")


# ---- errors --------------------------------------------------------------------------------

def test_missing_run_is_a_one_line_error_without_traceback(tmp_path):
    out = cli("evaluate.py", "--run", tmp_path / "nope", "--reference", DIGITS)
    assert out.returncode == 2
    err = out.stderr.strip()       # the Pipeline's message (diffusion/pipeline.py)
    assert err.startswith(f"error: {tmp_path / 'nope'}: no such run directory") and "\n" not in err


@pytest.mark.parametrize("args,message", [
    (["--run", "{run}", "--reference", "{tmp}/missing"], "no such file or directory"),
    (["--run", "{run}", "--reference", "{tmp}/empty"], "no usable audio"),
    (["--run", "{run}", "--reference", str(DIGITS), "--num", "1"], "--num must be >= 2"),
    (["--run", "{run}", "--reference", str(DIGITS), "--num", "-3"], "--num must be >= 2"),
    (["--run", "{run}", "--reference", str(DIGITS), "--seconds", "0"], "--seconds must be > 0"),
    (["--run", "{run}"], "give --reference"),
    (["--reference", str(DIGITS)], "give --run RUN"),
    (["--run", "{run}", "--reference", str(DIGITS), "--embedding", "{tmp}/nomodel",
      "--embedding-rate", "16000", "--embedding-window", "1"], "no such SavedModel directory"),
    (["--run", "{run}", "--reference", str(DIGITS), "--domain", "all"], "--domain all is for"),
    (["--compare", "{tmp}/missing.json", "{tmp}/missing.json"], "missing.json"),
    (["--train-digit-classifier", "--data", "{tmp}/empty"], "no usable audio"),
])
def test_bad_input_is_a_one_line_error(untrained_run, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.format(run=untrained_run, tmp=tmp_path) for a in args]
    assert evaluate.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
