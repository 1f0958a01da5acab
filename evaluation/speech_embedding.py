"""Google's speech embedding (Lin et al. 2020, "Training keyword spotters with limited and
synthesized speech data", arXiv:2002.01322): a frozen front end trained on a large corpus of
real speech, on which a small head trained on synthetic voices recognises real ones.

The two TFLite files come with the `openwakeword==0.5.1` wheel (PyPI; installed --no-deps by
requirements-nodeps.txt, never committed; openwakeword labels its bundled models CC BY-NC-SA
4.0, the embedding itself is Google's Apache-2.0 TF-Hub module re-implemented). openwakeword
is not imported (its import needs onnxruntime): only its files are read, through tf.lite.

    embed = SpeechEmbedding()
    windows = embed(audio)          # audio [N, T] at 16 kHz, |x| ≤ 1 → [N, K, 96]

Facts of the models: melspectrogram.tflite takes float samples at int16 scale and gives 32
mel bands every 10 ms, rescaled here as openwakeword does (x/10 + 2); embedding_model.tflite
maps 76 mel frames (0.775 s) to 96 values, taken every 8 frames (80 ms). A clip is centred in
CONTEXT samples first (exact zeros around it, then a fixed ±1 LSB dither so silence is finite),
so every clip of up to CONTEXT samples gives the same K windows, whatever its length.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

SAMPLE_RATE = 16000
CONTEXT = 32000                  # 2 s: a 1 s digit centred, K = 16 windows
FRAMES, STRIDE, BANDS, WIDTH = 76, 8, 32, 96
MODELS = ("melspectrogram.tflite", "embedding_model.tflite")
PACKAGE = "openwakeword==0.5.1"


class SpeechEmbeddingError(ValueError):
    """The speech embedding cannot be found or loaded; one-line message."""


def model_files():
    """(mel model, embedding model) paths inside the installed openwakeword package."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations:
        raise SpeechEmbeddingError(f"the speech embedding is not installed: make venv, or "
                                   f"pip install --no-deps {PACKAGE}")
    folder = os.path.join(spec.submodule_search_locations[0], "resources", "models")
    paths = tuple(os.path.join(folder, name) for name in MODELS)
    for path in paths:
        if not os.path.isfile(path):
            raise SpeechEmbeddingError(f"{path} is missing: install {PACKAGE}, whose wheel "
                                       f"carries the models (later versions download them)")
    return paths


def unavailable() -> str | None:
    """None if the speech embedding can run here, else why not (one line)."""
    try:
        model_files()
    except SpeechEmbeddingError as e:
        return str(e)
    return None


def centred(audio, length: int = CONTEXT) -> np.ndarray:
    """[N, T] → [N, length]: each clip in the middle (a longer one keeps its middle)."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.shape[1] > length:
        start = (audio.shape[1] - length) // 2
        return audio[:, start:start + length].copy()
    out = np.zeros((len(audio), length), np.float32)
    start = (length - audio.shape[1]) // 2
    out[:, start:start + audio.shape[1]] = audio
    return out


class SpeechEmbedding:
    """audio [N, T] at 16 kHz → window embeddings [N, K, 96] (K = 16 for CONTEXT = 2 s)."""
    sample_rate = SAMPLE_RATE

    def __init__(self, num_threads: int = 2, batch_size: int = 64):
        import tensorflow as tf
        paths = model_files()
        try:
            self.mel, self.embedding = (tf.lite.Interpreter(model_path=p, num_threads=num_threads)
                                        for p in paths)
        except (ValueError, RuntimeError) as e:
            raise SpeechEmbeddingError(f"{paths[0]}: cannot load "
                                       f"({str(e).splitlines()[0][:100]})") from None
        self.batch_size = batch_size
        self.dither = np.random.default_rng(0).choice([-1.0, 1.0], CONTEXT).astype(np.float32)
        self.windows = self(np.zeros((1, 1), np.float32)).shape[1]

    @staticmethod
    def _run(interpreter, x):
        interpreter.resize_tensor_input(0, list(x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    def __call__(self, audio) -> np.ndarray:
        return self.from_mels(self.mels(audio))

    def mels(self, audio) -> np.ndarray:
        """audio [N, T] → the embedding's input: 32 mel bands every 10 ms [N, F, 32], each clip
        centred in CONTEXT (F = 197 for 2 s)."""
        x = centred(audio) * 32767.0 + self.dither              # int16 scale, never all-zero
        mels = [self._run(self.mel, x[i:i + self.batch_size])[:, 0] / 10.0 + 2.0
                for i in range(0, len(x), self.batch_size)]
        return np.concatenate(mels) if mels else np.zeros((0, 0, BANDS), np.float32)

    def from_mels(self, mels) -> np.ndarray:
        """mels [N, F, 32] → window embeddings [N, K, 96], a window of FRAMES every STRIDE."""
        out = []
        for i in range(0, len(mels), self.batch_size):
            mel = np.asarray(mels[i:i + self.batch_size], np.float32)
            starts = range(0, mel.shape[1] - FRAMES + 1, STRIDE)
            windows = np.stack([mel[:, s:s + FRAMES] for s in starts], 1)
            emb = self._run(self.embedding, windows.reshape(-1, FRAMES, BANDS, 1))
            out.append(emb.reshape(len(mel), len(starts), WIDTH))
        return np.concatenate(out) if out else np.zeros((0, self.windows, WIDTH), np.float32)
