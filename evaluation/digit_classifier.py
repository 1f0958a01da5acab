"""A small spoken-digit classifier (log-mel CNN) that scores class-conditional samples.

    clf = DigitClassifier.train("dataset/digits", "runs/digit_classifier", seed=0)
    clf = DigitClassifier.load("runs/digit_classifier")
    labels = clf.predict(audio [N, T] at clf.sample_rate)        # argmax over the 10 digits

Input: 1 s at 16 kHz (shorter clips are zero-padded, longer ones cut). Features: the project's
log-mel (data.features.log_mel, 64 bands, hop 10 ms), instance-normalised (zero mean, unit
variance per clip), so a gain change only moves values at the −100 dB floor. Network: four
3×3 conv → batch-norm → ReLU blocks (16, 32, 64, 96 channels; 2×2 max-pool after the first
three) → [time/8, 8 bands × 96] → max over time → dropout 0.3 → dense 10; 87k parameters.

Training (seeded, deterministic on CPU): a stratified random split holding out `heldout`
(20 %) of each digit's clips; 40 epochs of AdamW (3e-3, cosine decay, weight decay 0.01),
batch 32; every epoch each training clip is augmented with a random gain (±10 dB), a random
time shift (±0.15 s, zero fill) and white noise 30–60 dB below the clip's peak. The
directory gets model.weights.h5 and config.json (settings, the held-out files and the held-out
accuracy, overall and per digit).
"""
from __future__ import annotations

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

SAMPLE_RATE = 16000
LENGTH = 16000
HOP = 160
N_MELS = 64
WEIGHTS = "model.weights.h5"
CONFIG = "config.json"


