"""Sets of clips for FAD: mono conversion, levels, matched-RMS noise, noise at an SNR, embedding.

    clips = [(audio [T], rate), …]
    noise = white_noise(clips, levels, seed)            # same lengths, RMS cycling through levels
    noisy = add_noise(clips, snr_db, seed)              # clip + white noise at SNR (vs clip RMS)
    embeddings, logits = embed_clips(clips, embedder, segment_seconds)
"""
from __future__ import annotations

import numpy as np

NOISE_SEED = 1234


def mono(audio):
    return np.asarray(audio, np.float32).reshape(len(audio), -1).mean(axis=1)


def rms(audio) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def white_noise(clips, levels, seed=NOISE_SEED):
    """White noise shaped like `clips` (same lengths and rates), RMS cycling through `levels`."""
    rng = np.random.default_rng(seed)
    noise = []
    for i, (audio, rate) in enumerate(clips):
        x = rng.standard_normal(len(audio))
        noise.append(((x * levels[i % len(levels)] / rms(x)).astype(np.float32), rate))
    return noise


def add_noise(clips, snr_db: float, seed=NOISE_SEED):
    """Each clip plus white noise at `snr_db` below the clip's RMS:
    SNR = 20 log₁₀(rms(clip) / rms(noise))."""
    noise = white_noise(clips, [rms(a) * 10 ** (-snr_db / 20) for a, _ in clips], seed)
    return [((a + n).astype(np.float32), rate) for (a, rate), (n, _) in zip(clips, noise)]


def embed_clips(clips, embedder, segment):
    """[(audio [T], rate)] → (embeddings [W, d], logits [W, C] or None)."""
    from evaluation.birdnet import clip_windows
    if not clips:
        raise ValueError("no clips to embed")
    windows = [clip_windows(audio, rate, embedder, segment) for audio, rate in clips]
    return embedder(np.concatenate(windows))
