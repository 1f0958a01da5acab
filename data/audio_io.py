"""Reading audio files: header probe (soundfile) and in-graph decoding (tensorflow-io).

This is the only module that imports tensorflow_io (and PyAV). Every decoder returns float32
[T, C] in [-1, 1]. Formats: WAV 8/16/24/32-bit PCM and 32/64-bit float, FLAC, OGG/Vorbis,
Opus (.opus, Ogg), MP3; and what phones and browsers record: AAC in .m4a/.mp4 or ADTS .aac,
Opus/Vorbis in WebM/Matroska (.webm/.weba/.mka), read by PyAV (FFmpeg's libraries).
Backends, chosen per file by `probe(path, prefer)`:
  "tfio"       tensorflow-io, in-graph, for every format it reads right;
  "soundfile"  libsndfile in a tf.numpy_function (it releases the GIL, so tf.data's parallel
               map still runs files side by side); a file libsndfile cannot open whose name is
               one of FFMPEG_EXTENSIONS is decoded there by PyAV instead (decoder id SOUNDFILE
               too: the host-side reader);
  "auto"       tfio for WAV, soundfile for FLAC/OGG/MP3, where libsndfile measured 4–7× faster
               than tfio's decoders on this CPU (benchmarks/bench_pipeline.py prints both).
  "pcm"        the project's own WAV reader (data/wav_header.py) for PCM/float WAVs whose
               header lies about the data size (streamed, truncated) and for RF64/BW64.
32-bit integer and 64-bit float WAV (which tfio misreads) always go through soundfile, and so
does everything when tfio's ops cannot load (TF ≥ 2.18), with one warning. G.711, IMA ADPCM,
GSM 6.10, AIFF/AIFC, W64 and CAF are libsndfile's. A compressed file cut off mid-way decodes up
to the damage (block by block) instead of failing whole.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
from fractions import Fraction

import numpy as np
import soundfile as sf
import tensorflow as tf

from data import wav_header

log = logging.getLogger(__name__)

# libsndfile's (Opus in Ogg too: libsndfile 1.2 decodes it, at the rate in its header).
SNDFILE_EXTENSIONS = (".wav", ".wave", ".bwf", ".rf64", ".w64", ".flac", ".ogg", ".oga", ".opus",
                      ".mp3", ".aif", ".aiff", ".aifc", ".caf")
# PyAV's, when libsndfile cannot open the file: AAC in MP4 or ADTS, Opus/Vorbis in WebM/Matroska
# (and an .opus file libsndfile rejects).
FFMPEG_EXTENSIONS = (".m4a", ".mp4", ".aac", ".webm", ".weba", ".mka", ".opus")
AUDIO_EXTENSIONS = tuple(dict.fromkeys(SNDFILE_EXTENSIONS + FFMPEG_EXTENSIONS))
MAX_SAMPLE_RATE = 768_000

# Decoder ids (what the probe picks, what the graph switches on).
SOUNDFILE, WAV_U8, WAV_16, WAV_24, WAV_F32, FLAC_16, FLAC_24, VORBIS, MP3, PCM_RAW = range(10)
_TFIO_KINDS = {("WAV", "PCM_U8"): WAV_U8, ("WAV", "PCM_16"): WAV_16, ("WAV", "PCM_24"): WAV_24,
               ("WAV", "FLOAT"): WAV_F32, ("FLAC", "PCM_16"): FLAC_16,
               ("FLAC", "PCM_24"): FLAC_24, ("OGG", "VORBIS"): VORBIS,
               ("MP3", "MPEG_LAYER_III"): MP3}


class AudioError(ValueError):
    """A file that cannot be used (it is skipped and reported); the message names the file."""


class RateError(AudioError):
    """A header sample rate no audio can have: an error, not a skip."""


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    path: str
    format: str        # WAV, FLAC, OGG, MP3
    subtype: str       # PCM_16, FLOAT, VORBIS, …
    sample_rate: int
    channels: int
    frames: int
    decoder: int       # one of the decoder ids above
    note: str = ""     # how it was read or what was recovered, for the report ("" = normal)
    damaged: bool = False   # the header lies about the data (data.recover decides)

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


DECODER_PREFERENCES = ("auto", "tfio", "soundfile")


def probe(path: str, prefer: str = "tfio") -> AudioInfo:
    """Reads the header only. Raises AudioError naming the file for anything unusable."""
    try:
        if os.path.getsize(path) == 0:
            raise AudioError(f"{path}: empty file (0 bytes)")
        if not os.access(path, os.R_OK):
            raise PermissionError
        layout = wav_header.inspect(path)            # None unless a RIFF/RF64/BW64 WAVE
        info = sf.info(path)
        fmt, subtype = info.format, info.subtype
        rate, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
    except PermissionError:
        raise AudioError(f"{path}: permission denied") from None
    except (RuntimeError, sf.LibsndfileError, OSError) as e:
        if (layout is None or not layout.readable) and path.lower().endswith(FFMPEG_EXTENSIONS):
            return _av_probe(path)                        # M4A/AAC, WebM/Matroska
        if layout is None or not layout.readable:         # e.g. BW64, which libsndfile lacks
            reason = str(e).split(":")[-1].strip() or "not a readable audio file"
            raise AudioError(f"{path}: not a readable audio file ({reason})") from None
        fmt, subtype = layout.container, f"{'FLOAT' if layout.tag == 3 else 'PCM'}_{layout.bits}"
        rate, channels, frames, info = layout.sample_rate, layout.channels, layout.frames, None
    if not 1 <= rate <= MAX_SAMPLE_RATE:
        raise RateError(f"{path}: impossible sample rate {rate} Hz")
    if channels < 1:
        raise AudioError(f"{path}: no audio channels")
    decoder, note, damaged = None, "", bool(layout and layout.damage)
    if layout is not None and layout.readable and (damaged or info is None or
                                                   layout.container != "RIFF"):
        decoder, frames = PCM_RAW, layout.frames        # the samples that are really there
        note = layout.damage or f"{layout.container} container, read by the project's WAV reader"
    elif damaged:                                       # a codec: libsndfile reads what it can
        decoder, note = SOUNDFILE, layout.damage
    if frames <= 0:
        raise AudioError(f"{path}: empty (0 samples)")
    if decoder is None:
        decoder = SOUNDFILE
        if prefer == "tfio" or (prefer == "auto" and fmt == "WAV"):
            decoder = _TFIO_KINDS.get((fmt, subtype), SOUNDFILE) if tfio_available() \
                else SOUNDFILE
    return AudioInfo(path, fmt, subtype, rate, channels, frames, decoder, note, damaged)


@functools.lru_cache(maxsize=1)
def tfio_available() -> bool:
    """True when tensorflow-io's compiled audio ops load (TF 2.16–2.17)."""
    try:
        import tensorflow_io as tfio
        # A 1-sample 16-bit WAV: exercises the op library, not just the Python import.
        header = (b"RIFF" + (38).to_bytes(4, "little") + b"WAVEfmt " +
                  (16).to_bytes(4, "little") + (1).to_bytes(2, "little") +
                  (1).to_bytes(2, "little") + (8000).to_bytes(4, "little") +
                  (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") +
                  (16).to_bytes(2, "little") + b"data" + (2).to_bytes(4, "little") + b"\0\0")
        tfio.audio.decode_wav(tf.constant(header), dtype=tf.int16)
        return True
    except Exception as e:  # ImportError, NotFoundError (undefined symbol), …
        log.warning("tensorflow-io audio ops unavailable (%s); decoding with soundfile instead",
                    str(e).splitlines()[0][:120])
        return False


def accepted_formats() -> str:
    """One line for error messages: the formats a data set may hold, by name and extension."""
    pyav = "" if _pyav() is not None else " (these need PyAV: pip install av)"
    return ("accepted formats: WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF, W64, CAF (" +
            " ".join(SNDFILE_EXTENSIONS) + "); AAC in MP4/M4A/ADTS, Opus/Vorbis in WebM/Matroska ("
            + " ".join(e for e in FFMPEG_EXTENSIONS if e not in SNDFILE_EXTENSIONS) + ")" + pyav)


@functools.lru_cache(maxsize=1)
def _pyav():
    """PyAV (FFmpeg's libraries, bundled in its wheel), or None when it is not installed."""
    try:
        import av
        return av
    except ImportError:
        return None


def _container_name(container, path: str) -> str:
    name = container.format.name
    if "mp4" in name.split(","):
        return "MP4"
    if "matroska" in name.split(","):
        return "WEBM" if path.lower().endswith((".webm", ".weba")) else "MATROSKA"
    return name.split(",")[0].upper()                   # AAC (ADTS), OGG, …


def _declared_frames(container, stream):
    """The exact length an MP4's header gives (its edit list drops the encoder's priming and
    the last frame's padding; FFmpeg's decoder output keeps the padding), else None: other
    containers' durations are estimates (Matroska's in ms, ADTS's from the bit rate)."""
    rate = stream.codec_context.sample_rate
    if ("mp4" in container.format.name.split(",") and stream.duration and stream.time_base
            and Fraction(stream.time_base) <= Fraction(1, rate)):
        return int(round(stream.duration * Fraction(stream.time_base) * rate))
    return None


def _mp4_present(container, stream, declared: int) -> int:
    """How many of an MP4's declared frames the file holds: a recording cut off mid-way keeps
    its header (moov first) but not all the packets it lists. Reads the packets (not decoding
    them) of the last 2 s, and of the whole file only when those are missing or cut."""
    av, rate = _pyav(), stream.codec_context.sample_rate
    unit = Fraction(stream.time_base) * rate                  # samples per time-base tick
    origin = stream.start_time or 0
    for start in (max(0, declared - 2 * rate), 0):
        end, cut = None, False
        try:
            container.seek(int(start / unit) + origin, stream=stream, backward=True)
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    if packet.is_corrupt:                     # the file ends inside it
                        cut = True
                        break
                    end = int((packet.pts - origin + (packet.duration or 0)) * unit)
        except av.error.FFmpegError:
            cut = True
        if end is not None and (not cut or start == 0):
            return min(end, declared)
    return 0


def _av_blocks(container, stream, failure: list):
    """float32 [n, C] blocks of `stream`, in order. A file damaged mid-way ends at the damage
    (the error is appended to `failure`); an error before the first block is raised."""
    av, channels, started = _pyav(), stream.codec_context.channels, False
    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.error.FFmpegError as e:
            if not started:
                raise
            failure.append(e)
            return
        data = frame.to_ndarray()
        data = data.T if frame.format.is_planar else data.reshape(-1, frame.layout.nb_channels)
        if data.shape[1] != channels:
            raise ValueError(f"channel count changes mid-stream ({channels} → {data.shape[1]})")
        if data.dtype.kind != "f":
            data = ((data.astype(np.float32) - 128) / 128 if data.dtype == np.uint8 else
                    data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1)))
        started = True
        yield data.astype(np.float32, copy=False)


