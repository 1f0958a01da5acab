"""What phones and browsers record (issue #29): AAC in .m4a/.aac, Opus in .opus and .webm.

The fixtures in tests/data/formats are 0.3 s of a sine (440 Hz, amplitude 0.5; the .webm is
stereo with 660 Hz at 0.3 on the right), encoded once with Debian's ffmpeg 5.1 by
`python tests/test_audio_formats.py` (make_fixtures below) and committed, so no test needs
ffmpeg. Measured codec delays (decoded sample i ≈ source sample i - delay):
  .m4a   AAC, 44.1 kHz   0: the MP4 edit list drops the encoder's 1024 priming samples and
                            the header's length trims the last frame's padding (13230 frames);
                            tone_faststart.m4a has its index (moov) first, as phones write it
  .aac   AAC (ADTS)      +1024: raw ADTS has no edit list, so FFmpeg keeps the priming (and
                            the last frame's padding: 14336 frames = 14 × 1024)
  .opus  Opus (Ogg)      -3 at 48 kHz, 0 at 16 kHz: libsndfile applies the header's pre-skip
                            and end trim, and decodes at the header's input rate
  .webm  Opus (WebM)     -3: PyAV applies the codec delay and the discard padding; tone.webm
                            was streamed to a pipe as a browser's MediaRecorder writes it (no
                            duration, no cues), tone_seekable.webm written to a file (both)
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from data import audio_io
from data.sources import DataError, find_sources

FIXTURES = Path(__file__).resolve().parent / "data" / "formats"
SECONDS = 0.3

# name: (format, codec, rate, channels, frames, delay, allowed error of the delay)
CASES = {
    "tone.m4a": ("MP4", "AAC", 44100, 1, 13230, 0, 1),
    "tone_faststart.m4a": ("MP4", "AAC", 44100, 1, 13230, 0, 1),
    "tone.aac": ("AAC", "AAC", 44100, 1, 14336, 1024, 1),
    "tone.opus": ("OGG", "OPUS", 48000, 1, 14400, -3, 3),
    "tone16k.opus": ("OGG", "OPUS", 16000, 1, 4800, 0, 1),
    "tone.webm": ("WEBM", "OPUS", 48000, 2, 14400, -3, 3),
    "tone_seekable.webm": ("WEBM", "OPUS", 48000, 2, 14400, -3, 3),
}


def source(rate, channels):
    """The signal each fixture was encoded from."""
    t = np.arange(int(round(SECONDS * rate))) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([left, 0.3 * np.sin(2 * np.pi * 660 * t)][:channels], 1).astype(np.float32)


def delay_and_correlation(decoded, reference, expected, search=8):
    """The delay (decoded sample i ≈ reference sample i - delay) within ±search of `expected`
    that correlates best, and that correlation. (A sine repeats every ~100 samples: the search
    stays well inside one period.)"""
    best = None
    for delay in range(expected - search, expected + search + 1):
        a = decoded[max(delay, 0):]
        b = reference[max(-delay, 0):]
        n = min(len(a), len(b))
        c = float(np.corrcoef(a[:n], b[:n])[0, 1])
        if best is None or c > best[1]:
            best = (delay, c)
    return best


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_format_reads_to_the_right_rate_length_and_content(name):
    fmt, codec, rate, channels, frames, delay, slack = CASES[name]
    info = audio_io.probe(str(FIXTURES / name))
    assert (info.format, info.subtype, info.sample_rate, info.channels, info.frames) == \
        (fmt, codec, rate, channels, frames)
    assert info.decoder == audio_io.SOUNDFILE and not info.damaged and info.note == ""
    audio, got_rate = audio_io.read(FIXTURES / name)
    assert got_rate == rate and audio.dtype == np.float32 and audio.shape == (frames, channels)
    # Length: the source's, plus what the codec's delay and padding add (ADTS only).
    assert abs(frames - round(SECONDS * rate)) <= (1024 + 1024 if fmt == "AAC" else 0)
    reference = source(rate, channels)
    for c in range(channels):
        measured, corr = delay_and_correlation(audio[:, c], reference[:, c], delay)
        assert abs(measured - delay) <= slack, (c, measured)
        assert corr > 0.97, (c, corr)
    assert 0.45 < np.abs(audio).max() < 0.65                  # a lossy copy of amplitude 0.5


@pytest.mark.parametrize("name", ["tone.m4a", "tone.webm"])
def test_segments_read_with_start_stop_equal_the_whole(name):
    """Long files are read in segments (start/stop): the pieces must tile the whole read."""
    path = str(FIXTURES / name)
    info = audio_io.probe(path)
    whole, _ = audio_io.read(path)
    cuts = [0, 1000, 5000, 5001, 12000, info.frames]
    pieces = [audio_io.decode(tf.constant(path), tf.constant(audio_io.SOUNDFILE), info.channels,
                              tf.constant(lo, tf.int64), tf.constant(hi, tf.int64)).numpy()
              for lo, hi in zip(cuts, cuts[1:])]
    assert [len(p) for p in pieces] == [hi - lo for lo, hi in zip(cuts, cuts[1:])]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_opus_in_webm_named_opus_or_mka_is_read_by_pyav(tmp_path):
    for name in ("webm_inside.opus", "tone.mka", "tone.weba"):
        shutil.copy(FIXTURES / "tone.webm", tmp_path / name)
        info = audio_io.probe(str(tmp_path / name))
        assert (info.subtype, info.frames, info.channels) == ("OPUS", 14400, 2)
        assert info.format == ("WEBM" if name.endswith(".weba") else "MATROSKA")
        audio, _ = audio_io.read(tmp_path / name)
        np.testing.assert_array_equal(audio, audio_io.read(FIXTURES / "tone.webm")[0])


def test_folder_of_phone_and_browser_recordings_trains(tmp_path):
    from configs import get_preset
    from data.pipeline import make_dataset, prepare
    from params import apply_overrides
    data = tmp_path / "recordings"
    shutil.copytree(FIXTURES, data)
    report = find_sources(data)
    assert sorted(Path(s.path).name for s in report.sources) == sorted(CASES)
    assert not report.skipped and not report.notes
    params = apply_overrides(get_preset("tiny"), [])
    prepared = prepare(data, params.data, cache_root=tmp_path / "cache")
    assert prepared.num_clips == len(CASES)
    assert not prepared.report.skipped and not prepared.report.notes, \
        prepared.report.summary()
    # Each resampled to data.sample_rate with its length (±1 sample of rounding).
    expected = sum(round(CASES[n][4] * params.data.sample_rate / CASES[n][2]) for n in CASES)
    assert abs(prepared.seconds * params.data.sample_rate - expected) <= len(CASES)
    batch = next(iter(make_dataset(prepared, params.data, seed=0)))
    audio = batch["audio"].numpy()
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.1


def test_unknown_extension_is_a_one_line_error_listing_accepted_formats(tmp_path):
    data = tmp_path / "odd"
    data.mkdir()
    for name in ("take1.xyz", "take2.xyz"):
        (data / name).write_bytes((FIXTURES / "tone.m4a").read_bytes())
    with pytest.raises(DataError) as error:
        find_sources(data)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{data}: no usable audio")
    assert "take1.xyz" in message and "take2.xyz" in message
    assert "accepted formats:" in message
    for extension in (".wav", ".flac", ".mp3", ".opus", ".m4a", ".aac", ".webm"):
        assert re.search(rf"[ (]{re.escape(extension)}[ )]", message), extension


def test_damaged_files(tmp_path):
    # A WebM cut off mid-way: what is there is used. With a duration in its header, the
    # shortfall is reported (data.recover decides); a streamed one (no duration) cannot tell.
    for name, noted in (("tone_seekable.webm", True), ("tone.webm", False)):
        blob = (FIXTURES / name).read_bytes()
        (tmp_path / f"cut_{name}").write_bytes(blob[:len(blob) * 2 // 3])
        info = audio_io.probe(str(tmp_path / f"cut_{name}"))
        assert 0 < info.frames < 14400 and info.damaged == noted
        assert (info.note == "") != noted
        if noted:
            assert re.fullmatch(r"recovered 0\.\d\d s of 0\.31 s \(truncated\)", info.note)
        audio, _ = audio_io.read(tmp_path / f"cut_{name}")
        assert len(audio) == info.frames
        assert delay_and_correlation(audio[:, 0], source(48000, 2)[:, 0], -3)[1] > 0.97
    # An M4A with its index first, cut off: the packets that are there, and the shortfall.
    blob = (FIXTURES / "tone_faststart.m4a").read_bytes()
    (tmp_path / "cut_faststart.m4a").write_bytes(blob[:len(blob) * 2 // 3])
    info = audio_io.probe(str(tmp_path / "cut_faststart.m4a"))
    assert info.damaged and info.frames == 6144
    assert info.note == "recovered 0.14 s of 0.30 s (truncated)"
    audio, _ = audio_io.read(tmp_path / "cut_faststart.m4a")
    assert len(audio) == info.frames
    assert delay_and_correlation(audio[:, 0], source(44100, 1)[:, 0], 0)[1] > 0.97
    # An M4A cut off before its index (moov at the end) cannot be read at all: a skip.
    blob = (FIXTURES / "tone.m4a").read_bytes()
    (tmp_path / "cut.m4a").write_bytes(blob[:len(blob) // 2])
    (tmp_path / "junk.m4a").write_bytes(b"not audio at all\n" * 20)
    for name in ("cut.m4a", "junk.m4a"):
        with pytest.raises(audio_io.AudioError, match=rf"{name}: not a readable audio file \("):
            audio_io.probe(str(tmp_path / name))
    shutil.copy(FIXTURES / "tone.m4a", tmp_path / "good.m4a")
    report = find_sources(tmp_path)
    assert [Path(s.path).name for s in report.sources] == [
        "cut_faststart.m4a", "cut_tone.webm", "cut_tone_seekable.webm", "good.m4a"]
    assert sorted(Path(p).name for p, _ in report.skipped) == ["cut.m4a", "junk.m4a"]
    assert [Path(p).name for p, _ in report.notes] == ["cut_faststart.m4a",
                                                       "cut_tone_seekable.webm"]


def test_without_pyav_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(audio_io, "_pyav", lambda: None)
    with pytest.raises(audio_io.AudioError, match=r"tone.m4a: .m4a files need PyAV"):
        audio_io.probe(str(FIXTURES / "tone.m4a"))
    assert audio_io.probe(str(FIXTURES / "tone.opus")).frames == 14400     # libsndfile's
    shutil.copy(FIXTURES / "tone.webm", tmp_path / "only.webm")
    with pytest.raises(DataError, match=r"only.webm: .webm files need PyAV.*"
                                        r"accepted formats: .*\(these need PyAV"):
        find_sources(tmp_path)


def make_fixtures(ffmpeg="ffmpeg"):
    """Writes tests/data/formats (run once by hand; needs ffmpeg with libopus)."""
    import tempfile
    FIXTURES.mkdir(parents=True, exist_ok=True)
    quiet = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-bitexact"]
    with tempfile.TemporaryDirectory() as tmp:
        for rate, channels in ((44100, 1), (48000, 1), (16000, 1), (48000, 2)):
            sf.write(f"{tmp}/{rate}_{channels}.wav", source(rate, channels), rate)
        jobs = [("44100_1", ["-c:a", "aac", "-b:a", "48k"], "tone.m4a"),
                ("44100_1", ["-c:a", "aac", "-b:a", "48k", "-movflags", "+faststart"],
                 "tone_faststart.m4a"),
                ("44100_1", ["-c:a", "aac", "-b:a", "48k"], "tone.aac"),
                ("48000_1", ["-c:a", "libopus", "-b:a", "24k"], "tone.opus"),
                ("16000_1", ["-c:a", "libopus", "-b:a", "24k"], "tone16k.opus"),
                ("48000_2", ["-c:a", "libopus", "-b:a", "32k"], "tone_seekable.webm"),
                # Streamed to a pipe like a browser's MediaRecorder: no duration in the header.
                ("48000_2", ["-c:a", "libopus", "-b:a", "32k", "-f", "webm"], "-")]
        for wav, codec, name in jobs:
            out = FIXTURES / ("tone.webm" if name == "-" else name)
            command = quiet + ["-i", f"{tmp}/{wav}.wav", "-map_metadata", "-1", *codec]
            if name == "-":
                with open(out, "wb") as f:
                    subprocess.run(command + ["pipe:1"], stdout=f, check=True)
            else:
                subprocess.run(command + [str(out)], check=True)


if __name__ == "__main__":
    make_fixtures(*sys.argv[1:])
