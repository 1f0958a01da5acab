"""Paired bootstrap intervals for differences between two versions scored on the same clips.

    d = paired_difference(a, b, seed=0)      # a, b: per-clip figures of two versions
    # → {"difference": mean(a − b), "low", "high", "n", "resamples", "level"}
    verdict(d, higher_is_better=False)       # "beats" | "loses" | "tie" (a against b)

The clips are resampled with replacement (the pairs stay together: one version's clip is only
ever compared with the other's rendering of the same clip), RESAMPLES times with a seeded
generator, and the interval is the percentile interval of the resampled mean differences
(Efron & Tibshirani 1993, §13.3). An accuracy is the mean of per-clip 0/1 correctness, so it
goes through the same function. "beats" / "loses" only when the interval excludes zero; at
fewer than 2 clips there is no interval (a ValueError).

One version's accuracy alone (k right of n clips) gets the Wilson score interval instead
(Wilson 1927; Newcombe 1998 recommends it over the normal approximation near 0 and 1):

    wilson_interval(1730, 1914)              # → (low, high), here about (0.890, 0.917)
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
VERDICTS = ("beats", "tie", "loses")


def paired_difference(a, b, resamples: int = RESAMPLES, seed: int = 0,
                      level: float = LEVEL) -> dict:
    """Mean of a − b over paired per-clip figures, with its percentile bootstrap interval."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise ValueError(f"a paired interval needs two equal 1-D lists of >= 2 clips, "
                         f"got shapes {np.shape(a)} and {np.shape(b)}")
    if resamples < 2 or not 0 < level < 1:
        raise ValueError(f"resamples must be >= 2 and level in (0, 1), got {resamples}, {level}")
    d, rng = a - b, np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // len(d))              # bounded memory for long clip lists
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        means[start:start + rows] = d[rng.integers(0, len(d), (rows, len(d)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"difference": float(d.mean()), "low": float(low), "high": float(high),
            "n": int(len(d)), "resamples": int(resamples), "level": float(level)}


def verdict(interval: dict, higher_is_better: bool) -> str:
    """"beats" when the interval of a − b excludes zero on a's better side, "loses" on its
    worse side, else "tie"."""
    if interval["low"] > 0:
        return "beats" if higher_is_better else "loses"
    if interval["high"] < 0:
        return "loses" if higher_is_better else "beats"
    return "tie"


def compare(a, b, higher_is_better: bool, resamples: int = RESAMPLES, seed: int = 0,
            level: float = LEVEL) -> dict:
    """paired_difference(a, b) with its verdict."""
    interval = paired_difference(a, b, resamples, seed, level)
    return {**interval, "verdict": verdict(interval, higher_is_better)}


def wilson_interval(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n (e.g. k of n clips recognised)."""
    if not 0 <= k <= n or n < 1 or not 0 < level < 1:
        raise ValueError(f"a Wilson interval needs 0 <= k <= n, n >= 1 and level in (0, 1), "
                         f"got k={k}, n={n}, level={level}")
    z = NormalDist().inv_cdf((1 + level) / 2)
    p, z2 = k / n, z * z / n
    centre, half = (p + z2 / 2) / (1 + z2), z * np.sqrt(p * (1 - p) / n + z2 / (4 * n)) / (1 + z2)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