def _av_probe(path: str) -> AudioInfo:
    """probe() for what libsndfile cannot open: the first audio stream, through PyAV. Its
    length is the MP4 header's, or else counted by decoding (nothing else is exact)."""
    av = _pyav()
    if av is None:
        raise AudioError(f"{path}: {os.path.splitext(path)[1]} files need PyAV "
                         f"(pip install av), which is not installed")
    failure: list = []
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: no audio stream ({container.format.long_name})")
            stream = container.streams.audio[0]
            ctx = stream.codec_context
            rate, channels = int(ctx.sample_rate or 0), int(ctx.channels or 0)
            fmt, codec = _container_name(container, path), ctx.name.upper()
            if not 1 <= rate <= MAX_SAMPLE_RATE:
                raise RateError(f"{path}: impossible sample rate {rate} Hz")
            if channels < 1:
                raise AudioError(f"{path}: no audio channels")
            declared = _declared_frames(container, stream)
            estimate = container.duration / 1e6 if container.duration else None
            if declared is not None:
                frames = _mp4_present(container, stream, declared)
                estimate = declared / rate
            else:
                frames = sum(len(b) for b in _av_blocks(container, stream, failure))
    except (av.error.FFmpegError, ValueError) as e:
        if isinstance(e, AudioError):
            raise
        reason = str(e).split(":")[0].split("] ")[-1].strip() or "not a readable audio file"
        raise AudioError(f"{path}: not a readable audio file ({reason})") from None
    if frames <= 0:
        raise AudioError(f"{path}: empty (0 samples)")
    note, damaged = "", False
    # Matroska's duration is in ms and counts the codec delay: only a real shortfall is damage
    # (an MP4's length is exact).
    if failure or (estimate is not None and
                   frames < estimate * rate - (0 if declared is not None else 0.1 * rate)):
        damaged = True
        note = f"recovered {frames / rate:.2f} s" + (f" of {estimate:.2f} s" if estimate else "") \
            + " (truncated)"
    return AudioInfo(path, fmt, codec, rate, channels, frames, SOUNDFILE, note, damaged)


