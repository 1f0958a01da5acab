"""One labelled figure per clip: the waveform above a log-mel spectrogram.

    png = clip_figure_png(audio [T], sample_rate, title="digit 7")   # PNG bytes
    save_clip_figure("clip.png", audio, sample_rate, title)

Time in seconds on both panels, frequency in Hz on a mel-scaled axis, power in dB relative to
a full-scale sine (0 dB) with a colour bar. matplotlib's object API (no pyplot state), so
threads (the web UI) and the training loop can draw at the same time. Used by generate.py,
the demo page and the TensorBoard images of training.
"""
from __future__ import annotations

import io

import numpy as np

from data.features import F_MIN, mel_matrix

N_MELS = 80
FLOOR_DB = -100.0


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.maximum(hz, 0.0) / 700.0)   # HTK mel (tf.signal's)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def log_mel_db(audio, sample_rate: int, n_mels: int = N_MELS):
    """(dB [frames, n_mels], frame times s [frames + 1], band edges Hz [n_mels + 1]).

    Power of the mel bands of a Hann STFT (n_fft ≈ 64 ms, hop n_fft/4), normalised so a
    full-scale sine peaks at 0 dB, floored at −100 dB."""
    import tensorflow as tf
    n_fft = int(2 ** np.ceil(np.log2(0.064 * sample_rate)))
    hop = n_fft // 4
    audio = np.asarray(audio, np.float32).reshape(-1)
    padded = np.pad(audio, (n_fft // 2, n_fft // 2 + max(0, n_fft - len(audio))))
    spec = tf.abs(tf.signal.stft(padded, n_fft, hop, n_fft)).numpy()
    power = (spec / (np.hanning(n_fft).sum() / 2.0)) ** 2          # a full-scale sine → 1
    # The vocoder's filterbank (HTK mel, 20 Hz … sr/2, triangles peaking at 1: a tone in a
    # band keeps its power, as on a spectrum analyser); its corners give the axis below.
    edges_mel = np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(sample_rate / 2.0), n_mels + 2)
    mel = power @ mel_matrix(n_fft, sample_rate, n_mels).numpy()
    db = np.maximum(10.0 * np.log10(np.maximum(mel, 1e-12)), FLOOR_DB)
    frames = len(db)
    times = (np.arange(frames + 1) - 0.5) * hop / sample_rate
    band_edges = _mel_to_hz(np.concatenate([[edges_mel[0]],
                                            (edges_mel[1:-2] + edges_mel[2:-1]) / 2,
                                            [edges_mel[-1]]]))
    return db.astype(np.float32), np.clip(times, 0.0, None), band_edges


def _envelope(audio, sample_rate: int, columns: int = 1500):
    """(times, values) to draw: the samples themselves for a short clip, else each of `columns`
    blocks as its min and max (what a 750-pixel-wide line would show anyway, ~10× faster)."""
    if len(audio) <= 2 * columns:
        return np.arange(len(audio)) / sample_rate, audio
    edges = np.linspace(0, len(audio), columns + 1).astype(int)
    lows, highs = np.minimum.reduceat(audio, edges[:-1]), np.maximum.reduceat(audio, edges[:-1])
    times = np.repeat((edges[:-1] + edges[1:]) / 2.0 / sample_rate, 2)
    return times, np.stack([lows, highs], 1).reshape(-1)


def clip_figure(audio, sample_rate: int, title: str | None = None):
    """A matplotlib Figure: waveform (amplitude vs s) above the log-mel (Hz vs s, dB bar)."""
    from matplotlib.figure import Figure
    audio = np.asarray(audio, np.float32).reshape(-1)
    seconds = len(audio) / sample_rate
    # Fixed margins: a constrained layout would take half the drawing time (the demo draws
    # dozens), and the figure's size and labels never change.
    fig = Figure(figsize=(7.5, 4.8), dpi=100)
    wave_ax, mel_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 2])
    fig.subplots_adjust(left=0.105, right=0.875, bottom=0.1, top=0.92, hspace=0.08)
    wave_ax.plot(*_envelope(audio, sample_rate), linewidth=0.5, color="tab:blue")
    wave_ax.set_xlim(0.0, seconds)
    peak = max(1e-3, float(np.max(np.abs(audio), initial=0.0)))
    wave_ax.set_ylim(-1.05 * peak, 1.05 * peak)
    wave_ax.set_ylabel("amplitude")
    wave_ax.grid(alpha=0.3)
    db, times, edges = log_mel_db(audio, sample_rate)
    mesh = mel_ax.pcolormesh(np.minimum(times, seconds), edges, db.T, cmap="magma",
                             vmin=max(FLOOR_DB, float(db.max()) - 80.0), vmax=float(db.max()),
                             shading="flat", rasterized=True)
    mel_ax.set_yscale("function", functions=(_hz_to_mel, _mel_to_hz))
    ticks = [t for t in (100, 250, 500, 1000, 2000, 4000, 8000, 16000)
             if edges[0] <= t <= edges[-1]]
    mel_ax.set_yticks(ticks, [f"{t:g}" if t < 1000 else f"{t // 1000:g}k" for t in ticks])
    mel_ax.set_ylim(edges[0], edges[-1])
    mel_ax.set_ylabel("frequency (Hz)")
    mel_ax.set_xlabel("time (s)")
    box = mel_ax.get_position()
    fig.colorbar(mesh, cax=fig.add_axes([0.89, box.y0, 0.018, box.height]),
                 label="power (dB re full-scale sine)")
    fig.suptitle(title or f"{seconds:.2f} s at {sample_rate} Hz", fontsize=10)
    return fig


def clip_figure_png(audio, sample_rate: int, title: str | None = None) -> bytes:
    """clip_figure() rendered to PNG bytes."""
    buffer = io.BytesIO()
    clip_figure(audio, sample_rate, title).savefig(buffer, format="png")
    return buffer.getvalue()


def save_clip_figure(path, audio, sample_rate: int, title: str | None = None) -> str:
    with open(path, "wb") as f:
        f.write(clip_figure_png(audio, sample_rate, title))
    return str(path)
