"""A spoken-digit classifier on Google's frozen speech embedding (issue #18): the embedding was
trained on real speech (evaluation/speech_embedding.py), only this small head is ours, trained
on the synthetic voice corpus. Lin et al. (2020) showed such a head, trained on synthesized
speech, recognises real talkers; here it is what transfers across engines
(`python -m evaluation.digit_head_crossval`, `make digit-head`).

    head = DigitHead.load("pretrained/digit-head")
    head.predict(audio [N, T] at 16 kHz)                 # → [N] digits
    head.accuracy_on_clips([(audio, rate), ...], labels) # the dict DigitClassifier gives

Input: a clip of up to 1 s (of a longer one, the loudest second), centred in 2 s → the 16
window embeddings [16, 96] (every 80 ms) → flatten → dropout → dense 128 + ReLU → dropout →
dense 10. Trained on precomputed embeddings of several augmented renders of every clip
(evaluation/digit_augment.py's chain, applied to the 2 s signal), Adam, batch 64.
"""
from __future__ import annotations

import json
import os
import time

import keras
import numpy as np

from evaluation.digit_classifier import LENGTH, ScoresClips, fit_length
from evaluation.speech_embedding import PACKAGE, SAMPLE_RATE, WIDTH, SpeechEmbedding

ARCHITECTURE = "speech-embedding-head-v1"
WEIGHTS = "model.weights.h5"
CONFIG = "config.json"
HIDDEN, DROPOUT = 128, 0.3


def build_head(windows: int, num_classes: int = 10) -> keras.Model:
    """[windows, 96] → logits [num_classes]."""
    return keras.Sequential([keras.Input((windows, WIDTH)), keras.layers.Flatten(),
                             keras.layers.Dropout(DROPOUT),
                             keras.layers.Dense(HIDDEN, activation="relu", name="embedding"),
                             keras.layers.Dropout(DROPOUT), keras.layers.Dense(num_classes)],
                            name="digit_head")


def fit_head(embeddings, labels, epochs: int = 40, seed: int = 0, batch_size: int = 64,
             learning_rate: float = 1e-3) -> keras.Model:
    """embeddings [N, R, K, 96] (R renders of each clip) and labels [N] → a trained head."""
    embeddings = np.asarray(embeddings, np.float32)
    n, renders = embeddings.shape[:2]
    x = embeddings.reshape(n * renders, *embeddings.shape[2:])
    y = np.repeat(np.asarray(labels, np.int32), renders)
    keras.utils.set_random_seed(seed)
    model = build_head(x.shape[1], int(y.max()) + 1)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    return model


class DigitHead(ScoresClips):
    """The head and its embedding; accuracy() and accuracy_on_clips() as DigitClassifier's."""
    sample_rate = SAMPLE_RATE
    length = LENGTH

    def __init__(self, model: keras.Model, config: dict, embedding: SpeechEmbedding | None = None):
        self.model, self.config = model, config
        self._embedding = embedding

    @property
    def embedding(self) -> SpeechEmbedding:
        if self._embedding is None:
            self._embedding = SpeechEmbedding()
        return self._embedding

    def logits_of(self, embeddings, batch_size: int = 256) -> np.ndarray:
        """Window embeddings [N, K, 96] → logits [N, classes]."""
        return np.concatenate([self.model(embeddings[i:i + batch_size], training=False).numpy()
                               for i in range(0, len(embeddings), batch_size)]) \
            if len(embeddings) else np.zeros((0, self.config["num_classes"]), np.float32)

    def predict(self, audio) -> np.ndarray:
        """audio [N, T] at 16 kHz → digits [N]."""
        return self.logits_of(self.embedding(fit_length(audio, self.length))).argmax(axis=1)

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        weights_only = build_head(self.config["windows"], self.config["num_classes"])
        weights_only.set_weights(self.model.get_weights())       # no optimizer state
        weights_only.save_weights(os.path.join(directory, WEIGHTS))
        with open(os.path.join(directory, CONFIG), "w") as f:
            json.dump(self.config, f, indent=2)

    @classmethod
    def load(cls, directory) -> "DigitHead":
        try:
            with open(os.path.join(directory, CONFIG)) as f:
                config = json.load(f)
            if config.get("architecture") != ARCHITECTURE:
                raise ValueError(f"architecture {config.get('architecture')!r}")
            model = build_head(config["windows"], config["num_classes"])
            model.load_weights(os.path.join(directory, WEIGHTS))
        except (OSError, ValueError, KeyError, TypeError) as e:
            why = str(e).splitlines()[0] if isinstance(e, ValueError) else e.__class__.__name__
            raise ValueError(f"{directory}: not a digit head ({ARCHITECTURE}) made by "
                             f"make digit-head ({why})") from None
        return cls(model, config)

    @classmethod
    def fit(cls, embeddings, labels, epochs: int = 40, seed: int = 0, **config) -> "DigitHead":
        """Trains on window embeddings [N, R, K, 96] of R renders per clip; `config` is
        recorded (e.g. the data it came from)."""
        start = time.perf_counter()
        model = fit_head(embeddings, labels, epochs, seed)
        return cls(model, {"architecture": ARCHITECTURE, "embedding": PACKAGE,
                           "sample_rate": SAMPLE_RATE, "length": LENGTH,
                           "windows": int(np.shape(embeddings)[2]),
                           "num_classes": int(np.max(labels)) + 1, "epochs": epochs,
                           "seed": seed, "hidden": HIDDEN, "dropout": DROPOUT,
                           "train_count": int(len(labels)),
                           "renders": int(np.shape(embeddings)[1]),
                           "train_seconds": round(time.perf_counter() - start, 1), **config})
