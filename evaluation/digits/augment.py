"""Augmentations that make a classifier trained on synthesisers hear real recordings (issue #18).

All take audio [N, T] float32 at 16 kHz and a numpy Generator (seeded), return a new array.
`augment` chains them with the probabilities of AUGMENT_PROBS, the order a real recording
meets them: the talker (speed/pitch), the room (reverb), the noise around, the microphone /
line (EQ, telephone band), the level (gain, clipping) and the codec (μ-law, GSM, MP3, Vorbis).
"""
from __future__ import annotations

import io

import numpy as np
from scipy.signal import fftconvolve

SAMPLE_RATE = 16000
AUGMENT_PROBS = {"revoice": 0.0, "speed": 0.8, "shift": 1.0, "reverb": 0.4, "noise": 0.8, "eq": 0.5,
                 "telephone": 0.2, "mu_law": 0.1, "codec": 0.15}
# For small labelled sets (evaluate.py --train-digit-classifier: 260 clips × 40 epochs is too
# few steps to learn through the full chain): talker and level only.
AUGMENT_LIGHT = {"revoice": 0.0, "speed": 0.5, "reverb": 0.0, "noise": 0.0, "eq": 0.0, "telephone": 0.0,
                 "mu_law": 0.0, "codec": 0.0}
CODECS = (("WAV", "GSM610", 8000), ("MP3", "MPEG_LAYER_III", 16000), ("OGG", "VORBIS", 16000))


def _rows(audio) -> np.ndarray:
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 2:
        raise ValueError(f"expected audio [N, T], got shape {list(audio.shape)}")
    return audio


def power(audio) -> np.ndarray:
    """Mean square per clip, [N, 1]."""
    return np.mean(np.square(audio, dtype=np.float64), axis=1, keepdims=True)


def change_speed(audio, factors) -> np.ndarray:
    """Tape-speed change (tempo and pitch together, like a resampler): factor > 1 is faster and
    higher. Linear interpolation, centred so the word stays in place; zero fill."""
    audio = _rows(audio)
    n, length = audio.shape
    out = np.zeros_like(audio)
    centre = (length - 1) / 2
    for i, factor in enumerate(np.broadcast_to(np.asarray(factors, float), [n])):
        positions = centre + (np.arange(length) - centre) * factor
        out[i] = np.interp(positions, np.arange(length), audio[i], left=0.0, right=0.0)
    return out


def shift(audio, shifts) -> np.ndarray:
    """Delay each clip by shifts[i] samples (negative: advance), zero fill."""
    audio = _rows(audio)
    out = np.zeros_like(audio)
    length = audio.shape[1]
    for i, s in enumerate(np.broadcast_to(np.asarray(shifts, int), [len(audio)])):
        s = int(np.clip(s, -length, length))
        if s >= 0:
            out[i, s:] = audio[i, :length - s]
        else:
            out[i, :s] = audio[i, -s:]
    return out


def _levinson(r, order):
    """LPC polynomial a (a[0] = 1) and prediction-error power from autocorrelations r[0..order]
    (the normal equations R a = −r, Toeplitz)."""
    from scipy.linalg import solve_toeplitz
    a = solve_toeplitz(r[:order], -r[1:order + 1])
    return np.concatenate([[1.0], a]), max(r[0] + np.dot(a, r[1:order + 1]), 1e-12)


