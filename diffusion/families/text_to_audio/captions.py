"""Text-encoder states of a data set's captions, computed once and cached on disk.

    table = CaptionStates.build(captions, params.network, cache_root=None)
    states, mask = table.lookup(batch["caption"])      # in-graph: [B, L, D] float32, [B, L] bool

The cache file `<cache root>/text/<fingerprint>.npz` (cache root: AUDIO_DIFFUSION_CACHE or
dataset/cache, as the audio cache) is keyed by the sorted unique captions, the encoder's preset
directory and config.json, and the token length; a changed caption or encoder makes a new file.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np
import tensorflow as tf

CACHE_VERSION = 1


class TextCacheError(ValueError):
    """The captions cannot be encoded (the message names the encoder or the caption)."""


def encoder_dir(preset: str) -> str:
    from network.text_encoder import default_preset_dir
    return os.path.abspath(os.path.expanduser(preset)) if preset else default_preset_dir()


def fingerprint(captions, preset_dir: str, max_length: int) -> str:
    h = hashlib.sha256()
    try:
        config = Path(preset_dir, "config.json").read_bytes()
    except OSError:
        config = b""
    h.update(json.dumps({"version": CACHE_VERSION, "encoder": preset_dir,
                         "max_length": max_length}).encode() + config)
    for caption in sorted(set(captions)):
        h.update(caption.encode() + b"\0")
    return h.hexdigest()[:20]


def cache_path(fp: str, cache_root=None) -> Path:
    from data.cache import cache_root as cache_root_of
    root = cache_root_of(cache_root)
    return root / "text" / f"{fp}.npz"


class CaptionStates:
    """Captions → rows of a constant table of encoder states, looked up in-graph."""

    def __init__(self, captions, states, mask, path: str, from_cache: bool):
        self.captions, self.path, self.from_cache = list(captions), path, from_cache
        self.states = tf.constant(states, tf.float32)               # [N, L, D]
        self.mask = tf.constant(mask, tf.bool)                       # [N, L]
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(self.captions),
                                                tf.range(len(self.captions), dtype=tf.int64)), -1)

    @classmethod
    def build(cls, captions, net, cache_root=None, batch: int = 16) -> "CaptionStates":
        preset = encoder_dir(net.text_encoder)
        captions = sorted(set(captions))
        path = cache_path(fingerprint(captions, preset, net.text_max_length), cache_root)
        if path.is_file():
            with np.load(path) as f:
                if list(f["captions"]) == captions:
                    return cls(captions, f["states"], f["mask"], str(path), True)
        from network.text_encoder import TextEncoder
        try:
            encoder = TextEncoder(preset, max_length=net.text_max_length)
        except (OSError, ValueError) as e:
            raise TextCacheError(f"network.text_encoder: {e}") from None
        if encoder.dim != net.text_dim:
            raise TextCacheError(f"{preset}: the text encoder's states have {encoder.dim} "
                                 f"features; set network.text_dim={encoder.dim}")
        parts = [encoder(captions[i:i + batch]) for i in range(0, len(captions), batch)]
        states = np.concatenate([p[0].numpy() for p in parts])
        mask = np.concatenate([p[1].numpy() for p in parts])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}.npz")
        np.savez(tmp, captions=np.asarray(captions), states=states, mask=mask)
        tmp.replace(path)                                            # atomic publish
        return cls(captions, states, mask, str(path), False)

    def lookup(self, captions):
        index = self.table.lookup(captions)
        check = tf.debugging.assert_non_negative(index, message="caption not in the text cache")
        with tf.control_dependencies([check]):
            return tf.gather(self.states, index), tf.gather(self.mask, index)
