"""Mel-UNet images → the log-mel features a mel-conditioned DiffWave vocoder was trained on.

The two representations differ (data/mel.py vs data/features.py):
  image:   Slaney mel (librosa) of the POWER |X|², n_fft, centred zero-padded frames,
           dB relative to the image's maximum, clipped to top_db, pixel = (dB + top_db)·255/top_db
  log_mel: HTK-style mel (tf.signal, 20 Hz … sr/2) of the MAGNITUDE |X|, n_fft = 4·hop,
           centred reflect-padded frames,
           value = clip((20·log10(max(m, 1e-5)) − 20 + 100)/100, 0, 1)
Mapping, frame by frame (frame k of both is centred on sample k·hop):
  1. pixel → dB = pixel·top_db/255 − top_db → relative Slaney mel power S/S_max = 10^(dB/10);
  2. linear magnitude |X|/√S_max by non-negative least squares through the Slaney filterbank
     (Mel.mel_to_magnitude, the same inversion Griffin-Lim starts from);
  3. the absolute level, lost by ref = max, comes back as gain_db = 10·log10(S_max): the
     peak Slaney mel power of the audio the vocoder was trained on (measure it with
     `peak_mel_power_db` on that data; the images cannot carry it);
  4. DiffWave's filterbank on |X| and its dB scaling.
Requires the same sample rate and hop, and the image's n_fft = 4·hop (the vocoder's n_fft), so
both use the same STFT bins; n_mels may differ.
"""
from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from data.features import log_mel_to_mel_magnitude, magnitude_to_log_mel, mel_matrix


def check_compatible(mel, sample_rate: int, hop_length: int) -> None:
    """A one-line ValueError naming the mismatching parameter."""
    if mel.sr != sample_rate:
        raise ValueError(f"sample_rate: the mel images are {mel.sr} Hz, the vocoder {sample_rate}")
    if mel.hop_length != hop_length:
        raise ValueError(f"hop_length: the mel images use {mel.hop_length}, the vocoder "
                         f"{hop_length}")
    if mel.n_fft != 4 * hop_length:
        raise ValueError(f"n_fft: the mel images use {mel.n_fft}, the vocoder 4·hop = "
                         f"{4 * hop_length}")


def peak_mel_power_db(mel, audio) -> float:
    """10·log10 of the maximum Slaney mel power of `audio` [..., T] (step 3's gain_db)."""
    power = mel.mel_power(np.asarray(audio, np.float32))
    return float(10.0 * np.log10(max(float(tf.reduce_max(power)), 1e-10)))


def image_to_log_mel(images, mel, n_mels: int, gain_db: float):
    """uint8 images [(B,) y_res, W] → DiffWave conditioning [(B,) W, n_mels] in [0, 1]."""
    images = np.asarray(images)
    pixels = tf.constant(images.reshape((-1,) + images.shape[-2:]), tf.float32)
    db = pixels * (mel.top_db / 255.0) - mel.top_db + gain_db                     # step 1 + 3
    magnitude = mel.mel_to_magnitude(tf.pow(10.0, db / 10.0))                     # step 2
    out = magnitude_to_log_mel(magnitude, mel.sr, n_mels).numpy()                  # step 4
    return out.reshape(images.shape[:-2] + out.shape[-2:])


@functools.lru_cache(maxsize=8)
def _filterbank_inverse(sample_rate: int, hop_length: int, n_mels: int):
    """The vocoder filterbank's FilterbankInverse, made once per setting (its pseudo-inverse)."""
    from data.mel import FilterbankInverse
    return FilterbankInverse(mel_matrix(4 * hop_length, sample_rate, n_mels).numpy().T)


def log_mel_to_audio(log_mel, sample_rate: int, hop_length: int, n_iter: int = 32,
                     seed: int = 0) -> np.ndarray:
    """Griffin-Lim from a DiffWave log-mel [(B,) frames, n_mels] (data/features.log_mel) →
    audio [(B,) frames·hop − 1]: undo the dB scaling, invert the magnitude filterbank by
    non-negative least squares (FilterbankInverse), then Mel's fast Griffin-Lim (n_fft = 4·hop).
    The baseline a neural vocoder must beat."""
    log_mel = np.asarray(log_mel, np.float32)
    frames, n_mels = log_mel.shape[-2:]
    from data.mel import Mel
    target = log_mel_to_mel_magnitude(log_mel.reshape((-1, frames, n_mels)), 4 * hop_length)
    magnitude = _filterbank_inverse(sample_rate, hop_length, n_mels)(target)   # |X|
    # A Mel per call: its Griffin-Lim traces with the clip's static length.
    mel = Mel(x_res=frames, y_res=n_mels, sample_rate=sample_rate, n_fft=4 * hop_length,
              hop_length=hop_length)
    audio = mel.griffin_lim(magnitude, n_iter, seed)
    return audio.reshape(log_mel.shape[:-2] + audio.shape[-1:])
