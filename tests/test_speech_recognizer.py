"""The second digit scorer (evaluation/digits/sphinx.py): PocketSphinx's real-speech
acoustic model with a digit grammar, on the bundled digits, noise, another sample rate."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "dataset" / "digits"


@pytest.fixture(scope="module")
def recognizer():
    from evaluation.digits.sphinx import SphinxDigits, unavailable
    assert unavailable() is None                 # requirements-nodeps.txt installs it
    return SphinxDigits()


def bundled(step=3):
    from evaluation.digits.sphinx import WORDS
    paths = sorted(DIGITS.glob("*.flac"))[::step]
    return [(sf.read(p, dtype="float32")[0], 16000) for p in paths], \
        np.array([WORDS.index(p.name.split("_")[0]) for p in paths])


def test_it_recognises_the_bundled_digits_and_not_noise(recognizer):
    clips, labels = bundled()
    accuracy = recognizer.accuracy_on_clips(clips, labels)
    print(accuracy)
    assert accuracy["count"] == len(labels) == 110 and sorted(accuracy["per_class"]) == \
        list(range(10))
    assert accuracy["overall"] >= 0.8             # 89.1 % on all 330 clips here
    rng = np.random.default_rng(0)
    noise = [(0.1 * rng.standard_normal(16000).astype(np.float32), 16000) for _ in range(20)]
    assert recognizer.accuracy_on_clips(noise, np.arange(20) % 10)["overall"] <= 0.2
    assert recognizer.recognise(np.zeros(16000, np.float32)) == -1      # silence: no word


def test_other_sample_rates_are_resampled(recognizer):
    from data.filters import resample
    clips, labels = bundled(step=30)
    at_16k = [recognizer.recognise(a, r) for a, r in clips]
    at_22k = [recognizer.recognise(resample(a, 16000, 22050).numpy(), 22050) for a, _ in clips]
    assert np.mean(np.array(at_16k) == np.array(at_22k)) >= 0.9
    assert np.mean(np.array(at_16k) == labels) >= 0.8
