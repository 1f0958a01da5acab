"""The committed digit classifier (pretrained/digit-classifier, issue #18): it loads, hears the
bundled digits of every engine, keeps hearing them through a telephone, a room and noise,
embeds deterministically, and a bad directory is one clear error."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluation.digits import augment as aug
from evaluation.digits.classifier import DigitClassifier, fit_length
from evaluation.digits.crossval import ENGINES, bundled, by_group

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED = ROOT / "pretrained" / "digit-classifier"


@pytest.fixture(scope="module")
def classifier():
    return DigitClassifier.load(PRETRAINED)


@pytest.fixture(scope="module")
def digits():
    return bundled()                                   # audio [330, 16000], labels, engine


def per_engine(classifier, audio, labels, engine) -> dict:
    return {g: r["accuracy"] for g, r in by_group(classifier, audio, labels, engine).items()}


def test_committed_classifier_is_small_and_documents_its_folds():
    weights = PRETRAINED / "model.weights.h5"
    assert weights.stat().st_size < 2_000_000
    config = json.loads((PRETRAINED / "config.json").read_text())
    loeo = {k: v for k, v in config["folds"].items() if k.startswith("loeo:")}
    engines = {k.split(":")[1] for k in loeo}         # the Debian engines; Kokoro only when
    assert {"espeak-ng", "flite", "festival"} <= engines <= set(ENGINES)   # its corpus had it
    card = (PRETRAINED / "README.md").read_text()
    assert "| held-out engine |" in card and " min on " in card


def test_bundled_digits_are_recognised_per_engine(classifier, digits):
    accuracy = per_engine(classifier, *digits)
    assert set(accuracy) == {"espeak-ng", "flite", "festival", "all"}   # the bundled engines
    assert all(a >= 0.95 for a in accuracy.values()), accuracy


@pytest.mark.parametrize("name, distort, floor", [
    ("telephone", lambda x, rng: aug.telephone(x), 0.9),
    ("reverb", lambda x, rng: aug.reverb(x, rng, rt60=(0.3, 0.6)), 0.9),
    ("noise 10 dB", lambda x, rng: aug.add_noise(x, rng.standard_normal(x.shape), 10.0), 0.9),
])
def test_accuracy_stays_high_under_channel_distortions(classifier, digits, name, distort, floor):
    audio, labels, engine = digits
    accuracy = per_engine(classifier, distort(audio, np.random.default_rng(0)), labels, engine)
    assert accuracy["all"] >= floor, (name, accuracy)


def test_a_long_recording_with_silence_before_the_word_is_classified(classifier, digits):
    audio, labels, _ = digits
    pick = np.arange(0, len(labels), 11)
    long = np.pad(audio[pick], [(0, 0), (16000, 8000)])          # 1 s silence, then the word
    assert np.array_equal(fit_length(long), audio[pick])
    assert np.mean(classifier.predict(long) == labels[pick]) >= 0.95


def test_embed_shape_determinism_and_batch_independence(classifier, digits):
    audio = digits[0][:40]
    a, b = classifier.embed(audio), classifier.embed(audio)
    assert a.shape == (40, 128) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(classifier.embed(audio[:5], batch_size=2), a[:5], atol=1e-5)
    assert np.linalg.norm(a[0] - a[20]) > 1e-3                 # different clips, different points
    logits = classifier.logits(audio[:5])
    weights, bias = classifier.model.get_layer("logits").get_weights()
    np.testing.assert_allclose(a[:5] @ weights + bias, logits, atol=1e-4)   # the penultimate layer


@pytest.mark.parametrize("make, why", [
    (lambda d: None, "missing"),
    (lambda d: (d / "config.json").write_text("{not json"), "broken config"),
    (lambda d: (d / "config.json").write_text(json.dumps({"architecture": "logmel-cnn-v1"})),
     "other architecture"),
    (lambda d: (shutil.copy(PRETRAINED / "config.json", d / "config.json"),
                (d / "model.weights.h5").write_bytes(b"junk")), "bad weights"),
])
def test_a_bad_classifier_directory_is_a_one_line_error_naming_it(tmp_path, make, why):
    directory = tmp_path / "clf"
    if why != "missing":
        directory.mkdir()
        make(directory)
    with pytest.raises(ValueError) as error:
        DigitClassifier.load(directory)
    message = str(error.value)
    assert str(directory) in message and "\n" not in message, why


def test_evaluate_defaults_to_the_committed_classifier():
    sys.path.insert(0, str(ROOT))
    import evaluate
    assert Path(evaluate.parse_args([]).digit_classifier) == PRETRAINED


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt)")
def test_espeak_outside_the_corpus_speed_and_pitch_ranges_is_recognised(classifier, tmp_path):
    """The corpus's espeak-ng clips are 100–280 wpm at pitch 5–95: 300 wpm at pitch 99."""
    import soundfile as sf
    audio = []
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    for i, word in enumerate(words):
        path = tmp_path / f"{word}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us+klatt4", "-s", "300", "-p", "99",
                        "-w", str(path), word], check=True)
        x, rate = sf.read(path, dtype="float32")
        audio.append((x, rate))
    result = classifier.accuracy_on_clips(audio, np.arange(10))
    assert result["overall"] >= 0.8, result
