"""Reading audio files: header probe (soundfile) and in-graph decoding (tensorflow-io).

This is the only module that imports tensorflow_io. Every decoder returns float32 [T, C] in
[-1, 1]. Formats: WAV 8/16/24/32-bit PCM and 32/64-bit float, FLAC, OGG/Vorbis, MP3.
Backends, chosen per file by `probe(path, prefer)`:
  "tfio"       tensorflow-io, in-graph, for every format it reads right;
  "soundfile"  libsndfile in a tf.numpy_function (it releases the GIL, so tf.data's parallel
               map still runs files side by side);
  "auto"       tfio for WAV, soundfile for FLAC/OGG/MP3, where libsndfile measured 4–7× faster
               than tfio's decoders on this CPU (benchmarks/bench_pipeline.py prints both).
32-bit integer and 64-bit float WAV (which tfio misreads) always go through soundfile, and so
does everything when tfio's ops cannot load (TF ≥ 2.18), with one warning.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os

import numpy as np
import soundfile as sf
import tensorflow as tf

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3")
MAX_SAMPLE_RATE = 768_000

# Decoder ids (what the probe picks, what the graph switches on).
SOUNDFILE, WAV_U8, WAV_16, WAV_24, WAV_F32, FLAC_16, FLAC_24, VORBIS, MP3 = range(9)
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

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


DECODER_PREFERENCES = ("auto", "tfio", "soundfile")


def probe(path: str, prefer: str = "tfio") -> AudioInfo:
    """Reads the header only. Raises AudioError naming the file for anything unusable."""
    try:
        if os.path.getsize(path) == 0:
            raise AudioError(f"{path}: empty file (0 bytes)")
        info = sf.info(path)
    except PermissionError:
        raise AudioError(f"{path}: permission denied") from None
    except (RuntimeError, sf.LibsndfileError, OSError) as e:
        reason = str(e).split(":")[-1].strip() or "not a readable audio file"
        raise AudioError(f"{path}: not a readable audio file ({reason})") from None
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: permission denied")
    if not 1 <= info.samplerate <= MAX_SAMPLE_RATE:
        raise RateError(f"{path}: impossible sample rate {info.samplerate} Hz")
    if info.channels < 1:
        raise AudioError(f"{path}: no audio channels")
    if info.frames <= 0:
        raise AudioError(f"{path}: empty (0 samples)")
    decoder = SOUNDFILE
    if prefer == "tfio" or (prefer == "auto" and info.format == "WAV"):
        decoder = _TFIO_KINDS.get((info.format, info.subtype), SOUNDFILE) if tfio_available() \
            else SOUNDFILE
    return AudioInfo(path, info.format, info.subtype, int(info.samplerate), int(info.channels),
                     int(info.frames), decoder)


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


def _soundfile_read(path, start=0, stop=-1):
    path = path.item() if isinstance(path, np.ndarray) else path
    stop = None if int(stop) < 0 else int(stop)
    data, _ = sf.read(path.decode() if isinstance(path, bytes) else path, dtype="float32",
                      always_2d=True, start=int(start), stop=stop)
    return data


def decode(path, decoder, channels, start=0, stop=-1):
    """In-graph: file path (scalar string) → float32 [T, channels] using decoder id `decoder`.
    With start/stop (a segment of a long file) only those frames are read, through soundfile."""
    def fallback():
        audio = tf.numpy_function(_soundfile_read, [path, start, stop], tf.float32,
                                  stateful=False)
        return tf.reshape(audio, [-1, channels])

    if not tfio_available() or (isinstance(stop, int) and stop != -1):
        return fallback()
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
    }
    audio = tf.switch_case(tf.cast(decoder, tf.int32),
                           [lambda f=f: tf.reshape(tf.cast(f(), tf.float32), [-1, channels])
                            for _, f in sorted(branches.items())])
    return audio


def read(path: str) -> tuple[np.ndarray, int]:
    """Eager convenience: (float32 [T, C], sample_rate) through the same decoders."""
    info = probe(path)
    try:
        audio = decode(tf.constant(path), info.decoder, info.channels)
    except (tf.errors.OpError, RuntimeError, ValueError) as e:
        raise AudioError(f"{path}: cannot decode ({str(e).strip().splitlines()[0][:100]})") \
            from None
    return audio.numpy(), info.sample_rate
