"""Decoding every format, the soundfile fallback, the cache, metadata, and bad input."""
import json
import logging
import os
import re
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from configs import get_preset
from data import audio_io
from data.pipeline import make_dataset, prepare
from data.sources import DataError, find_sources
from params import apply_overrides

RATE = 16000
SINE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)
STEREO = np.stack([SINE, 0.5 * SINE], 1)
# (file name, soundfile format/subtype, max abs error against the written signal)
FORMATS = [("u8.wav", "PCM_U8", 1 / 64), ("s16.wav", "PCM_16", 1e-4), ("s24.wav", "PCM_24", 1e-6),
           ("s32.wav", "PCM_32", 1e-7), ("f32.wav", "FLOAT", 0), ("f64.wav", "DOUBLE", 0),
           ("s16.flac", "PCM_16", 1e-4), ("s24.flac", "PCM_24", 1e-6), ("a.ogg", "VORBIS", None),
           ("a.mp3", "MPEG_LAYER_III", None)]


@pytest.fixture(scope="module")
def formats_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    for name, subtype, _ in FORMATS:
        sf.write(root / name, STEREO, RATE, subtype=subtype)
    return root


def _params(**overrides):
    return apply_overrides(get_preset("tiny"), [f"{k}={v}" for k, v in overrides.items()])


@pytest.mark.parametrize("name,subtype,tolerance", FORMATS)
def test_every_format_decodes(formats_dir, name, subtype, tolerance):
    audio, rate = audio_io.read(str(formats_dir / name))
    assert rate == RATE and audio.dtype == np.float32 and audio.shape[1] == 2
    reference, _ = sf.read(formats_dir / name, dtype="float32", always_2d=True)
    n = min(len(audio), len(reference))
    assert n >= RATE - 1200                           # lossy codecs may trim a frame
    if tolerance is None:                             # lossy: same signal, codec error only
        corr = np.corrcoef(audio[:n, 0], reference[:n, 0])[0, 1]
        assert corr > 0.999
    else:
        np.testing.assert_allclose(audio[:n], reference[:n], atol=1e-7)
        np.testing.assert_allclose(audio[:, 0], SINE, atol=tolerance)


def test_tfio_is_used_in_graph_for_common_formats(formats_dir):
    assert audio_io.tfio_available()
    assert audio_io.probe(str(formats_dir / "s16.flac")).decoder == audio_io.FLAC_16
    assert audio_io.probe(str(formats_dir / "a.mp3")).decoder == audio_io.MP3
    # tfio misreads 32-bit integer WAV: that one goes through soundfile.
    assert audio_io.probe(str(formats_dir / "s32.wav")).decoder == audio_io.SOUNDFILE


def test_soundfile_fallback_when_tfio_ops_cannot_load(formats_dir, monkeypatch, caplog):
    audio_io.tfio_available.cache_clear()
    monkeypatch.setitem(sys.modules, "tensorflow_io", None)    # import fails, as on TF ≥ 2.18
    try:
        with caplog.at_level(logging.WARNING):
            assert not audio_io.tfio_available()
            assert not audio_io.tfio_available()
        assert sum("tensorflow-io audio ops unavailable" in r.message
                   for r in caplog.records) == 1                # one warning, not one per file
        for name in ("s16.flac", "s24.wav", "a.ogg"):
            info = audio_io.probe(str(formats_dir / name))
            assert info.decoder == audio_io.SOUNDFILE
            audio, _ = audio_io.read(str(formats_dir / name))
            reference, _ = sf.read(formats_dir / name, dtype="float32", always_2d=True)
            np.testing.assert_allclose(audio, reference, atol=1e-7)
    finally:
        audio_io.tfio_available.cache_clear()


def _write_set(root, n=6, seconds=1.0, rate=22050):
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        t = np.arange(int(rate * seconds)) / rate
        sf.write(root / f"clip{i}.flac", 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t), rate)
        rows.append({"path": f"clip{i}.flac", "label": i % 3, "caption": f"tone number {i}"})
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def test_cache_labels_captions_and_resampling(tmp_path):
    data = _write_set(tmp_path / "set")
    cache = tmp_path / "cache"
    params = _params(crop_samples=4000, batch_size=3)
    first = prepare(data, params.data, cache_root=cache)
    assert not first.from_cache and first.num_clips == 6
    assert abs(first.seconds - 6.0) < 1e-3                      # 22050 Hz → 16000 Hz, same time
    again = prepare(data, params.data, cache_root=cache)
    assert again.from_cache and again.path == first.path
    batch = next(iter(make_dataset(again, params.data, seed=0)))
    assert batch["audio"].shape == (3, 4000, 1)
    captions = {c.decode() for c in batch["caption"].numpy()}
    assert all(c.startswith("tone number") for c in captions)
    labels = batch["label"].numpy()
    assert set(labels) <= {0, 1, 2}
    # Label i%3 and caption i travel together with clip i.
    assert all(int(c.split()[-1]) % 3 == label for c, label in zip(
        [c.decode() for c in batch["caption"].numpy()], labels))
    peak = np.abs(batch["audio"].numpy()).max()
    assert abs(20 * np.log10(peak) - params.data.normalize_level_db) < 0.2   # peak-normalised

    # A changed file or a changed parameter makes a new cache; the old one is untouched.
    os.utime(data / "clip0.flac", ns=(1, 1))
    assert prepare(data, params.data, cache_root=cache).path != first.path
    other = prepare(data, _params(sample_rate=8000).data, cache_root=cache)
    assert other.path != first.path and abs(other.seconds - 6.0) < 1e-3
    assert os.path.isdir(first.path)


