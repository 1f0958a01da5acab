"""Log-mel spectrogram in TF ops: the conditioning input of a DiffWave vocoder.

    mel = log_mel(audio [B, T], sample_rate=16000, hop_length=256, n_mels=80)   # [B, T/hop, n_mels]

Frame k is centred on sample k·hop (reflect padding of n_fft/2), so T/hop frames line up with
the T samples the vocoder upsamples them to. Values follow the DiffWave reference's scaling:
clip((20·log10(max(mel, 1e-5)) − 20 + 100) / 100, 0, 1).
"""
from __future__ import annotations

import tensorflow as tf

F_MIN = 20.0


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
