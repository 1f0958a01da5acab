"""A spoken-digit classifier (log-mel CNN) that scores class-conditional samples.

    clf = DigitClassifier.load("pretrained/digit-classifier")      # the committed one
    labels = clf.predict(audio [N, T] at clf.sample_rate)          # argmax over the 10 digits
    features = clf.embed(audio)                                    # [N, 128] penultimate layer
    clf = DigitClassifier.train("dataset/digits", "runs/digit_classifier", seed=0)

Input: 1 s at 16 kHz (shorter clips are zero-padded; of a longer one the loudest second is
used). The network and front end (log-mel + SpecAugment) are in evaluation/digits/features.py,
the augmentations (speed, room reverb, noise at 0–30 dB SNR, EQ, telephone band, μ-law and
codec round trips) in evaluation/digits/augment.py, the leave-one-engine/voice-out evaluation
and the committed model's recipe in evaluation/digits/crossval.py (`make digit-classifier`).

`train` (evaluate.py --train-digit-classifier): a stratified random split holding out
`heldout` (20 %) of each digit's clips of a labelled directory, and the light augmentation
(AUGMENT_LIGHT: a small set has too few steps for the full chain); `fit` trains on arrays,
with the full chain by default (the committed model). Both:
AdamW (3e-3, cosine decay, weight decay 0.01), batch 32, every epoch a fresh augmentation of
every training clip. The directory gets model.weights.h5 and config.json.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

from evaluation.digits.augment import AUGMENT_LIGHT, AUGMENT_PROBS, augment
from evaluation.digits.features import ARCHITECTURE, HOP, LENGTH, N_MELS, SAMPLE_RATE, build_network

WEIGHTS = "model.weights.h5"
CONFIG = "config.json"


def fit_length(audio, length: int = LENGTH, hop: int = HOP) -> np.ndarray:
    """[N, T] → [N, length]: zero-padded at the end, or the `length` window (in steps of
    `hop`) holding the most energy, so a recording with silence before the word still works."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 2:
        raise ValueError(f"expected audio [N, T], got shape {list(audio.shape)}")
    if audio.shape[1] <= length:
        return np.pad(audio, [(0, 0), (0, length - audio.shape[1])])
    energy = np.concatenate([np.zeros([len(audio), 1]),                  # float64: exact ties
                             np.cumsum(audio.astype(np.float64) ** 2, axis=1)], 1)
    starts = np.arange(0, audio.shape[1] - length + 1, hop)
    best = starts[np.argmax(energy[:, starts + length] - energy[:, starts], axis=1)]
    return np.stack([clip[s:s + length] for clip, s in zip(audio, best)])


def clips_array(clips, sample_rate: int = SAMPLE_RATE, length: int = LENGTH) -> np.ndarray:
    """[(audio [T], rate)] → [N, length] at sample_rate (fit_length of each clip)."""
    from data.filters import resample
    audio = [resample(a, rate, sample_rate).numpy() if rate != sample_rate
             else np.asarray(a, np.float32) for a, rate in clips]
    return np.stack([fit_length(a[None], length)[0] for a in audio])


def accuracy_table(predicted, labels) -> dict:
    """{"overall": acc, "per_class": {label: acc}, "count": n} of predictions against labels."""
    labels = np.asarray(labels)
    correct = np.asarray(predicted) == labels
    return {"overall": float(correct.mean()), "count": int(len(labels)),
            "per_class": {int(c): float(correct[labels == c].mean()) for c in np.unique(labels)}}


def load_labelled(data, sample_rate: int = SAMPLE_RATE, length: int = LENGTH):
    """(audio [N, length] mono at sample_rate, labels [N], paths) of the labelled clips of a
    directory / metadata.jsonl (data.sources), through the project's decoder and resampler."""
    from data.audio_io import read
    from data.filters import resample
    from data.sources import find_sources
    sources = [s for s in find_sources(data).sources if s.label >= 0]
    if not sources:
        raise ValueError(f"{data}: no labelled clips (a metadata.jsonl with 'label' is needed)")
    clips = []
    for s in sources:
        audio, rate = read(s.path)
        clips.append(fit_length(resample(audio.mean(axis=1), rate, sample_rate).numpy()[None],
                                length)[0])
    return np.stack(clips), np.array([s.label for s in sources]), [s.path for s in sources]


def stratified_split(labels, heldout: float, seed: int):
    """Indices (train, test): round(heldout · count) random clips of each label held out."""
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        test.extend(rng.permutation(members)[:max(1, round(heldout * len(members)))])
    test = np.sort(np.array(test))
    return np.setdiff1d(np.arange(len(labels)), test), test


