"""data/figures.py: the labelled clip figure's scale (dB re a full-scale sine, Hz, seconds)."""
import numpy as np
import tensorflow as tf

from data.figures import FLOOR_DB, clip_figure, clip_figure_png, log_mel_db

RATE = 16000


def sine(hz, level_db=0.0, seconds=1.0):
    t = np.arange(int(seconds * RATE)) / RATE
    return (10 ** (level_db / 20) * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_full_scale_sine_reads_0_db_in_its_band():
    db, times, edges = log_mel_db(sine(1000.0), RATE)
    assert db.shape == (len(times) - 1, len(edges) - 1)
    band = int(np.argmax(db.mean(axis=0)))
    assert edges[band] <= 1000.0 <= edges[band + 1] or abs(edges[band] - 1000) < 60
    assert -2.0 < db[5:-5].max() < 2.0                    # peak-normalised mel triangles
    assert abs(times[-1] - 1.0) < 0.02 and times[0] == 0.0
    assert abs(edges[-1] - RATE / 2) < 1e-6


def test_levels_follow_the_signal_and_silence_is_the_floor():
    loud = log_mel_db(sine(440.0), RATE)[0][5:-5].max()
    quiet = log_mel_db(sine(440.0, -30.0), RATE)[0][5:-5].max()
    assert abs((loud - quiet) - 30.0) < 0.1
    assert log_mel_db(np.zeros(RATE, np.float32), RATE)[0].max() == FLOOR_DB


def test_figure_is_labelled_in_seconds_hz_and_db():
    fig = clip_figure(sine(1000.0, -6.0, 0.5), RATE, title="a 1 kHz tone")
    wave, mel, bar = fig.axes
    assert mel.get_xlabel() == "time (s)" and mel.get_ylabel() == "frequency (Hz)"
    assert "dB" in bar.get_ylabel() and wave.get_ylabel() == "amplitude"
    assert {"1k", "4k"} <= {t.get_text() for t in mel.get_yticklabels()}
    assert mel.get_xlim() == (0.0, 0.5) and fig._suptitle.get_text() == "a 1 kHz tone"
    png = tf.io.decode_png(clip_figure_png(sine(300.0, seconds=0.1), RATE))
    assert png.shape == (480, 750, 4)
