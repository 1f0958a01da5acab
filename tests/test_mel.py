"""The mel-spectrogram image codec (data/mel.py): filterbank, pixels, slicing, Griffin-Lim."""
import glob
import json
import os

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from data.mel import CONFIG_NAME, Mel, hz_to_mel, mel_filterbank, mel_to_hz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHORALE = sorted(glob.glob(os.path.join(ROOT, "dataset", "chorales", "*.flac")))[0]


@pytest.fixture(scope="module")
def mel():
    m = Mel()
    m.load_audio(CHORALE)
    return m


def _spectral_convergence(mel, original, reconstruction, gain=1.0):
    """‖|S| − g·|Ŝ|‖_F / ‖|S|‖_F on the codec's own centred STFT."""
    s = np.abs(mel._stft(tf.constant(original)).numpy())
    s_hat = gain * np.abs(mel._stft(tf.constant(reconstruction)).numpy())
    return float(np.linalg.norm(s - s_hat) / np.linalg.norm(s))


def test_slaney_mel_scale_and_filterbank():
    assert hz_to_mel(1000.0) == pytest.approx(15.0)
    assert hz_to_mel(2000.0) == pytest.approx(25.0819, abs=1e-4)       # 15 + ln 2·27/ln 6.4
    assert hz_to_mel(500.0) == pytest.approx(7.5)                       # linear below 1 kHz
    hz = np.array([0.0, 200.0, 999.0, 1000.0, 4000.0, 11025.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)

    sr, n_fft = 22050, 2048
    fb = mel_filterbank(sr, n_fft, 256)
    assert fb.shape == (256, 1025) and fb.dtype == np.float32
    assert fb.min() >= 0 and np.all(fb.max(axis=1) > 0)                # no empty band
    assert fb[:, -1].max() == pytest.approx(0.0, abs=1e-6)              # fmax = sr/2
    # Slaney area normalisation: each triangle has unit area in Hz (Σ row · Δf ≈ 1 once the
    # triangle spans many bins); peaks sit at the centre frequencies, rising with the band.
    points = mel_to_hz(np.linspace(0.0, hz_to_mel(sr / 2), 258))
    wide = (points[2:] - points[:-2]) > 8 * sr / n_fft                 # 92 of the 256 bands
    area = fb.sum(axis=1) * sr / n_fft
    np.testing.assert_allclose(area[wide], 1.0, atol=0.01)
    np.testing.assert_allclose(area, 1.0, atol=0.12)                    # narrow: coarser sums
    assert wide.sum() > 80
    peaks = fb.argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0)
    np.testing.assert_allclose(peaks * sr / n_fft, points[1:-1], atol=sr / n_fft)
    # One entry by hand: bin k of band i = min(rising, falling) · 2/(f_i+2 − f_i).
    i, k = 100, int(round(points[101] / (sr / n_fft))) + 1
    f = k * sr / n_fft
    rising = (f - points[i]) / (points[i + 1] - points[i])
    falling = (points[i + 2] - f) / (points[i + 2] - points[i + 1])
    expected = max(0.0, min(rising, falling)) * 2 / (points[i + 2] - points[i])
    assert fb[i, k] == pytest.approx(expected, rel=1e-6)
    # librosa.filters.mel(sr=22050, n_fft=2048) (128 bands): its documented first entries.
    fb128 = mel_filterbank(sr, n_fft, 128)
    np.testing.assert_allclose(fb128[0, :6], [0, 0.0161828532, 0.0323657064, 0.0289900880,
                                              0.0128072348, 0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fb128[1, :9], [0, 0, 0, 0.0097792358, 0.0259620890,
                                              0.0353937055, 0.0192108522, 0.0030279990, 0],
                               rtol=1e-6, atol=1e-9)


def test_slices_padding_and_image_shape(mel):
    # 6 s at 16 kHz → 132300 samples at 22050 Hz → 1 whole slice of 256·512 − 1 (teticio
    # counts whole slices; the 1229-sample tail is kept but not a slice).
    assert mel.slice_size == 256 * 512 - 1 and mel.get_sample_rate() == 22050
    assert mel.get_number_of_slices() == 1 and len(mel.audio) == 132300
    assert mel.get_audio_slice(0).shape == (mel.slice_size,)
    with pytest.raises(ValueError, match="out of range"):
        mel.get_audio_slice(1)
    image = mel.audio_slice_to_image(0)
    assert image.shape == (256, 256) and image.dtype == np.uint8
    assert image.max() == 255 and image.min() < 40 and len(np.unique(image)) > 100

    raw = Mel(x_res=16, y_res=32)
    for length, slices in ((raw.slice_size, 1), (2 * raw.slice_size - 1, 1),
                           (2 * raw.slice_size, 2), (100, 1)):
        raw.load_audio(raw_audio=np.ones(length, np.float32))
        assert raw.get_number_of_slices() == slices
    assert np.all(raw.audio[100:] == 0)
    stereo = np.stack([np.ones(50), np.zeros(50)], 1)                 # [T, C] → mean
    raw.load_audio(raw_audio=stereo)
    np.testing.assert_allclose(raw.audio[:50], 0.5)
    assert raw.audio_slice_to_image(0).shape == (32, 16)
    raw.load_audio(raw_audio=np.zeros(10))                             # silence: ref = 0 → 0 dB
    assert np.all(raw.audio_slice_to_image(0) == 255)


def test_row_zero_is_the_lowest_mel_band():
    m = Mel(x_res=32, y_res=64)
    t = np.arange(m.slice_size) / m.sr
    rows = [m.audio_to_images(np.sin(2 * np.pi * f * t)).mean(axis=1).argmax()
            for f in (200.0, 2000.0, 8000.0)]
    assert rows[0] < 12 and rows[0] < rows[1] < rows[2] and rows[2] > 50


def test_pixel_formula_against_numpy(mel):
    audio = mel.get_audio_slice(0)
    power = mel.mel_power(audio).numpy().astype(np.float64)           # [n_mels, frames]
    # An independent NumPy centred STFT (zero padding n_fft/2, periodic Hann) → same power.
    n_fft, hop = mel.n_fft, mel.hop_length
    padded = np.pad(audio.astype(np.float64), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    ref_power = mel_filterbank(mel.sr, n_fft, mel.n_mels) @ (
        np.abs(np.fft.rfft(frames * window, axis=1)) ** 2).T
    assert ref_power.shape == power.shape == (256, 256)
    np.testing.assert_allclose(power, ref_power, rtol=1e-3, atol=1e-6 * ref_power.max())
    # pixel = round(clip((dB + top_db)·255/top_db)), dB = 10·log10(max(S, amin)/max S) ≥ −top_db
    db = 10 * np.log10(np.maximum(power, 1e-10)) - 10 * np.log10(power.max())
    db = np.maximum(db, db.max() - 80)
    expected = np.floor(np.clip((db + 80) * 255 / 80, 0, 255) + 0.5).astype(np.uint8)
    image = mel.audio_slice_to_image(0)
    diff = np.abs(image.astype(int) - expected)
    assert diff.max() <= 1 and np.mean(diff == 0) > 0.999
    assert image[np.unravel_index(power.argmax(), power.shape)] == 255
    assert np.all(image[power <= power.max() * 1e-8] == 0)            # below −80 dB → 0


def test_stft_pair_is_exact_inverse(mel):
    audio = mel.get_audio_slice(0)
    back = mel._istft(mel._stft(tf.constant(audio)), mel.slice_size).numpy()
    np.testing.assert_allclose(back, audio, atol=1e-5)


def test_griffin_lim_round_trip_spectral_convergence(mel):
    audio = mel.get_audio_slice(0)
    image = mel.audio_slice_to_image(0)
    # The image is normalised by its loudest mel bin: undo that known gain, nothing fitted.
    gain = float(np.sqrt(mel.mel_power(audio).numpy().max()))
    sc = {}
    for n_iter in (0, 8, 32):
        out = mel.image_to_audio(image, n_iter=n_iter)
        assert out.shape == (mel.slice_size,) and out.dtype == np.float32
        assert np.all(np.isfinite(out))
        sc[n_iter] = _spectral_convergence(mel, audio, out, gain)
    print(f"\nspectral convergence through the mel image (n_iter: SC): {sc}")
    assert sc[32] < 0.25                   # measured ≈ 0.13; random phase (0 iterations) ≈ 0.65
    assert sc[32] <= sc[8] < sc[0]
    # Same seed → same audio; Griffin-Lim alone on the true magnitude converges further.
    np.testing.assert_array_equal(mel.image_to_audio(image), mel.image_to_audio(image))
    magnitude = np.abs(mel._stft(tf.constant(audio)).numpy())
    direct = _spectral_convergence(mel, audio, mel.griffin_lim(magnitude, n_iter=32))
    print(f"spectral convergence, Griffin-Lim on the true magnitude (32 iterations): {direct:.3f}")
    assert direct < 0.12                                               # measured ≈ 0.07


def test_batches_match_single_images(mel):
    slices = np.stack([mel.get_audio_slice(0), mel.audio[-mel.slice_size:]])
    images = mel.audio_to_images(slices)
    assert images.shape == (2, 256, 256)
    np.testing.assert_array_equal(images[0], mel.audio_slice_to_image(0))
    np.testing.assert_array_equal(images[1], mel.audio_to_images(slices[1:])[0])
    small = Mel(x_res=32, y_res=64)
    audio = small.image_to_audio(np.full((3, 64, 32), 128, np.uint8), n_iter=2)
    assert audio.shape == (3, 32 * 512 - 1) and audio.dtype == np.float32
    with pytest.raises(ValueError, match="image must be"):
        small.image_to_audio(np.zeros((32, 64), np.uint8))


def test_config_json_round_trip(tmp_path):
    mel = Mel(x_res=64, y_res=128, sample_rate=16000, n_fft=1024, hop_length=256, top_db=60,
              n_iter=16)
    path = mel.save_config(str(tmp_path))
    assert path == str(tmp_path / CONFIG_NAME)
    saved = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert saved["_class_name"] == "Mel" and saved["hop_length"] == 256
    for source in (str(tmp_path), path):
        back = Mel.from_config(source)
        assert back.get_config() == mel.get_config() and back.slice_size == 64 * 256 - 1
    saved.update(_diffusers_version="0.12.0")                          # diffusers' extras: ignored
    (tmp_path / CONFIG_NAME).write_text(json.dumps(saved))
    assert Mel.from_config(str(tmp_path)).get_config() == mel.get_config()
    (tmp_path / CONFIG_NAME).write_text(json.dumps({**saved, "n_mel": 80}))
    with pytest.raises(ValueError, match="n_mel"):
        Mel.from_config(str(tmp_path))
    with pytest.raises(ValueError, match="cannot read"):
        Mel.from_config(str(tmp_path / "missing"))
    for bad in ({"x_res": 0}, {"hop_length": 4096}, {"top_db": -1}, {"n_iter": 2.5}):
        with pytest.raises(ValueError, match="Mel"):
            Mel(**bad)


def test_load_audio_errors(tmp_path):
    mel = Mel(x_res=16, y_res=32)
    with pytest.raises(ValueError, match="load_audio first"):
        mel.get_number_of_slices()
    missing, text, empty = tmp_path / "missing.wav", tmp_path / "notes.wav", tmp_path / "e.wav"
    text.write_text("not audio at all")
    empty.write_bytes(b"")
    for path in (missing, text, empty):
        with pytest.raises(ValueError, match=str(path)):
            mel.load_audio(str(path))
    with pytest.raises(ValueError, match="exactly one"):
        mel.load_audio()
    with pytest.raises(ValueError, match="exactly one"):
        mel.load_audio(CHORALE, raw_audio=np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        mel.load_audio(raw_audio=np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="raw_audio"):
        mel.load_audio(raw_audio=np.zeros((2, 2, 2)))
    # A stereo 44.1 kHz file: mixed to mono and resampled to the codec's rate.
    stereo = tmp_path / "stereo.wav"
    t = np.arange(4410) / 44100
    sf.write(stereo, np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], 1), 44100)
    mel.load_audio(str(stereo))
    assert mel.get_number_of_slices() == 1
    assert np.abs(mel.audio[:2205]).max() == pytest.approx(0.5, abs=0.02)
    assert np.all(mel.audio[2210:] == 0)
