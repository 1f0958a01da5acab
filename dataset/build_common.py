"""Small helpers shared by build_chorales.py and build_digits.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16000


class BuildError(RuntimeError):
    """A missing program, SoundFont or other precondition of the build."""


def require_program(name: str, package: str) -> str:
    """Return the path of an external program, or explain how to install it."""
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"'{name}' not found on PATH; install it with: apt-get install {package}")
    return path


def require_file(path: str | Path, package: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise BuildError(f"{path} not found; install it with: apt-get install {package}")
    return path


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited polyphase resampling (deterministic)."""
    if sr_in == sr_out:
        return x.astype(np.float64)
    g = np.gcd(sr_in, sr_out)
    return resample_poly(x.astype(np.float64), sr_out // g, sr_in // g)


def db_to_amp(db: float) -> float:
    return 10.0 ** (db / 20.0)


def dbfs(x: np.ndarray) -> float:
    """RMS level in dB relative to full scale (1.0)."""
    rms = np.sqrt(np.mean(np.square(x, dtype=np.float64)))
    return 20.0 * np.log10(max(rms, 1e-12))


def peak_normalise(x: np.ndarray, peak_db: float) -> np.ndarray:
    peak = np.max(np.abs(x))
    if peak <= 0:
        raise BuildError("cannot normalise a silent signal")
    return x * (db_to_amp(peak_db) / peak)


def fade(x: np.ndarray, ms: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Raised-cosine fade in and out of `ms` milliseconds."""
    n = int(round(ms * sr / 1000))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
    y = x.copy()
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y


def write_flac(path: Path, x: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write mono 16-bit FLAC at the highest compression level."""
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, pcm, sr, format="FLAC", subtype="PCM_16", compression_level=1.0)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
