"""Log-mel spectrogram in TF ops: the conditioning input of a DiffWave vocoder.

    mel = log_mel(audio [B, T], sample_rate=16000, hop_length=256, n_mels=80)   # [B, T/hop, n_mels]

Frame k is centred on sample k·hop (reflect padding of n_fft/2), so T/hop frames line up with
the T samples the vocoder upsamples them to. Values follow the DiffWave reference's scaling:
clip((20·log10(max(mel, 1e-5)) − 20 + 100) / 100, 0, 1).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

F_MIN = 20.0


def read_mono(path, rate: int) -> np.ndarray:
    """An audio file → mono float32 [T] at `rate` (the project's decoder and resampler)."""
    from data.audio_io import read
    from data.filters import resample
    audio, file_rate = read(path)
    return resample(audio.mean(axis=1), file_rate, rate).numpy()


def read_log_mel(path, sample_rate: int, hop_length: int, n_mels: int) -> np.ndarray:
    """[frames, n_mels] from a .npy log-mel, or computed from an audio file (ValueError)."""
    if str(path).endswith(".npy"):
        try:
            mel = np.load(path).astype(np.float32)
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot read ({e})") from None
        if mel.ndim != 2 or mel.shape[1] != n_mels:
            raise ValueError(f"{path}: expected a [frames, {n_mels}] log-mel, got "
                             f"{list(mel.shape)}")
        return mel
    audio = read_mono(path, sample_rate)
    return log_mel(audio[None], sample_rate, hop_length, n_mels).numpy()[0]


def log_mel(audio, sample_rate: int, hop_length: int = 256, n_mels: int = 80,
            n_fft: int | None = None):
    """audio [..., T] float → [..., T // hop_length, n_mels] in [0, 1]."""
    n_fft = n_fft or 4 * hop_length
    audio = tf.convert_to_tensor(audio, tf.float32)
    frames = tf.shape(audio)[-1] // hop_length
    half = n_fft // 2
    padded = tf.pad(audio, [[0, 0]] * (audio.shape.rank - 1) + [[half, half]], mode="REFLECT")
    spec = tf.abs(tf.signal.stft(padded, n_fft, hop_length, n_fft, pad_end=False))
    spec = spec[..., :frames, :]                                              # centred frames
    matrix = tf.signal.linear_to_mel_weight_matrix(n_mels, n_fft // 2 + 1, sample_rate,
                                                   F_MIN, sample_rate / 2.0)
    mel = tf.tensordot(spec, matrix, 1)
    db = 20.0 * tf.math.log(tf.maximum(mel, 1e-5)) / tf.math.log(10.0) - 20.0
    return tf.clip_by_value((db + 100.0) / 100.0, 0.0, 1.0)