def _av_read(path: str, start: int = 0, stop: int = -1) -> np.ndarray:
    """Frames [start, stop) of the first audio stream, through PyAV: decoded from the start
    (timestamps in Matroska are in ms, so no seeking), up to an MP4 header's exact length."""
    av = _pyav()
    with av.open(path) as container:
        stream = container.streams.audio[0]
        end = _declared_frames(container, stream)
        if stop >= 0:
            end = stop if end is None else min(end, stop)
        parts, position = [], 0
        for block in _av_blocks(container, stream, []):
            lo, hi = max(start - position, 0), len(block) if end is None else end - position
            if hi > lo:
                parts.append(block[lo:hi])
            position += len(block)
            if end is not None and position >= end:
                break
        channels = stream.codec_context.channels
    return np.concatenate(parts) if parts else np.zeros((0, channels), np.float32)


def _path(path):
    path = path.item() if isinstance(path, np.ndarray) else path
    return path.decode() if isinstance(path, bytes) else path


def _soundfile_read(path, start=0, stop=-1, block=1024):
    """Frames [start, stop) through libsndfile. A file damaged mid-way is read again block by
    block and gives the blocks before the damage (an error only when not one block decodes)."""
    stop = None if int(stop) < 0 else int(stop)
    try:
        return sf.read(_path(path), dtype="float32", always_2d=True, start=int(start),
                       stop=stop)[0]
    except (RuntimeError, sf.LibsndfileError):
        pass
    parts = []
    try:
        f = sf.SoundFile(_path(path))
    except (RuntimeError, sf.LibsndfileError):
        if _path(path).lower().endswith(FFMPEG_EXTENSIONS) and _pyav() is not None:
            return _av_read(_path(path), int(start), -1 if stop is None else stop)
        raise
    with f:
        if int(start):                    # (GSM 6.10 and some codecs cannot seek at all)
            f.seek(int(start))
        remaining = (stop - int(start)) if stop is not None else None
        try:
            while remaining is None or remaining > 0:
                n = block if remaining is None else min(block, remaining)
                data = f.read(n, dtype="float32", always_2d=True)
                if not len(data):
                    break
                parts.append(data)
                remaining = None if remaining is None else remaining - len(data)
        except (RuntimeError, sf.LibsndfileError):
            if not parts:
                raise
    return np.concatenate(parts)


