"""A second digit scorer, independent of this project's data: CMU PocketSphinx.

`pocketsphinx` (PyPI, BSD) ships a US-English acoustic model trained on recordings of real
people. Restricted by a JSGF grammar to one of the ten digit words ("oh" counts as zero), it
never saw the TTS voices the project's own classifier (evaluation/digits/classifier.py) is
trained on, so its accuracy on generated digits cross-checks that classifier's (issue #18: a
metric that holds on voices it never heard). It runs on the CPU, offline, ~30 ms per 1 s clip
(two passes).

    recognizer = SphinxDigits()
    recognizer.accuracy_on_clips([(audio, 16000), ...], labels)   # same dict as the classifier
"""
from __future__ import annotations

import numpy as np

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GRAMMAR = ("#JSGF V1.0;\ngrammar digits;\npublic <digit> = [ oh | "
           + " | ".join(WORDS) + " ] ;\n")              # [ ]: silence may say nothing
SAMPLE_RATE = 16000                 # the acoustic model's rate
PASSES = 2                          # the first estimates the clip's own cepstral mean


def unavailable() -> str | None:
    """None if pocketsphinx can be used here, else why not (one line)."""
    try:
        import pocketsphinx  # noqa: F401
    except ImportError as e:
        return (f"pocketsphinx is not installed ({e}); make venv, or "
                "pip install --no-deps -r requirements-nodeps.txt")
    return None


class SphinxDigits:
    """PocketSphinx with the digit grammar: recognise(audio) → 0..9, or −1 (nothing heard)."""

    def __init__(self):
        from pocketsphinx import Decoder
        self.decoder = Decoder(loglevel="FATAL")
        self.decoder.add_jsgf_string("digits", GRAMMAR)
        self.decoder.activate_search("digits")
        self.dither = np.random.default_rng(0).integers(-1, 2, SAMPLE_RATE)   # repeated
        from importlib.metadata import version
        self.name = f"PocketSphinx {version('pocketsphinx')} en-us, digit grammar"

    def recognise(self, audio, rate: int = SAMPLE_RATE) -> int:
        audio = np.asarray(audio, np.float32)
        if rate != SAMPLE_RATE:
            from data.filters import resample
            audio = resample(audio, rate, SAMPLE_RATE).numpy()
        pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767)     # unpadded: silence around hurts
        # ±1 LSB of fixed dither: digital silence would make the cepstral mean log(0) = NaN
        pcm = np.clip(pcm + np.resize(self.dither, len(pcm)), -32768, 32767).astype(np.int16)
        d = self.decoder
        d.reinit_feat()          # each clip alone: no noise floor or cepstral mean from the last
        for _ in range(PASSES):  # pass 1 estimates them from this clip, pass 2 decodes
            d.start_utt()
            d.process_raw(pcm.tobytes(), full_utt=True)
            d.end_utt()
        hyp = d.hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        word = "zero" if words[:1] == ["oh"] else (words[0] if words else "")
        return WORDS.index(word) if word in WORDS else -1

    def predict(self, audio) -> np.ndarray:
        """[N, T] at 16 kHz → [N] digits (−1: nothing heard), as DigitClassifier.predict."""
        return np.array([self.recognise(a) for a in np.asarray(audio)])

    def accuracy_on_clips(self, clips, labels) -> dict:
        """{"overall", "count", "per_class"} on [(audio [T], rate)] against labels."""
        from evaluation.digits.classifier import accuracy_table
        return accuracy_table([self.recognise(a, r) for a, r in clips], labels)
