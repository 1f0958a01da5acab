"""The digit classifier's network: log-mel front end, SpecAugment, a small CNN (issue #18).

audio [B, 16000] → log-mel (data.features.log_mel: 40 bands, 40 ms window, hop 10 ms, floor
−100 dB) → zero mean (per clip, or per band with band_norm), unit variance per clip (gain-free)
→ in training only: a frequency warp (VTLP) and SpecAugment (Park et al. 2019: 2 frequency
masks ≤ 8 bands, 2 time masks ≤ 12 frames) → four 3×3 conv → batch-norm → ReLU blocks
(16, 32, 48, 64; 2×2 max-pool after the first three) → [frames/8, 5 bands × 64] → max over
time → dense 128 + ReLU ("embedding", the penultimate features DigitClassifier.embed returns)
→ dropout → dense 10.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

SAMPLE_RATE = 16000
LENGTH = 16000
HOP = 160
N_MELS = 40
CHANNELS = (16, 32, 48, 64)
EMBEDDING = 128
ARCHITECTURE = "logmel-cnn-v2"


class LogMelFeatures(layers.Layer):
    """audio [B, T] → normalised log-mel [B, T/hop, n_mels, 1]: zero mean per clip (per band
    with band_norm: cepstral mean normalisation, which removes a fixed channel colouring), unit
    variance per clip."""

    def __init__(self, sample_rate=SAMPLE_RATE, hop_length=HOP, n_mels=N_MELS, band_norm=False,
                 cepstra=0, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate, self.hop_length, self.n_mels = sample_rate, hop_length, n_mels
        self.band_norm = band_norm
        # Liftering: keep the first `cepstra` DCT-II coefficients of each frame (the spectral
        # envelope, as MFCCs do) and go back to bands: the harmonics of the source, which
        # differ most between synthesisers and talkers, are smoothed away.
        self.lifter = None
        if cepstra:
            k, n = np.meshgrid(np.arange(cepstra), np.arange(n_mels), indexing="ij")
            dct = np.sqrt(2 / n_mels) * np.cos(np.pi * k * (n + 0.5) / n_mels)
            dct[0] /= np.sqrt(2)
            self.lifter = tf.constant((dct.T @ dct).astype(np.float32))      # [n_mels, n_mels]

    def call(self, audio):
        from data.features import log_mel
        mel = log_mel(audio, self.sample_rate, self.hop_length, self.n_mels)
        if self.lifter is not None:
            mel = tf.tensordot(mel, self.lifter, 1)
        mel = mel - tf.reduce_mean(mel, axis=[1] if self.band_norm else [1, 2], keepdims=True)
        variance = tf.reduce_mean(tf.square(mel), axis=[1, 2], keepdims=True)
        return (mel * tf.math.rsqrt(variance + 1e-6))[..., None]


class FrequencyWarp(layers.Layer):
    """Vocal-tract-length perturbation (Jaitly & Hinton 2013) on the mel axis, training only:
    band b of the output reads band b·α of the input (linear interpolation), α ~ U(1/max, max)
    per example, so formants move without the pitch or the timing moving."""

    def __init__(self, max_factor=1.2, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.max_factor = max_factor
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training:
            return x
        bands = x.shape[2]
        log_max = float(np.log(self.max_factor))
        alpha = ops.exp(keras.random.uniform([ops.shape(x)[0], 1], -log_max, log_max,
                                             seed=self.seed_generator))
        position = ops.clip(ops.arange(bands, dtype="float32")[None] * alpha, 0, bands - 1)
        low = ops.cast(ops.floor(position), "int32")
        high = ops.minimum(low + 1, bands - 1)
        weight = (position - ops.cast(low, "float32"))[:, None, :, None]
        by_band = tf.transpose(x, [0, 2, 1, 3])                         # [B, F, T, 1]
        def pick(i):
            return tf.transpose(tf.gather(by_band, i, axis=1, batch_dims=1), [0, 2, 1, 3])
        return pick(low) * (1 - weight) + pick(high) * weight


class SpecAugment(layers.Layer):
    """Zeroes `masks` random bands of ≤ max_bands mel bins and `masks` random spans of
    ≤ max_frames frames of each example, in training only (SpecAugment's F and T masks;
    0 is the mean after instance norm)."""

    def __init__(self, masks=2, max_bands=8, max_frames=12, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.masks, self.max_bands, self.max_frames = masks, max_bands, max_frames
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _mask(self, batch, size, width):
        """[B, size] with 1 inside `masks` random spans of width 0..width-1, else 0."""
        index = ops.arange(size, dtype="float32")[None]
        inside = ops.zeros([batch, size])
        for _ in range(self.masks):
            w = ops.floor(keras.random.uniform([batch, 1], 0, width, seed=self.seed_generator))
            start = ops.floor(keras.random.uniform([batch, 1], 0, 1, seed=self.seed_generator)
                              * (size - w))
            inside = ops.maximum(inside, ops.cast((index >= start) & (index < start + w),
                                                  "float32"))
        return inside

    def call(self, x, training=None):
        if not training:
            return x
        batch, frames, bands = ops.shape(x)[0], x.shape[1], x.shape[2]
        keep_t = 1 - self._mask(batch, frames, self.max_frames)[:, :, None, None]
        keep_f = 1 - self._mask(batch, bands, self.max_bands)[:, None, :, None]
        return x * keep_t * keep_f


def build_network(num_classes: int = 10, length: int = LENGTH, seed: int | None = None,
                  band_norm: bool = False, warp: float = 1.0, cepstra: int = 20) -> keras.Model:
    audio = keras.Input([length], name="audio")
    x = LogMelFeatures(band_norm=band_norm, cepstra=cepstra, name="log_mel")(audio)
    if warp > 1:
        x = FrequencyWarp(warp, seed=seed, name="frequency_warp")(x)
    x = SpecAugment(seed=seed, name="spec_augment")(x)
    for i, channels in enumerate(CHANNELS):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"norm{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if i < len(CHANNELS) - 1:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    # Keep the band axis (where the formants are); max over time (where the word is).
    x = layers.Reshape([-1, x.shape[2] * x.shape[3]], name="bands_to_features")(x)
    x = layers.GlobalMaxPooling1D(name="max_over_time")(x)
    x = layers.Dropout(0.3, name="dropout0")(x)
    x = layers.Dense(EMBEDDING, activation="relu", name="embedding")(x)
    x = layers.Dropout(0.3, name="dropout1")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(audio, logits, name="digit_classifier")
