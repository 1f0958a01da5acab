"""Real-world WAVs: the samples a streamed, truncated, RF64/BW64 or exotic-codec file holds are
decoded, equal to libsndfile's where it reads the file and to the written signal otherwise."""
import numpy as np
import pytest
import soundfile as sf
from test_bad_input_matrix import (
    RATE,
    _bw64,
    _channel_mask,
    _chunks_before_data,
    _cut,
    _data_size,
    _patched,
    tone,
)

from configs import get_preset
from data.audio_io import PCM_RAW, probe, read
from data.pipeline import prepare

CASES = {   # name → (writer, exact: equal to the written 16-bit signal)
    "s0.wav": _patched("s0.wav", _data_size(0)),
    "sff.wav": _patched("sff.wav", _data_size(0xFFFFFFFF)),
    "cut.wav": _patched("cut.wav", _cut),
    "rf64.wav": _patched("rf64.wav", lambda raw: raw, format="RF64"),
    "bw.wav": _patched("bw.wav", _bw64, format="RF64"),
    "mask.wav": _patched("mask.wav", _channel_mask, format="WAVEX", channels=3),
    "bwf.wav": _patched("bwf.wav", _chunks_before_data),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_damaged_and_64_bit_wavs_decode_to_the_written_samples(tmp_path, name):
    CASES[name](tmp_path)
    audio, rate = read(str(tmp_path / name))
    channels = 3 if name == "mask.wav" else 1
    sf.write(tmp_path / "plain.wav", tone(channels=channels), RATE)      # the same samples,
    written = sf.read(tmp_path / "plain.wav", dtype="float32", always_2d=True)[0]  # intact
    frames = 5318 if name == "cut.wav" else RATE
    assert rate == RATE and audio.shape == (frames, channels)
    np.testing.assert_allclose(audio, written[:frames], rtol=0, atol=1e-6)


@pytest.mark.parametrize("subtype,fmt,rate,snr_db", [
    ("ULAW", "WAV", RATE, 30), ("ALAW", "WAV", RATE, 30), ("IMA_ADPCM", "WAV", RATE, 20),
    ("GSM610", "WAV", 8000, 5), ("PCM_16", "AIFF", RATE, 70), ("ULAW", "AIFF", RATE, 30),
    ("DOUBLE", "WAV", RATE, 140), ("FLOAT", "WAV", RATE, 130), ("PCM_24", "WAV", RATE, 120)])
def test_codecs_equal_libsndfile_and_keep_the_signal(tmp_path, subtype, fmt, rate, snr_db):
    path = str(tmp_path / f"x.{'aiff' if fmt == 'AIFF' else 'wav'}")
    signal = tone(rate=rate)
    sf.write(path, signal, rate, format=fmt, subtype=subtype)
    audio, got_rate = read(path)
    reference = sf.read(path, dtype="float32", always_2d=True)[0]
    assert got_rate == rate
    np.testing.assert_allclose(audio, reference, rtol=0, atol=1e-6)   # libsndfile's values
    n = min(len(audio), len(signal))                       # (IMA ADPCM pads its last block)
    noise = audio[:n, 0] - signal[:n, 0]
    assert 10 * np.log10(np.mean(signal[:n, 0] ** 2) / np.mean(noise ** 2)) > snr_db


def test_a_folder_of_real_world_wavs_is_used_whole(tmp_path):
    # The case: a streamed-size WAV, a truncated WAV, an RF64 WAV and a bext WAV.
    data = tmp_path / "recordings"
    data.mkdir()
    for name in ("sff.wav", "cut.wav", "rf64.wav", "bwf.wav"):
        CASES[name](data)
    dp = get_preset("tiny").data
    dp.crop_samples = 4000
    prepared = prepare(data, dp, cache_root=tmp_path / "cache")
    assert prepared.num_clips == 4 and not prepared.report.skipped
    notes = dict(prepared.report.notes)
    assert sorted(p.rsplit("/", 1)[-1] for p in notes) == ["cut.wav", "rf64.wav", "sff.wav"]
    assert notes[str(data / "cut.wav")] == "recovered 0.33 s of 1.00 s (truncated)"
    summary = prepared.report.summary()
    assert "warning " + str(data / "sff.wav") + ": read 1.00 s" in summary
    assert abs(prepared.seconds - (1 + 5318 / RATE + 1 + 1)) < 1e-3
    again = prepare(data, dp, cache_root=tmp_path / "cache")           # from the cache
    assert again.from_cache and again.report.notes == prepared.report.notes


def test_the_wav_reader_is_chosen_only_where_the_header_lies(tmp_path):
    sf.write(tmp_path / "fine.wav", tone(), RATE)
    assert probe(str(tmp_path / "fine.wav"), "auto").decoder != PCM_RAW
    CASES["sff.wav"](tmp_path)
    info = probe(str(tmp_path / "sff.wav"), "auto")
    assert info.decoder == PCM_RAW and info.damaged and info.frames == RATE
