"""tf.data builders: decode → channels → resample (in-graph) → normalise → cache → crop → batch.

    prepared = prepare("dataset/digits", params.data)      # decodes once, caches, reports skips
    print(prepared.report.summary())
    ds = make_dataset(prepared, params.data, seed=0)        # {"audio": [B, crop, C], "label", "caption"}

The decoded, resampled, normalised clips are saved with tf.data's save() under
dataset/cache/<fingerprint>, the fingerprint covering every file (path, size, mtime, label,
caption) and every data parameter that changes the decoded audio; a changed file or parameter
makes a new cache, a crash mid-build leaves none. Cropping and shuffling draw from
tf.data.Dataset.random and seeded shuffles, so the iterator (and its checkpoint) is
deterministic.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import uuid
from collections import defaultdict

import numpy as np
import tensorflow as tf

from data import audio_io, filters
from data.cache import cache_root as cache_root_of
from data.sources import DataError, SourceReport, find_sources

CACHE_VERSION = 1
MAX_RATIO_TERM = 20_000   # a resampling ratio L/M with L or M above this is "impossible"
HALO_SAMPLES = 4096       # input samples read beyond each segment (≫ the filter's half-width)


@dataclasses.dataclass
class Prepared:
    path: str                  # the tf.data cache directory
    report: SourceReport       # files used and skipped
    num_clips: int
    seconds: float             # at the model rate, after skips
    channels: int
    from_cache: bool


def _fingerprint(report: SourceReport, dp) -> str:
    h = hashlib.sha256()
    keys = {"version": CACHE_VERSION, "sample_rate": dp.sample_rate, "channels": dp.channels,
            "normalize": dp.normalize, "level": dp.normalize_level_db,
            "decoder": dp.decoder, "short_clips": dp.short_clips,
            "segment": dp.segment_seconds, "recover": dp.recover,  # which files are kept
            "crop": dp.crop_samples if dp.short_clips != "pad" else None}
    h.update(json.dumps(keys, sort_keys=True).encode())
    for s in sorted(report.sources, key=lambda s: s.path):
        st = os.stat(s.path)
        h.update(json.dumps([os.path.abspath(s.path), st.st_size, st.st_mtime_ns, s.label,
                             s.caption]).encode())
    return h.hexdigest()[:20]


def _check_ratio(source, new_rate):
    import math
    g = math.gcd(source.info.sample_rate, new_rate)
    if max(source.info.sample_rate, new_rate) // g > MAX_RATIO_TERM:
        raise DataError(f"{source.path}: cannot resample {source.info.sample_rate} Hz to "
                        f"{new_rate} Hz (ratio {new_rate // g}/{source.info.sample_rate // g} "
                        f"is impossibly fine)")


def normalize(audio, dp):
    """audio scaled as data.normalize asks (peak or RMS at data.normalize_level_db), clipped."""
    if dp.normalize == "none":
        return audio
    target = 10.0 ** (dp.normalize_level_db / 20.0)
    if dp.normalize == "peak":
        level = tf.reduce_max(tf.abs(audio))
    else:
        level = tf.sqrt(tf.reduce_mean(tf.square(audio)))
    return tf.clip_by_value(audio * (target / tf.maximum(level, 1e-9)), -1.0, 1.0)


def _segments(source, rate, dp):
    """(read_start, read_stop, skip, frames) rows: the whole file, or for a file longer than
    data.segment_seconds, segments read separately (so a huge file is never decoded whole),
    each with a halo of input so its resampled edges are exact. Segment starts and halos are
    multiples of M (ratio L/M), so output samples fall on the same grid as the whole file's."""
    import math
    frames = source.info.frames
    down = rate // math.gcd(rate, dp.sample_rate)                      # M
    seg = max(down, int(dp.segment_seconds * rate) // down * down)
    if frames <= seg:
        return [(0, -1, 0, frames)]
    halo = -(-HALO_SAMPLES // down) * down
    rows = []
    for start in range(0, frames, seg):
        end = min(start + seg, frames)
        lo, hi = max(0, start - halo), min(frames, end + halo)
        rows.append((lo, hi, start - lo, end - start))
    return rows


def _decoded(sources, rate, dp):
    """One tf.data pipeline for the files of one sample rate (the resampler is per ratio)."""
    import math
    up = dp.sample_rate // math.gcd(rate, dp.sample_rate)             # L
    down = rate // math.gcd(rate, dp.sample_rate)                     # M
    rows = [(s, seg) for s in sources for seg in _segments(s, rate, dp)]
    columns = {
        "path": [s.path for s, _ in rows],
        # Segments are read with soundfile or the WAV reader (start/stop); whole files by the
        # probe's choice.
        "decoder": [s.info.decoder if seg[1] < 0 or s.info.decoder == audio_io.PCM_RAW
                    else audio_io.SOUNDFILE for s, seg in rows],
        "channels": [s.info.channels for s, _ in rows],
        "label": np.array([s.label for s, _ in rows], np.int32),
        "caption": [s.caption for s, _ in rows],
        "read": np.array([seg[:2] for _, seg in rows], np.int64),
        "keep": np.array([seg[2:] for _, seg in rows], np.int64),     # (skip, frames) input
    }

    def load(row):
        audio = audio_io.decode(row["path"], row["decoder"], row["channels"],
                                row["read"][0], row["read"][1])
        if dp.channels == "mono":
            audio = tf.reduce_mean(audio, axis=-1, keepdims=True)
        audio = filters.resample(audio, rate, dp.sample_rate, axis=0)
        skip = row["keep"][0] * up // down                             # exact: M | skip
        count = (row["keep"][1] * up + down // 2) // down              # round(frames·L/M)
        audio = audio[skip:skip + count]
        peak = tf.reduce_max(tf.abs(audio))
        finite = tf.reduce_all(tf.math.is_finite(audio))
        return {"path": row["path"], "label": row["label"], "caption": row["caption"],
                "audio": normalize(audio, dp), "peak": peak, "finite": finite,
                "segment": tf.where(row["read"][1] >= 0, row["read"][0] + row["keep"][0], -1)}

    ds = tf.data.Dataset.from_tensor_slices(columns)
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()


def _validated(report: SourceReport, dp, failure: list):
    """Yields cache rows; records skips and recoveries in `report`; stores a DataError in
    `failure`. A file tensorflow-io fails on is decoded again by libsndfile; a file that decodes
    shorter than its header says (damaged mid-way) follows data.recover."""
    by_rate = defaultdict(list)
    for s in report.sources:
        by_rate[s.info.sample_rate].append(s)
    kept = []
    for rate, sources in sorted(by_rate.items()):
        seen = set()
        for attempt in ("probe's decoder", "libsndfile"):
            if attempt == "libsndfile":    # what tfio could not decode, once more by libsndfile
                sources = [dataclasses.replace(s, info=dataclasses.replace(
                    s.info, decoder=audio_io.SOUNDFILE)) for s in sources
                    if s.path not in seen and s.info.decoder not in (audio_io.SOUNDFILE,
                                                                     audio_io.PCM_RAW)]
                if not sources:
                    break
            by_path = {s.path: s for s in sources}
            for row in _decoded(sources, rate, dp).as_numpy_iterator():
                path = row["path"].decode()
                seen.add(path)
                if attempt == "libsndfile":
                    report.notes.append((path, "tensorflow-io could not decode it; read by "
                                               "libsndfile"))
                if row["segment"] >= 0:          # a segment of a long file: say which one
                    path = f"{path} (segment at {row['segment'] / rate:.0f} s)"
                length = row["audio"].shape[0]
                if not row["finite"]:
                    failure.append(DataError(f"{path}: contains NaN or Inf samples"))
                    return
                if row["peak"] < 1e-6:
                    report.skip(path, "all-silent")
                    continue
                source = by_path[row["path"].decode()]
                expected = source.info.frames * dp.sample_rate / rate
                # Lossy codecs' header frame counts differ from a decoder's output by their
                # padding (MP3: up to ~2300 input samples): a shortfall must exceed 0.1 s.
                slack = 1 if source.info.format not in ("MP3", "OGG") else 0.1 * dp.sample_rate
                if row["segment"] < 0 and length < expected - slack and not source.info.damaged:
                    note = (f"recovered {length / dp.sample_rate:.2f} s of "
                            f"{expected / dp.sample_rate:.2f} s (truncated)")
                    try:
                        if not report.recovered(path, note, dp.recover):
                            continue
                    except DataError as e:
                        failure.append(e)
                        return
                if length < dp.crop_samples:
                    message = f"shorter than the crop ({length} < {dp.crop_samples} samples " \
                              f"at {dp.sample_rate} Hz)"
                    if dp.short_clips == "error":
                        failure.append(DataError(f"{path}: {message}; set data.short_clips="
                                                 f"pad or skip"))
                        return
                    if dp.short_clips == "skip":
                        report.skip(path, message)
                        continue
                kept.append(row["path"].decode())
                yield {k: row[k] for k in ("audio", "label", "caption")}
        for s in by_rate[rate]:
            if s.path not in seen:
                report.skip(s.path, "cannot be decoded (corrupt or truncated)")
    kept = set(kept)
    report.sources = [s for s in report.sources if s.path in kept]


def prepare(data, dp, cache_root=None, rebuild: bool = False) -> Prepared:
    """Probes `data`, then decodes it once into the cache (or reuses a matching cache)."""
    report = find_sources(data, dp.decoder, dp.recover)
    channel_counts = {s.info.channels for s in report.sources}
    if dp.channels == "keep" and len(channel_counts) > 1:
        raise DataError(f"{data}: files have different channel counts {sorted(channel_counts)}; "
                        f"use data.channels=mono")
    for s in report.sources:
        _check_ratio(s, dp.sample_rate)
    channels = 1 if dp.channels == "mono" else channel_counts.pop()
    root = cache_root_of(cache_root)
    final = root / _fingerprint(report, dp)
    meta_file = final / "prepared.json"
    if meta_file.is_file() and not rebuild:
        meta = json.loads(meta_file.read_text())
        report.skipped = [tuple(x) for x in meta["skipped"]]
        report.notes = [tuple(x) for x in meta.get("notes", [])]
        dropped = {p for p, _ in report.skipped}
        report.sources = [s for s in report.sources if s.path not in dropped]
        return Prepared(str(final), report, meta["num_clips"], meta["seconds"], channels, True)

    failure: list = []
    spec = {"audio": tf.TensorSpec([None, channels], tf.float32),
            "label": tf.TensorSpec([], tf.int32), "caption": tf.TensorSpec([], tf.string)}
    ds = tf.data.Dataset.from_generator(lambda: _validated(report, dp, failure),
                                        output_signature=spec)
    tmp = root / f".tmp-{uuid.uuid4().hex}"
    root.mkdir(parents=True, exist_ok=True)
    try:
        ds.save(str(tmp))
        if failure:
            raise failure[0]
        if not report.sources:
            raise DataError(f"{data}: no usable audio (all {len(report.skipped)} files skipped, "
                            f"e.g. {report.skipped[0][0]}: {report.skipped[0][1]})")
        loaded = tf.data.Dataset.load(str(tmp))
        lengths = [n for n in loaded.map(lambda r: tf.shape(r["audio"])[0]).as_numpy_iterator()]
        meta = {"num_clips": len(lengths), "seconds": sum(lengths) / dp.sample_rate,
                "skipped": report.skipped, "notes": report.notes, "data": str(data)}
        (tmp / "prepared.json").write_text(json.dumps(meta, indent=1))
        if final.exists() and rebuild:
            shutil.rmtree(final)
        try:
            tmp.rename(final)                      # atomic publish of a complete cache
        except OSError:
            pass                                   # another process published the same cache
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Prepared(str(final), report, meta["num_clips"], meta["seconds"], channels, False)


def _crop_random(row, seed, crop):
    audio = row["audio"]
    length = tf.shape(audio)[0]
    audio = tf.pad(audio, [[0, tf.maximum(crop - length, 0)], [0, 0]])
    span = tf.maximum(length - crop, 0) + 1
    start = tf.random.stateless_uniform([], tf.stack([seed, seed // 7 + 1]), 0, span, tf.int32)
    return {**row, "audio": audio[start:start + crop]}


def _crop_fixed(row, crop):
    audio = row["audio"]
    length = tf.shape(audio)[0]
    audio = tf.pad(audio, [[0, tf.maximum(crop - length, 0)], [0, 0]])
    windows = tf.signal.frame(audio, crop, crop, axis=0)   # the seed's splits; tail dropped
    n = tf.shape(windows)[0]
    return tf.data.Dataset.from_tensor_slices({
        "audio": windows, "label": tf.fill([n], row["label"]),
        "caption": tf.fill([n], row["caption"])})


def make_dataset(prepared: Prepared, dp, seed: int = 0, repeat: bool = True,
                 batch_size: int | None = None) -> tf.data.Dataset:
    """Batches of {"audio": [B, crop, C] float32, "label": [B] int32, "caption": [B] string}."""
    crop = dp.crop_samples
    ds = tf.data.Dataset.load(prepared.path)
    if dp.crop == "fixed":
        ds = ds.flat_map(lambda row: _crop_fixed(row, crop))
        ds = ds.shuffle(dp.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
    else:
        ds = ds.shuffle(dp.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        seeds = tf.data.Dataset.random(seed=seed).map(lambda s: s % (2 ** 31))
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda row, s: _crop_random(row, s, crop), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)
    ds = ds.batch(batch_size or dp.batch_size, drop_remainder=repeat)
    return ds.prefetch(tf.data.AUTOTUNE)