def fit_model(audio, labels, epochs: int, seed: int = 0, batch_size: int = 32,
              num_classes: int = 10, log=print, probs=None, init=None, **network) -> keras.Model:
    """Trains a network (fresh, or starting from the weights of `init`, a keras.Model of the
    same shape) on augmented copies of `audio` (a new draw every epoch; the next epoch's draw
    is made in a thread while this one trains)."""
    keras.utils.set_random_seed(seed)
    model = build_network(num_classes, audio.shape[1], seed=seed, **network)
    if init is not None:
        model.set_weights(init.get_weights())
    steps = epochs * -(-len(audio) // batch_size)
    model.compile(keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(3e-3, steps),
                                         weight_decay=1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng([seed, 1])

    def draw():
        order = rng.permutation(len(audio))
        return augment(audio[order], rng, probs), labels[order]

    start = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(draw)
        for epoch in range(epochs):
            x, y = pending.result()
            if epoch + 1 < epochs:
                pending = pool.submit(draw)
            history = model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
            if log and ((epoch + 1) % 5 == 0 or epoch + 1 == epochs):
                log(f"  epoch {epoch + 1}/{epochs}: loss {history.history['loss'][-1]:.3f} "
                    f"({time.perf_counter() - start:.0f} s)")
    return model


class ScoresClips:
    """accuracy() and accuracy_on_clips() of a scorer with predict(audio [N, length] at
    sample_rate) → digits [N] (DigitClassifier, evaluation/digits/head.DigitHead)."""

    def accuracy(self, audio, labels) -> dict:
        """{"overall": acc, "per_class": {label: acc}, "count": n} on labelled clips."""
        return accuracy_table(self.predict(audio), labels)

    def accuracy_on_clips(self, clips, labels) -> dict:
        """accuracy() on [(audio [T], rate)], resampled to the scorer's rate."""
        return self.accuracy(clips_array(clips, self.sample_rate, self.length), labels)


class DigitClassifier(ScoresClips):
    def __init__(self, model: keras.Model, config: dict):
        self.model, self.config = model, config
        self.sample_rate = config["sample_rate"]
        self.length = config["length"]
        self._embedder = None

    @property
    def heldout_accuracy(self) -> float:
        return self.config["heldout_accuracy"]

    def _batched(self, model, audio, batch_size) -> np.ndarray:
        audio = fit_length(audio, self.length)
        return np.concatenate([model(audio[i:i + batch_size], training=False).numpy()
                               for i in range(0, len(audio), batch_size)])

    def logits(self, audio, batch_size: int = 64) -> np.ndarray:
        return self._batched(self.model, audio, batch_size)

    def embed(self, audio, batch_size: int = 64) -> np.ndarray:
        """audio [N, T] at sample_rate → the penultimate features [N, 128] (the ReLU output
        before the final dense layer), e.g. for a Fréchet distance on speech."""
        if self._embedder is None:
            self._embedder = keras.Model(self.model.input,
                                         self.model.get_layer("embedding").output)
        return self._batched(self._embedder, audio, batch_size)

    def predict(self, audio) -> np.ndarray:
        return self.logits(audio).argmax(axis=1)

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.model.save_weights(os.path.join(directory, WEIGHTS))
        with open(os.path.join(directory, CONFIG), "w") as f:
            json.dump(self.config, f, indent=2)

    @classmethod
    def load(cls, directory) -> "DigitClassifier":
        path = os.path.join(directory, CONFIG)
        try:
            with open(path) as f:
                config = json.load(f)
            if config.get("architecture") != ARCHITECTURE:
                raise ValueError(f"architecture {config.get('architecture')!r}")
            model = build_network(config["num_classes"], config["length"],
                                  **config.get("network", {}))
            model.load_weights(os.path.join(directory, WEIGHTS))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{directory}: not a digit classifier ({ARCHITECTURE}) made by "
                             f"make digit-classifier or evaluate.py --train-digit-classifier "
                             f"({e.__class__.__name__})") from None
        return cls(model, config)

    @classmethod
    def fit(cls, audio, labels, epochs: int = 30, seed: int = 0, batch_size: int = 32,
            log=print, network=None, probs=None, init=None, **config) -> "DigitClassifier":
        """Trains on arrays (audio [N, LENGTH] at 16 kHz, labels [N]); `network` goes to
        build_network (band_norm, cepstra, warp), `probs` to augment(), `config` is recorded.
        init: a DigitClassifier to fine-tune (its network settings win), or None."""
        start = time.perf_counter()
        num_classes = int(np.max(labels)) + 1
        network = {"band_norm": False, "cepstra": 20, "warp": 1.0, **(network or {})}
        if init is not None:
            if init.config["num_classes"] != num_classes or init.length != LENGTH:
                raise ValueError(f"cannot fine-tune a {init.config['num_classes']}-class "
                                 f"classifier on {num_classes} classes")
            network = {**network, **init.config.get("network", {})}
            config["fine_tuned_from"] = init.config.get("data", "a digit classifier")
        probs = {**AUGMENT_PROBS, **(probs or {})}
        model = fit_model(audio, labels, epochs, seed, batch_size, num_classes, log, probs,
                          None if init is None else init.model, **network)
        return cls(model, {"architecture": ARCHITECTURE, "sample_rate": SAMPLE_RATE,
                           "length": LENGTH, "hop_length": HOP, "n_mels": N_MELS,
                           "num_classes": num_classes, "epochs": epochs, "seed": seed,
                           "batch_size": batch_size, "network": network, "augment": probs,
                           "train_count": int(len(labels)),
                           "train_seconds": round(time.perf_counter() - start, 1), **config})

    @classmethod
    def train(cls, data, out=None, epochs: int = 40, seed: int = 0, heldout: float = 0.2,
              batch_size: int = 32, log=print, init=None) -> "DigitClassifier":
        """Trains on `data`'s labelled clips (fine-tuning `init`, a DigitClassifier, if given),
        evaluates on the held-out split, saves to `out`."""
        start = time.perf_counter()
        audio, labels, paths = load_labelled(data)
        train, test = stratified_split(labels, heldout, seed)
        classifier = cls.fit(audio[train], labels[train], epochs, seed, batch_size, log,
                             probs=AUGMENT_LIGHT, init=init, data=str(data),
                             split=f"stratified random, {heldout:.0%} of each label held out",
                             heldout_files=[paths[i] for i in test])
        result = classifier.accuracy(audio[test], labels[test])
        classifier.config.update(heldout_accuracy=result["overall"],
                                 heldout_count=result["count"],
                                 heldout_per_class=result["per_class"],
                                 train_seconds=round(time.perf_counter() - start, 1))
        if out is not None:
            classifier.save(out)
        return classifier