def revoice(audio, rng, order: int = 18, frame: int = 400, hop: int = 160,
            sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Source-filter resynthesis: the clip's vocal-tract envelope with a new source, so a few
    recorded speakers also sound like a formant synthesiser (espeak-ng). Per 10 ms hop, the
    LPC envelope 1/A(z) of a 25 ms Hann frame (pre-emphasis 0.97, order 18), its formants moved
    by one factor α ∈ [0.88, 1.12] per clip (pole angles × α), driven by a pulse train on a
    random F0 glide (85–260 Hz) where the frame is voiced (normalised autocorrelation > 0.4
    at a 2.5–12.5 ms lag), white noise where it is not; then de-emphasis, the input's RMS."""
    from scipy.signal import lfilter
    audio = _rows(audio)
    n, length = audio.shape
    out = np.zeros_like(audio)
    window = np.hanning(frame)
    t = np.arange(length) / sample_rate
    for i in range(n):
        x = lfilter([1, -0.97], [1], audio[i].astype(np.float64))
        alpha = rng.uniform(0.88, 1.12)
        f0 = rng.uniform(85, 260) * (1 + rng.uniform(-0.2, 0.2) * (t - t.mean()) / np.ptp(t))
        phase = np.cumsum(f0) / sample_rate
        period = sample_rate / f0
        pulses = np.diff(np.floor(phase), prepend=0.0) * np.sqrt(period)   # unit power
        noise = rng.standard_normal(length)
        y, state = np.zeros(length), np.zeros(order)
        padded = np.pad(x, (frame // 2, frame // 2))
        for start in range(0, length, hop):
            seg = padded[start:start + frame] * window
            r = np.correlate(seg, seg, "full")[frame - 1:]
            if r[0] < 1e-10:
                continue
            a, err = _levinson(r + np.r_[1e-9 * r[0], np.zeros(frame - 1)], order)
            roots = np.roots(a)
            angles = np.clip(np.abs(np.angle(roots)) * alpha, 0.0, np.pi)
            roots = np.minimum(np.abs(roots), 0.995) * np.exp(1j * np.sign(np.angle(roots))
                                                               * angles)
            a = np.real(np.poly(roots))
            lag = r[40:200] / r[0]
            source = pulses if lag.max() > 0.4 else noise
            end = min(start + hop, length)
            gain = np.sqrt(err / np.sum(window ** 2))
            y[start:end], state = lfilter([gain], a, source[start:end], zi=state)
        y = lfilter([1], [1, -0.97], y)
        out[i] = y * np.sqrt(np.mean(audio[i] ** 2) / (np.mean(y ** 2) + 1e-12))
    return out.astype(np.float32)


def room_impulse(rng, rt60: float, length: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Synthetic room response: a direct path, then Gaussian noise under an exponential decay
    that falls 60 dB in rt60 seconds (Sabine's RT60), scaled so late energy is ~−3..−12 dB."""
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)   # ln(1000) = 6.9078
    tail[:int(0.002 * sample_rate)] = 0.0                            # first reflection ≥ 2 ms
    tail *= 10 ** (-rng.uniform(3, 12) / 20) / np.sqrt(np.sum(tail ** 2) + 1e-12)
    tail[0] = 1.0
    return tail


def reverb(audio, rng, rt60=(0.15, 0.9), sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Convolve each clip with its own room_impulse (random RT60), cut to the input length,
    rescaled to the input's RMS."""
    audio = _rows(audio)
    n, length = audio.shape
    ir_length = int(max(rt60) * sample_rate)
    irs = np.stack([room_impulse(rng, rng.uniform(*rt60), ir_length, sample_rate)
                    for _ in range(n)])
    wet = fftconvolve(audio, irs, axes=1)[:, :length]
    return (wet * np.sqrt(power(audio) / (power(wet) + 1e-12))).astype(np.float32)


def pink_noise(rng, shape, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """1/f noise (equal energy per octave), flat below 20 Hz, no DC."""
    spec = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    freqs = np.fft.rfftfreq(shape[-1], 1 / sample_rate)
    spec *= 1 / np.sqrt(np.maximum(freqs, 20.0) / 20.0)
    spec[..., 0] = 0
    return np.fft.irfft(spec, shape[-1], axis=-1)


def babble(audio, rng, talkers: int = 4) -> np.ndarray:
    """Babble-like noise: the sum of `talkers` other clips of the batch, reversed (no word
    survives) and circularly shifted."""
    n, length = audio.shape
    out = np.zeros_like(audio)
    for _ in range(talkers):
        others = audio[rng.permutation(n), ::-1]
        out += np.stack([np.roll(c, s) for c, s in zip(others, rng.integers(0, length, n))])
    return out


def add_noise(audio, noise, snr_db) -> np.ndarray:
    """audio + noise scaled so that 10·log10(P_audio / P_noise) = snr_db per clip (powers
    over the whole clip)."""
    audio, noise = _rows(audio), _rows(noise)
    snr = np.broadcast_to(np.asarray(snr_db, float), [len(audio)])[:, None]
    scale = np.sqrt(power(audio) / (power(noise) + 1e-20) / 10 ** (snr / 10))
    return (audio + noise * scale).astype(np.float32)


def filter_fft(audio, gains_fn, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Zero-phase filtering in the frequency domain: gains_fn(freqs) → gains [N or 1, F]."""
    audio = _rows(audio)
    spec = np.fft.rfft(audio, axis=1)
    freqs = np.fft.rfftfreq(audio.shape[1], 1 / sample_rate)
    return np.fft.irfft(spec * gains_fn(freqs), audio.shape[1], axis=1).astype(np.float32)


def telephone(audio, low: float = 300.0, high: float = 3400.0, taper: float = 60.0,
              sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The telephone band (ITU-T G.712, 300–3400 Hz): nothing outside, raised-cosine edges of
    `taper` Hz inside."""
    def gains(f):
        rise = np.clip((f - low) / taper, 0, 1)
        fall = np.clip((high - f) / taper, 0, 1)
        return (0.5 - 0.5 * np.cos(np.pi * np.minimum(rise, fall)))[None]
    return filter_fft(audio, gains, sample_rate)


def random_eq(audio, rng, max_db: float = 8.0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A microphone/room colouring: a smooth random gain curve, ±max_db at 6 points evenly
    spaced in log frequency (100 Hz–8 kHz), interpolated."""
    points = np.log(np.geomspace(100, sample_rate / 2, 6))
    db = rng.uniform(-max_db, max_db, [len(audio), 6])

    def gains(f):
        logf = np.log(np.maximum(f, 100.0))
        return 10 ** (np.stack([np.interp(logf, points, d) for d in db]) / 20)
    return filter_fft(audio, gains, sample_rate)


def mu_law(audio, bits: int = 8) -> np.ndarray:
    """G.711-style μ-law round trip (μ = 255): compress, quantise to 2**bits levels, expand.
    Input is clipped to [-1, 1]."""
    mu = 255.0
    x = np.clip(_rows(audio), -1, 1)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    levels = 2 ** bits - 1
    y = np.round((y + 1) / 2 * levels) / levels * 2 - 1
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def codec(clip, kind: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Encode and decode one clip with CODECS[kind] through libsndfile (GSM 6.10 runs at 8 kHz:
    the clip is resampled there and back)."""
    import soundfile as sf
    from scipy.signal import resample_poly
    fmt, subtype, rate = CODECS[kind]
    x = np.clip(clip, -1, 1)
    if rate != sample_rate:
        x = resample_poly(x, rate, sample_rate)
    buffer = io.BytesIO()
    sf.write(buffer, x, rate, format=fmt, subtype=subtype)
    buffer.seek(0)
    y, _ = sf.read(buffer, dtype="float32")
    if rate != sample_rate:
        y = resample_poly(y, sample_rate, rate)
    return np.pad(y, [0, max(0, len(clip) - len(y))])[:len(clip)].astype(np.float32)


def augment(audio, rng, probs: dict | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The full chain, each step on a random subset of the clips (probs: AUGMENT_PROBS)."""
    probs = {**AUGMENT_PROBS, **(probs or {})}
    x = _rows(audio).copy()
    n = len(x)

    def pick(name):
        return np.flatnonzero(rng.random(n) < probs[name])

    if len(i := pick("revoice")):
        x[i] = revoice(x[i], rng, sample_rate=sample_rate)
    if len(i := pick("speed")):
        x[i] = change_speed(x[i], rng.uniform(0.8, 1.2, len(i)))
    if len(i := pick("shift")):
        x[i] = shift(x[i], rng.integers(-int(0.1 * sample_rate), int(0.1 * sample_rate), len(i)))
    if len(i := pick("reverb")):
        x[i] = reverb(x[i], rng, sample_rate=sample_rate)
    if len(i := pick("noise")):
        kinds = rng.integers(0, 3, len(i))
        noise = np.where((kinds == 0)[:, None], rng.standard_normal(x[i].shape),
                         np.where((kinds == 1)[:, None], pink_noise(rng, x[i].shape),
                                  babble(x, rng)[i]))
        x[i] = add_noise(x[i], noise, rng.uniform(0, 30, len(i)))
    if len(i := pick("eq")):
        x[i] = random_eq(x[i], rng, sample_rate=sample_rate)
    if len(i := pick("telephone")):
        x[i] = telephone(x[i], sample_rate=sample_rate)
    # Level: peak at −30..0 dBFS, and 10 % of the clips driven 0–6 dB into hard clipping.
    peak = np.abs(x).max(axis=1, keepdims=True) + 1e-9
    drive = np.where(rng.random([n, 1]) < 0.1, rng.uniform(0, 6, [n, 1]), 0.0)
    x = np.clip(x / peak * 10 ** ((rng.uniform(-30, 0, [n, 1]) + drive) / 20), -1, 1)
    if len(i := pick("mu_law")):
        x[i] = mu_law(x[i])
    for j in pick("codec"):
        x[j] = codec(x[j], int(rng.integers(len(CODECS))), sample_rate)
    x += rng.standard_normal(x.shape) * 10 ** (-90 / 20)            # dither: never exact zeros
    return x.astype(np.float32)
