"""A spoken-digit classifier on Google's frozen speech embedding (issue #18): the embedding was
trained on real speech (evaluation/speech_embedding.py), only this small head is ours, trained
on the synthetic voice corpus. Lin et al. (2020) showed such a head, trained on synthesized
speech, recognises real talkers; here it is what transfers across engines
(`python -m evaluation.digits.head_crossval`, `make digit-head`).

    head = DigitHead.load("pretrained/digit-head")
    head.predict(audio [N, T] at 16 kHz)                 # → [N] digits
    head.accuracy_on_clips([(audio, rate), ...], labels) # the dict DigitClassifier gives

Input: a clip of up to 1 s (of a longer one, the loudest second), centred in 2 s → the 16
window embeddings [16, 96] (every 80 ms) → flatten → dropout → dense 128 + ReLU → dropout →
dense 10. MEMBERS such heads (seeds seed, seed+1, …) are averaged (their softmax), each on
the clip as it is and at tape speeds SPEEDS (test-time augmentation; the mean of all views).
Trained on precomputed embeddings of several renders of every clip: augment's chain on
the 2 s signal, and a frequency warp of the embedding's mel input (VTLP, features.py).
Weights are stored as float16 (MEMBERS × 0.4 MB), without optimizer state.
"""
from __future__ import annotations

import json
import os
import time

import keras
import numpy as np

from evaluation.digits.classifier import LENGTH, ScoresClips, fit_length
from evaluation.speech_embedding import PACKAGE, SAMPLE_RATE, WIDTH, SpeechEmbedding, centred

ARCHITECTURE = "speech-embedding-head-v2"
WEIGHTS = "members.npz"
CONFIG = "config.json"
HIDDEN, DROPOUT = 128, 0.3
MEMBERS = 3                      # heads of seeds seed … seed + MEMBERS − 1, averaged
SPEEDS = (0.9, 1.1)              # test-time views besides the clip itself (tape speed)


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


def views(audio, speeds=SPEEDS) -> list:
    """The clip centred in 2 s, and at each tape speed (augment.change_speed)."""
    from evaluation.digits.augment import change_speed
    clips = centred(audio)
    return [clips] + [change_speed(clips, factor) for factor in speeds]


class DigitHead(ScoresClips):
    """The member heads and their embedding; accuracy() and accuracy_on_clips() as
    DigitClassifier's."""
    sample_rate = SAMPLE_RATE
    length = LENGTH

    def __init__(self, members: list, config: dict, embedding: SpeechEmbedding | None = None):
        self.members, self.config = members, config
        self._embedding = embedding

    @property
    def embedding(self) -> SpeechEmbedding:
        if self._embedding is None:
            self._embedding = SpeechEmbedding()
        return self._embedding

    def logits_of(self, *embeddings, batch_size: int = 256) -> np.ndarray:
        """Window embeddings [N, K, 96] of one or more views of the same clips → log of the
        mean softmax over members and views [N, classes] (argmax: the digit)."""
        total = 0.0
        for view in embeddings:
            for model in self.members:
                logits = np.concatenate([model(view[i:i + batch_size], training=False).numpy()
                                         for i in range(0, len(view), batch_size)]) \
                    if len(view) else np.zeros((0, self.config["num_classes"]), np.float32)
                total = total + keras.ops.convert_to_numpy(keras.ops.softmax(logits))
        return np.log(total / (len(embeddings) * len(self.members)) + 1e-12)

    def predict(self, audio) -> np.ndarray:
        """audio [N, T] at 16 kHz → digits [N] (all views, all members)."""
        clips = fit_length(audio, self.length)
        return self.logits_of(*(self.embedding(view) for view in
                                views(clips, self.config["speeds"]))).argmax(axis=1)

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        np.savez(os.path.join(directory, WEIGHTS),
                 **{f"member{m}_{i}": w.astype(np.float16)
                    for m, model in enumerate(self.members)
                    for i, w in enumerate(model.get_weights())})        # no optimizer state
        with open(os.path.join(directory, CONFIG), "w") as f:
            json.dump(self.config, f, indent=2)

    @classmethod
    def load(cls, directory) -> "DigitHead":
        try:
            with open(os.path.join(directory, CONFIG)) as f:
                config = json.load(f)
            if config.get("architecture") != ARCHITECTURE:
                raise ValueError(f"architecture {config.get('architecture')!r}")
            members = []
            with np.load(os.path.join(directory, WEIGHTS)) as stored:
                for m in range(config["members"]):
                    model = build_head(config["windows"], config["num_classes"])
                    model.set_weights([stored[f"member{m}_{i}"].astype(np.float32)
                                       for i in range(len(model.weights))])
                    members.append(model)
        except (OSError, ValueError, KeyError, TypeError) as e:
            why = str(e).splitlines()[0] if isinstance(e, ValueError) else e.__class__.__name__
            raise ValueError(f"{directory}: not a digit head ({ARCHITECTURE}) made by "
                             f"make digit-head ({why})") from None
        return cls(members, config)

    @classmethod
    def fit(cls, embeddings, labels, epochs: int = 40, seed: int = 0, members: int = MEMBERS,
            speeds=SPEEDS, **config) -> "DigitHead":
        """Trains `members` heads (seeds seed, seed + 1, …) on window embeddings [N, R, K, 96]
        of R renders per clip; `config` is recorded (e.g. the data it came from)."""
        start = time.perf_counter()
        models = [fit_head(embeddings, labels, epochs, seed + m) for m in range(members)]
        return cls(models, {"architecture": ARCHITECTURE, "embedding": PACKAGE,
                            "sample_rate": SAMPLE_RATE, "length": LENGTH,
                            "windows": int(np.shape(embeddings)[2]),
                            "num_classes": int(np.max(labels)) + 1, "epochs": epochs,
                            "seed": seed, "members": members, "speeds": list(speeds),
                            "hidden": HIDDEN, "dropout": DROPOUT,
                            "train_count": int(len(labels)),
                            "renders": int(np.shape(embeddings)[1]),
                            "train_seconds": round(time.perf_counter() - start, 1), **config})