def _pcm_read(path, start=0, stop=-1):
    """Frames [start, stop) through data/wav_header.py (header sizes it cannot trust)."""
    path = _path(path)
    return wav_header.read_frames(path, wav_header.inspect(path), int(start), int(stop))


def decode(path, decoder, channels, start=0, stop=-1):
    """In-graph: file path (scalar string) → float32 [T, channels] using decoder id `decoder`.
    With start/stop (a segment of a long file) only those frames are read, through soundfile
    or (decoder PCM_RAW) the project's WAV reader."""
    def reader(fn):
        return lambda: tf.reshape(tf.numpy_function(fn, [path, start, stop], tf.float32,
                                                    stateful=False), [-1, channels])
    fallback, raw = reader(_soundfile_read), reader(_pcm_read)

    if isinstance(decoder, int) and decoder in (SOUNDFILE, PCM_RAW):
        return raw() if decoder == PCM_RAW else fallback()
    if not tfio_available() or (isinstance(stop, int) and stop != -1):
        return tf.cond(tf.equal(decoder, PCM_RAW), raw, fallback)
    import tensorflow_io as tfio
    contents = lambda: tf.io.read_file(path)  # noqa: E731 — read only on the branch taken
    scale = lambda x, bits: tf.cast(x, tf.float32) / float(2 ** (bits - 1))  # noqa: E731
    branches = {
        SOUNDFILE: fallback,
        WAV_U8: lambda: (tf.cast(tfio.audio.decode_wav(contents(), dtype=tf.uint8), tf.float32)
                         - 128.0) / 128.0,
        WAV_16: lambda: scale(tfio.audio.decode_wav(contents(), dtype=tf.int16), 16),
        WAV_24: lambda: scale(tfio.audio.decode_wav(contents(), dtype=tf.int32), 32),
        WAV_F32: lambda: tfio.audio.decode_wav(contents(), dtype=tf.float32),
        FLAC_16: lambda: scale(tfio.audio.decode_flac(contents(), dtype=tf.int16), 16),
        FLAC_24: lambda: scale(tfio.audio.decode_flac(contents(), dtype=tf.int32), 32),
        VORBIS: lambda: tfio.audio.decode_vorbis(contents()),
        MP3: lambda: tfio.audio.decode_mp3(contents()),
        PCM_RAW: raw,
    }
    audio = tf.switch_case(tf.cast(decoder, tf.int32),
                           [lambda f=f: tf.reshape(tf.cast(f(), tf.float32), [-1, channels])
                            for _, f in sorted(branches.items())])
    return audio


def read(path) -> tuple[np.ndarray, int]:
    """Eager convenience: (float32 [T, C], sample_rate) through the same decoders; a file
    tensorflow-io cannot decode is read by libsndfile (as the pipeline does). `path`: str or
    os.PathLike."""
    path = os.fspath(path)
    info = probe(path)
    decoders = [info.decoder] + ([SOUNDFILE] if info.decoder not in (SOUNDFILE, PCM_RAW) else [])
    for decoder in decoders:
        try:
            audio = decode(tf.constant(path), decoder, info.channels)
            return audio.numpy(), info.sample_rate
        except (tf.errors.OpError, RuntimeError, ValueError) as e:
            error = e
    raise AudioError(f"{path}: cannot decode ({str(error).strip().splitlines()[0][:100]})") \
        from None
