"""Reading a WAV's chunks ourselves: the audio that a streamed, truncated or 64-bit WAV holds.

libsndfile and tensorflow-io trust the header's data-chunk size. Streaming encoders and live
recorders leave it 0 or 0xFFFFFFFF, a crash mid-recording leaves it larger than the file, and
RF64/BW64 (WAVs over 4 GB) keep the true size in a `ds64` chunk. This module finds where the
samples really are, so PCM and float WAVs are read up to the last whole frame in the file.

    layout = inspect("take1.wav")            # None: not a RIFF/RF64/BW64 WAVE file
    layout.damage                            # "" | a phrase for the report
    audio = read_frames("take1.wav", layout)   # float32 [T, C], like soundfile
"""
from __future__ import annotations

import dataclasses
import os
import struct

import numpy as np

UNSET = 0xFFFFFFFF
PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE


@dataclasses.dataclass(frozen=True)
class WavLayout:
    container: str          # RIFF | RF64 | BW64
    tag: int                # format tag (the sub-format's, for WAVE_FORMAT_EXTENSIBLE)
    channels: int
    sample_rate: int
    bits: int
    block_align: int
    data_offset: int        # bytes before the first sample
    declared: int           # the header's data size in bytes (RF64/BW64: from ds64)
    available: int          # bytes from data_offset to the end of the file

    @property
    def readable(self) -> bool:
        """PCM 8/16/24/32-bit or float 32/64-bit: read by read_frames."""
        return (self.tag, self.bits) in _DTYPES and self.block_align == \
            self.channels * self.bits // 8 and self.channels > 0

    @property
    def frames(self) -> int:
        """Whole frames in the file (never past the declared size when that is consistent)."""
        size = self.available if self._broken else min(self.declared, self.available)
        return size // max(self.block_align, 1)

    @property
    def _broken(self) -> bool:
        """The declared size is unset (0, 0xFFFFFFFF) or runs past the end of the file."""
        return self.available > 0 and (self.declared in (0, UNSET) or
                                       self.declared > self.available)

    @property
    def damage(self) -> str:
        """"" when the declared size fits the file, else what is wrong, for the report."""
        if not self._broken:
            return ""
        read = f"read {self.frames / self.sample_rate:.2f} s"
        if self.container != "RIFF" and self.declared == 0:
            return f"{read}; its ds64 data size is 0 (a streamed WAV)"
        if self.declared in (0, UNSET):
            return (f"{read}; its data-chunk size is "
                    f"{'0' if self.declared == 0 else '0xFFFFFFFF'} (a streamed WAV)")
        claimed = self.declared / max(self.block_align, 1) / self.sample_rate
        return f"recovered {self.frames / self.sample_rate:.2f} s of {claimed:.2f} s (truncated)"


# (format tag, bits) → (numpy dtype of the stored sample, scale to [-1, 1], offset)
_DTYPES = {(PCM, 8): ("u1", 1 / 128, -128.0), (PCM, 16): ("<i2", 1 / 32768, 0.0),
           (PCM, 24): (None, 1 / 2 ** 31, 0.0), (PCM, 32): ("<i4", 1 / 2 ** 31, 0.0),
           (FLOAT, 32): ("<f4", 1.0, 0.0), (FLOAT, 64): ("<f8", 1.0, 0.0)}


def inspect(path) -> WavLayout | None:
    """The WAVE layout of `path`, or None when it is not a RIFF/RF64/BW64 WAVE file with a fmt
    and a data chunk (then libsndfile's verdict stands)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64",
                                                                            b"BW64"):
                return None
            container, fmt, ds64_data = head[:4].decode(), None, None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"data":
                    declared = ds64_data if container != "RIFF" and ds64_data is not None \
                        and csize == UNSET else csize
                    if fmt is None:
                        return None
                    offset = f.tell()
                    return WavLayout(container, *fmt, offset, declared, size - offset)
                body = f.read(min(csize, 64)) if cid in (b"fmt ", b"ds64") else b""
                if cid == b"fmt " and len(body) >= 16:
                    tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
                    if tag == EXTENSIBLE and len(body) >= 26:
                        tag = struct.unpack("<H", body[24:26])[0]      # sub-format GUID
                    fmt = (tag, channels, rate, bits, align)
                elif cid == b"ds64" and len(body) >= 16:
                    ds64_data = struct.unpack("<Q", body[8:16])[0]
                f.seek(f.tell() - len(body) + csize + (csize & 1))      # chunks are word-aligned
    except (OSError, struct.error):
        return None


def read_frames(path, layout: WavLayout, start: int = 0, stop: int = -1) -> np.ndarray:
    """Frames [start, stop) (stop −1: to the last whole frame) → float32 [T, channels]."""
    stop = layout.frames if stop < 0 else min(stop, layout.frames)
    count = max(stop - start, 0)
    width = layout.bits // 8
    dtype, scale, offset = _DTYPES[(layout.tag, layout.bits)]
    raw = np.fromfile(path, np.uint8, count * layout.block_align,
                      offset=layout.data_offset + start * layout.block_align)
    if dtype is None:                                            # 24-bit: 3 bytes → int32 << 8
        b = raw.reshape(-1, 3).astype(np.int32)
        values = (b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)
    else:
        values = raw[:len(raw) // width * width].view(dtype)
    audio = (values.astype(np.float64) + offset) * scale
    return audio.astype(np.float32).reshape(-1, layout.channels)
