"""A small beat tracker (no librosa) and beat-aligned loops, as teticio's "loops" use.

    bpm, beats = track_beats(audio, sample_rate)     # tempo and beat times in seconds
    loop = make_loop(audio, sample_rate, repeats=4)  # whole bars from the first beat, tiled

1. Onset strength (spectral flux, as librosa.onset.onset_strength): log-compressed STFT
   magnitude L[t, f] = log(1 + C·|X|), envelope o[t] = mean_f max(0, L[t, f] − L[t−1, f]).
2. Tempo: autocorrelation r[ℓ] of o − mean(o) over lags ℓ in the allowed BPM range, weighted by
   a log-normal tempo prior around 120 BPM (σ = 1 octave, librosa's start_bpm/std_bpm), plus
   half of r[2ℓ] (a true beat period also correlates at twice its lag); the peak is refined by
   parabolic interpolation to a fractional lag.
3. Phase: the offset φ in [0, period) maximising Σ_k o[φ + k·period]; beats at φ + k·period.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

COMPRESSION = 100.0        # C of the log compression
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 1.0


def onset_strength(audio, sample_rate: int, hop_length: int = 256, n_fft: int = 1024):
    """Mono audio [T] → (onset envelope [frames] ≥ 0, frames per second)."""
    audio = np.asarray(audio, np.float32).reshape(-1)
    if audio.size < n_fft:
        audio = np.pad(audio, (0, n_fft - audio.size))
    spec = tf.abs(tf.signal.stft(tf.constant(audio), n_fft, hop_length, n_fft)).numpy()
    log_spec = np.log1p(COMPRESSION * spec)
    flux = np.maximum(0.0, np.diff(log_spec, axis=0)).mean(axis=1)
    return np.concatenate([[0.0], flux]).astype(np.float64), sample_rate / hop_length


def estimate_tempo(envelope, frame_rate: float, min_bpm: float = 50.0,
                   max_bpm: float = 240.0) -> float:
    """BPM from the autocorrelation of the onset envelope (see the module docstring)."""
    o = np.asarray(envelope, np.float64) - np.mean(envelope)
    n = len(o)
    if n < 4 or not np.any(o):
        raise ValueError("estimate_tempo: the clip is too short or has no onsets")
    r = np.correlate(o, o, mode="full")[n - 1:] / (np.arange(n, 0, -1))     # unbiased r[ℓ]
    lo = max(1, int(math.floor(60.0 * frame_rate / max_bpm)))
    hi = min(n // 2, int(math.ceil(60.0 * frame_rate / min_bpm)))
    if hi <= lo + 1:
        raise ValueError(f"estimate_tempo: {n / frame_rate:.2f} s is too short for tempo "
                         f"{min_bpm:g}..{max_bpm:g} BPM")
    lags = np.arange(lo, hi + 1)
    bpm = 60.0 * frame_rate / lags
    prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    double = np.where(2 * lags < n, r[np.minimum(2 * lags, n - 1)], 0.0)
    score = prior * (r[lags] + 0.5 * double)
    i = int(np.argmax(score))
    lag = float(lags[i])
    if 0 < i < len(lags) - 1:                     # parabolic refinement of the peak
        a, b, c = score[i - 1], score[i], score[i + 1]
        denom = a - 2 * b + c
        if denom < 0:
            lag += 0.5 * (a - c) / denom
    return 60.0 * frame_rate / lag


def beat_phase(envelope, period: float) -> float:
    """Offset φ (frames) in [0, period) maximising Σ_k o[φ + k·period] (linear interpolation)."""
    o = np.asarray(envelope, np.float64)
    best, best_score = 0.0, -1.0
    for phi in np.arange(0.0, period, 0.25):
        positions = np.arange(phi, len(o) - 1, period)
        score = np.interp(positions, np.arange(len(o)), o).sum()
        if score > best_score:
            best, best_score = phi, score
    return best


def track_beats(audio, sample_rate: int, hop_length: int = 256, n_fft: int = 1024):
    """(tempo in BPM, beat times in seconds) of mono audio; frame k is centred on sample
    k·hop + n_fft/2 (uncentred STFT frames)."""
    envelope, frame_rate = onset_strength(audio, sample_rate, hop_length, n_fft)
    bpm = estimate_tempo(envelope, frame_rate)
    period = 60.0 * frame_rate / bpm
    phi = beat_phase(envelope, period)
    beats = np.arange(phi, len(envelope), period) / frame_rate + n_fft / (2.0 * sample_rate)
    return bpm, beats[beats * sample_rate < len(np.asarray(audio).reshape(-1))]


def loop_bounds(audio, sample_rate: int, beats_per_bar: int = 4):
    """(start, end, bpm, beats): samples from the first tracked beat spanning the most whole
    bars that fit (whole beats if not even one bar fits)."""
    audio = np.asarray(audio, np.float32).reshape(-1)
    bpm, times = track_beats(audio, sample_rate)
    beat = 60.0 * sample_rate / bpm                          # samples per beat
    start = int(round(times[0] * sample_rate)) if len(times) else 0
    fit = int((len(audio) - start) // beat)
    beats = fit // beats_per_bar * beats_per_bar or fit
    if beats < 1:
        raise ValueError(f"make_loop: {len(audio) / sample_rate:.2f} s holds no whole beat at "
                         f"{bpm:.1f} BPM")
    return start, start + int(round(beats * beat)), bpm, beats


def make_loop(audio, sample_rate: int, repeats: int, beats_per_bar: int = 4) -> np.ndarray:
    """Whole bars from the first beat, tiled `repeats` times."""
    if repeats < 1:
        raise ValueError(f"make_loop: repeats must be >= 1, got {repeats}")
    start, end, _, _ = loop_bounds(audio, sample_rate, beats_per_bar)
    return np.tile(np.asarray(audio, np.float32).reshape(-1)[start:end], repeats)
