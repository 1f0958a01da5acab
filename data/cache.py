"""The one cache root of the project: decoded audio (data/pipeline.py), caption states
(diffusion/families/text_to_audio/captions.py) and reference embeddings (evaluation/report.py)
live below it, each in its own sub-directory.

    root = cache_root()              # $AUDIO_DIFFUSION_CACHE, else dataset/cache
    root = cache_root("/tmp/c")      # an explicit root (--cache) wins
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "dataset" / "cache"


def cache_root(override=None) -> Path:
    """`override` if given, else $AUDIO_DIFFUSION_CACHE, else dataset/cache."""
    return Path(override or os.environ.get("AUDIO_DIFFUSION_CACHE", DEFAULT_CACHE))