def test_crops_are_deterministic_per_seed_and_fixed_splits_tile(tmp_path):
    data = _write_set(tmp_path / "set", n=4, seconds=1.0, rate=16000)
    params = _params(crop_samples=3000, batch_size=2)
    prepared = prepare(data, params.data, cache_root=tmp_path / "cache")

    def first_batches(seed):
        return [b["audio"].numpy() for b in make_dataset(prepared, params.data, seed).take(3)]

    a, b, c = first_batches(1), first_batches(1), first_batches(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    fixed = _params(crop_samples=3000, batch_size=1, crop="fixed")
    windows = list(make_dataset(prepared, fixed.data, 0, repeat=False))
    assert len(windows) == 4 * (16000 // 3000)                 # the seed's tiled splits


def test_bad_files_are_skipped_and_reported(tmp_path):
    data = tmp_path / "mixed"
    (data / "sub").mkdir(parents=True)
    t = np.arange(RATE) / RATE
    sf.write(data / "good.wav", 0.3 * np.sin(2 * np.pi * 300 * t), RATE)
    sf.write(data / "sub" / "good2.flac", 0.3 * np.sin(2 * np.pi * 500 * t), 44100)
    sf.write(data / "silent.wav", np.zeros(RATE), RATE)
    sf.write(data / "full.flac", 0.3 * np.sin(2 * np.pi * 300 * t), RATE)
    blob = (data / "full.flac").read_bytes()
    (data / "truncated.flac").write_bytes(blob[:len(blob) // 2])
    (data / "full.flac").unlink()
    (data / "empty.wav").write_bytes(b"")
    (data / "text.mp3").write_text("this is not audio\n" * 50)
    (data / "corrupt.wav").write_bytes(b"RIFF" + os.urandom(400))
    (data / "notes.txt").write_text("ignored: not an audio extension")
    params = _params(crop_samples=4000)
    prepared = prepare(data, params.data, cache_root=tmp_path / "cache")
    skipped = dict(prepared.report.skipped)
    names = {os.path.basename(p): reason for p, reason in skipped.items()}
    assert set(names) == {"silent.wav", "empty.wav", "text.mp3", "corrupt.wav"}
    assert names["silent.wav"] == "all-silent"
    assert "0 bytes" in names["empty.wav"]
    # The truncated FLAC is used up to the damage, with a warning (data.recover=warn).
    notes = {os.path.basename(p): note for p, note in prepared.report.notes}
    assert re.fullmatch(r"recovered 0\.\d\d s of 1\.00 s \(truncated\)", notes["truncated.flac"])
    assert prepared.num_clips == 3
    summary = prepared.report.summary()
    assert "3 files" in summary and "skipped 4" in summary and "corrupt.wav" in summary
    assert "warning " in summary and "truncated.flac: recovered" in summary


def test_unreadable_file_is_skipped(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    data = _write_set(tmp_path / "set", n=2)
    os.chmod(data / "clip1.flac", 0)
    report = find_sources(data)
    assert [os.path.basename(p) for p, _ in report.skipped] == ["clip1.flac"]


def test_errors_name_the_file(tmp_path):
    params = _params(crop_samples=4000)
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "readme.txt").write_text("no audio here")
    with pytest.raises(DataError, match="nothing: no usable audio"):
        prepare(empty, params.data, cache_root=tmp_path / "c")
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.wav").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"bad: no usable audio \(1 files skipped, .*x.wav"):
        prepare(only_bad, params.data, cache_root=tmp_path / "c")
    with pytest.raises(DataError, match="no such file or directory"):
        prepare(tmp_path / "missing", params.data, cache_root=tmp_path / "c")

    nan = tmp_path / "nan"
    nan.mkdir()
    audio = 0.1 * np.ones(RATE, np.float32)
    audio[100] = np.nan
    sf.write(nan / "nan.wav", audio, RATE, subtype="FLOAT")
    with pytest.raises(DataError, match=r"nan\.wav: contains NaN or Inf"):
        prepare(nan, params.data, cache_root=tmp_path / "c")
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".tmp")]

    short = tmp_path / "short"
    short.mkdir()
    sf.write(short / "short.wav", 0.3 * np.ones(1000), RATE)
    sf.write(short / "long.wav", 0.3 * np.ones(8000), RATE)
    with pytest.raises(DataError, match=r"short\.wav: shorter than the crop \(1000 < 4000"):
        prepare(short, _params(crop_samples=4000, short_clips="error").data, tmp_path / "c")
    skipped = prepare(short, _params(crop_samples=4000, short_clips="skip").data, tmp_path / "c")
    assert skipped.num_clips == 1 and "short.wav" in skipped.report.skipped[0][0]
    padded = prepare(short, _params(crop_samples=4000, short_clips="pad").data, tmp_path / "c")
    assert padded.num_clips == 2

    odd = tmp_path / "odd"
    odd.mkdir()
    sf.write(odd / "odd.wav", 0.3 * np.ones(RATE), 44100)
    with pytest.raises(DataError, match=r"odd\.wav: cannot resample 44100 Hz to 16001 Hz"):
        prepare(odd, _params(sample_rate=16001).data, tmp_path / "c")

    header = tmp_path / "rate"
    header.mkdir()
    sf.write(header / "zero.wav", 0.3 * np.ones(RATE), RATE)
    raw = bytearray((header / "zero.wav").read_bytes())
    raw[24:28] = (0).to_bytes(4, "little")                    # sample rate field of the header
    (header / "zero.wav").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"zero\.wav: .*(impossible sample rate|not a readable)"):
        prepare(header, params.data, cache_root=tmp_path / "c")


def test_bad_metadata_line_names_file_and_line(tmp_path):
    data = _write_set(tmp_path / "set", n=2)
    with open(data / "metadata.jsonl", "a") as f:
        f.write('{"label": 3}\n')
    with pytest.raises(DataError, match=r"metadata\.jsonl:3: expected a JSON object"):
        find_sources(data)


def test_bundled_datasets():
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "dataset"
    digits = find_sources(root / "digits")
    chorales = find_sources(root / "chorales")
    assert len(digits.sources) >= 300 and not digits.skipped
    assert len(chorales.sources) >= 40 and not chorales.skipped
    assert {s.label for s in digits.sources} == set(range(10))
    assert all(s.caption for s in digits.sources + chorales.sources)
    assert all(s.info.sample_rate == 16000 and s.info.channels == 1 for s in digits.sources)
    assert all(s.info.frames == 16000 for s in digits.sources)
    assert all(abs(s.info.seconds - 6.0) < 1e-6 for s in chorales.sources)
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()
               and "cache" not in f.parts)
    assert size <= 15 * 2 ** 20
    assert tf.io.gfile.exists(str(root / "ATTRIBUTION.md"))


@pytest.mark.parametrize("name", ["s16.flac", "a.ogg", "s16.wav"])
def test_decoder_preferences_agree(formats_dir, name):
    path = str(formats_dir / name)
    decoded = {}
    for prefer in ("auto", "tfio", "soundfile"):
        info = audio_io.probe(path, prefer)
        decoded[prefer] = audio_io.decode(tf.constant(path), info.decoder, 2).numpy()
    assert audio_io.probe(path, "soundfile").decoder == audio_io.SOUNDFILE
    assert audio_io.probe(path, "tfio").decoder != audio_io.SOUNDFILE
    n = min(len(a) for a in decoded.values())
    np.testing.assert_allclose(decoded["tfio"][:n], decoded["soundfile"][:n], atol=1e-4)
    np.testing.assert_array_equal(decoded["auto"], decoded["soundfile" if "wav" not in name
                                                           else "tfio"])


def test_long_file_is_read_in_segments_with_exact_edges(tmp_path):
    """A file longer than data.segment_seconds is decoded in pieces (never whole) and each
    piece, resampled with its halo, equals the same span of the whole file resampled."""
    from data.filters import resample
    rate, seconds = 22050, 7.3
    t = np.arange(int(rate * seconds)) / rate
    signal = (0.4 * np.sin(2 * np.pi * 330 * t) * np.sin(2 * np.pi * 0.7 * t)).astype(np.float32)
    data = tmp_path / "long"
    data.mkdir()
    sf.write(data / "long.flac", signal, rate, subtype="PCM_24")
    params = _params(segment_seconds=2, normalize="none", crop_samples=1000)
    prepared = prepare(data, params.data, cache_root=tmp_path / "c")
    clips = [r["audio"][:, 0] for r in tf.data.Dataset.load(prepared.path).as_numpy_iterator()]
    assert len(clips) == 4 and prepared.num_clips == 4               # 2 + 2 + 2 + 1.3 s
    joined = np.concatenate(clips)
    decoded, _ = sf.read(data / "long.flac", dtype="float32")
    whole = resample(decoded, rate, 16000).numpy()
    assert abs(len(joined) - len(whole)) <= 2
    n = min(len(joined), len(whole))
    np.testing.assert_allclose(joined[:n], whole[:n], atol=2e-6)
