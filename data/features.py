"""Log-mel spectrogram in TF ops: the conditioning input of a DiffWave vocoder.

    mel = log_mel(audio [B, T], sample_rate=16000, hop_length=256, n_mels=80)   # [B, T/hop, n_mels]

Frame k is centred on sample k·hop (reflect padding of n_fft/2), so T/hop frames line up with
the T samples the vocoder upsamples them to. Values follow the DiffWave reference's scaling (lmnt
preprocess.py: torchaudio MelSpectrogram, power 1, normalized=True, i.e. |STFT| ÷ √Σw²):
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


def read_log_mel(path, sample_rate: int, hop_length: int, n_mels: int,
                 data_params=None) -> np.ndarray:
    """[frames, n_mels] from a .npy log-mel, or computed from an audio file (ValueError),
    first scaled as `data_params` (the run's DataParams) scaled its training audio."""
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
    if data_params is not None:
        from data.pipeline import normalize
        audio = normalize(audio, data_params)
    return log_mel(audio[None], sample_rate, hop_length, n_mels).numpy()[0]


def mel_matrix(n_fft: int, sample_rate: int, n_mels: int):
    """The vocoder's filterbank [1 + n_fft/2, n_mels] (HTK mel, 20 Hz … sr/2, unnormalised
    triangles, as torchaudio's MelSpectrogram)."""
    return tf.signal.linear_to_mel_weight_matrix(n_mels, n_fft // 2 + 1, sample_rate, F_MIN,
                                                 sample_rate / 2.0)


def window_norm(n_fft: int) -> float:
    """√Σw² of the periodic Hann window (= √(3·n_fft/8)): torchaudio's normalized=True, which
    the DiffWave reference divides |STFT| by: the scale its vocoders were trained on."""
    return float(np.sqrt(3.0 * n_fft / 8.0))


def magnitude_to_log_mel(magnitude, sample_rate: int, n_mels: int):
    """Unnormalised |STFT| [..., frames, 1 + n_fft/2] → DiffWave's log-mel in [0, 1]:
    clip((20·log10(max(M·|X|/√Σw², 1e-5)) − 20 + 100)/100, 0, 1)."""
    n_fft = 2 * (magnitude.shape[-1] - 1)
    mel = tf.tensordot(magnitude / window_norm(n_fft), mel_matrix(n_fft, sample_rate, n_mels), 1)
    db = 20.0 * tf.math.log(tf.maximum(mel, 1e-5)) / tf.math.log(10.0) - 20.0
    return tf.clip_by_value((db + 100.0) / 100.0, 0.0, 1.0)


def log_mel_to_mel(log_mel):
    """The inverse of magnitude_to_log_mel's dB scaling: the normalised mel amplitude
    M·|X|/√Σw² (floored values stay at the floor), a float32 tensor (PriorGrad's energy)."""
    return tf.pow(10.0, (tf.convert_to_tensor(log_mel, tf.float32) * 100.0 - 80.0) / 20.0)


def log_mel_to_mel_magnitude(log_mel, n_fft: int):
    """M·|X| with |X| unnormalised (numpy), for Griffin-Lim baselines."""
    return np.asarray(log_mel_to_mel(log_mel)) * np.float32(window_norm(n_fft))


def log_mel(audio, sample_rate: int, hop_length: int = 256, n_mels: int = 80,
            n_fft: int | None = None):
    """audio [..., T] float → [..., T // hop_length, n_mels] in [0, 1]."""
    n_fft = n_fft or 4 * hop_length
    audio = tf.convert_to_tensor(audio, tf.float32)
    frames = tf.shape(audio)[-1] // hop_length
    half = n_fft // 2
    padded = tf.pad(audio, [[0, 0]] * (audio.shape.rank - 1) + [[half, half]], mode="REFLECT")
    spec = tf.abs(tf.signal.stft(padded, n_fft, hop_length, n_fft, pad_end=False))
    return magnitude_to_log_mel(spec[..., :frames, :], sample_rate, n_mels)   # centred frames