class LogMelFeatures(layers.Layer):
    """audio [B, T] → instance-normalised log-mel [B, T/hop, n_mels, 1]."""

    def __init__(self, sample_rate=SAMPLE_RATE, hop_length=HOP, n_mels=N_MELS, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate, self.hop_length, self.n_mels = sample_rate, hop_length, n_mels

    def call(self, audio):
        from data.features import log_mel
        mel = log_mel(audio, self.sample_rate, self.hop_length, self.n_mels)
        mean, variance = tf.nn.moments(mel, axes=[1, 2], keepdims=True)
        return ((mel - mean) * tf.math.rsqrt(variance + 1e-6))[..., None]


def build_network(num_classes: int = 10, length: int = LENGTH) -> keras.Model:
    audio = keras.Input([length], name="audio")
    x = LogMelFeatures(name="log_mel")(audio)
    for i, channels in enumerate((16, 32, 64, 96)):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"norm{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if i < 3:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    # Keep the band axis (where the formants are); max over time (where the word is).
    x = layers.Reshape([-1, x.shape[2] * x.shape[3]], name="bands_to_features")(x)
    x = layers.GlobalMaxPooling1D(name="max_over_time")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(audio, logits, name="digit_classifier")


def fit_length(audio, length: int = LENGTH) -> np.ndarray:
    """[N, T] → [N, length]: zero-padded at the end or cut."""
    audio = np.asarray(audio, np.float32)
    if audio.shape[1] >= length:
        return audio[:, :length]
    return np.pad(audio, [(0, 0), (0, length - audio.shape[1])])


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


def augment(audio, rng, sample_rate: int = SAMPLE_RATE):
    """Random gain (±10 dB), time shift (±0.15 s, zero fill), white noise 30–60 dB below peak."""
    n, length = audio.shape
    out = np.zeros_like(audio)
    max_shift = int(0.15 * sample_rate)
    for i, (clip, shift) in enumerate(zip(audio, rng.integers(-max_shift, max_shift + 1, n))):
        if shift >= 0:
            out[i, shift:] = clip[:length - shift]
        else:
            out[i, :shift] = clip[-shift:]
    gain = 10.0 ** (rng.uniform(-10.0, 10.0, [n, 1]) / 20.0)
    peak = np.abs(out).max(axis=1, keepdims=True) + 1e-6
    noise_level = peak * 10.0 ** (-rng.uniform(30.0, 60.0, [n, 1]) / 20.0)
    noise = rng.standard_normal(audio.shape) * noise_level
    return ((out + noise) * gain).astype(np.float32)


class DigitClassifier:
    def __init__(self, model: keras.Model, config: dict):
        self.model, self.config = model, config
        self.sample_rate = config["sample_rate"]
        self.length = config["length"]

    @property
    def heldout_accuracy(self) -> float:
        return self.config["heldout_accuracy"]

    def logits(self, audio, batch_size: int = 64) -> np.ndarray:
        audio = fit_length(audio, self.length)
        return np.concatenate([self.model(audio[i:i + batch_size], training=False).numpy()
                               for i in range(0, len(audio), batch_size)])

    def predict(self, audio) -> np.ndarray:
        return self.logits(audio).argmax(axis=1)

    def accuracy(self, audio, labels) -> dict:
        """{"overall": acc, "per_class": {label: acc}, "count": n} on labelled clips."""
        labels = np.asarray(labels)
        correct = self.predict(audio) == labels
        return {"overall": float(correct.mean()), "count": int(len(labels)),
                "per_class": {int(c): float(correct[labels == c].mean())
                              for c in np.unique(labels)}}

    def accuracy_on_clips(self, clips, labels) -> dict:
        """accuracy() on [(audio [T], rate)], resampled to the classifier's rate."""
        from data.filters import resample
        audio = [resample(a, rate, self.sample_rate).numpy() if rate != self.sample_rate
                 else np.asarray(a, np.float32) for a, rate in clips]
        return self.accuracy(np.stack([fit_length(a[None], self.length)[0] for a in audio]),
                             labels)

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
            model = build_network(config["num_classes"], config["length"])
            model.load_weights(os.path.join(directory, WEIGHTS))
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{directory}: not a digit classifier made by "
                             f"evaluate.py --train-digit-classifier ({e.__class__.__name__})") \
                from None
        return cls(model, config)

    @classmethod
    def train(cls, data, out=None, epochs: int = 40, seed: int = 0, heldout: float = 0.2,
              batch_size: int = 32, log=print) -> "DigitClassifier":
        """Trains on `data`'s labelled clips, evaluates on the held-out split, saves to `out`."""
        start = time.perf_counter()
        keras.utils.set_random_seed(seed)
        audio, labels, paths = load_labelled(data)
        num_classes = int(labels.max()) + 1
        train, test = stratified_split(labels, heldout, seed)
        model = build_network(num_classes)
        steps = epochs * -(-len(train) // batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(3e-3, steps)
        model.compile(keras.optimizers.AdamW(schedule, weight_decay=1e-2),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(seed)
        for epoch in range(epochs):
            order = rng.permutation(train)
            history = model.fit(augment(audio[order], rng), labels[order], batch_size=batch_size,
                                epochs=1, shuffle=False, verbose=0)
            if log and (epoch + 1) % 10 == 0:
                log(f"epoch {epoch + 1}/{epochs}: loss {history.history['loss'][-1]:.3f}")
        config = {"sample_rate": SAMPLE_RATE, "length": LENGTH, "hop_length": HOP,
                  "n_mels": N_MELS, "num_classes": num_classes, "data": str(data),
                  "epochs": epochs, "seed": seed, "split": f"stratified random, {heldout:.0%} "
                  f"of each label held out", "heldout_files": [paths[i] for i in test],
                  "train_count": int(len(train))}
        classifier = cls(model, config)
        result = classifier.accuracy(audio[test], labels[test])
        config.update(heldout_accuracy=result["overall"], heldout_count=result["count"],
                      heldout_per_class=result["per_class"],
                      train_seconds=round(time.perf_counter() - start, 1))
        if out is not None:
            classifier.save(out)
        return classifier
