"""A stored dataset of mel-spectrogram images (teticio's audio_to_images), and its reader.

    python -m data.mel_images --data dataset/chorales --out dataset/chorale-images \
        --resolution 64 --hop-length 512 [--sample-rate 22050] [--n-fft 2048] [--top-db 80]

    count = build_images("dataset/chorales", "dataset/chorale-images", Mel(64, 64, hop_length=512))
    ds = image_dataset("dataset/chorale-images", mel_config, batch_size=8, seed=0)
    # → {"image": uint8 [B, y_res, x_res]}, shuffled, repeated

`train.py --model mel-unet|mel-vae --data IMAGE_DIR` reads such a directory without recomputing.
--resolution is "N" (N×N) or "WxH" (x_res frames × y_res mel bands).

The audio goes through the project's pipeline (decode, mono, the project's resampler to the
Mel's rate, peak normalisation, then every whole slice of x_res·hop − 1 samples of each file, as
teticio's script takes every slice); each slice becomes one PNG (row 0 = the lowest mel band, as
data/mel.py). The directory holds the PNGs, metadata.jsonl (one row per image: file, label,
caption) and mel_config.json, so training reads images without recomputing spectrograms and can
check that they were made with its Mel parameters.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import types

if __name__ == "__main__":             # the CLI: no TF start-up chatter (set before importing TF)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

from data.mel import CONFIG_NAME, Mel
from data.pipeline import make_dataset, prepare
from data.sources import DataError

METADATA = "metadata.jsonl"
# The rest of the pipeline settings (data/pipeline.py) when no run's data params are given:
# params.DataParams' defaults (data/ does not import the model params; a test keeps them equal).
PIPELINE_DEFAULTS = {"channels": "mono", "normalize": "peak", "normalize_level_db": -1.0,
                     "decoder": "auto", "segment_seconds": 60.0, "recover": "warn"}


def is_image_dataset(path) -> bool:
    return os.path.isfile(os.path.join(path, CONFIG_NAME)) and \
        os.path.isfile(os.path.join(path, METADATA))


def build_images(data, out_dir, mel: Mel, data_params=None, skip_silent: bool = True) -> int:
    """Writes one PNG per whole slice of every file under `data`; returns the image count.
    `data_params`: a run's data section (decoder, normalisation; default PIPELINE_DEFAULTS).
    Silent slices (every pixel equal: power_to_db of zeros) are skipped, as teticio does."""
    if os.path.exists(os.path.join(out_dir, METADATA)):
        raise DataError(f"{out_dir}: already holds an image dataset (use a new directory)")
    settings = dataclasses.asdict(data_params) if data_params is not None else PIPELINE_DEFAULTS
    dp = types.SimpleNamespace(**{**settings, "sample_rate": mel.sr, "crop": "fixed",
                                  "crop_samples": mel.slice_size, "short_clips": "pad",
                                  "shuffle_buffer": 1})         # file order, slice order
    prepared = prepare(data, dp)
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for batch in make_dataset(prepared, dp, repeat=False, batch_size=16):
        images = mel.audio_to_images(batch["audio"].numpy()[..., 0])
        for image, label, caption in zip(images, batch["label"].numpy(),
                                         batch["caption"].numpy()):
            if skip_silent and image.min() == image.max():
                continue
            name = f"image_{len(rows):06d}.png"
            tf.io.write_file(os.path.join(out_dir, name),
                             tf.io.encode_png(tf.constant(image[..., None])))
            rows.append({"file": name, "label": int(label), "caption": caption.decode()})
    if not rows:
        raise DataError(f"{data}: no non-silent slice of {mel.slice_size} samples")
    with open(os.path.join(out_dir, METADATA), "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    mel.save_config(out_dir)
    return len(rows)


def check_config(path, expected: dict) -> None:
    """The stored images must come from the Mel the model is configured with."""
    stored = Mel.from_config(path).get_config()
    for key, value in expected.items():
        if stored[key] != value:
            raise DataError(f"{os.path.join(path, CONFIG_NAME)}: {key} is {stored[key]!r} but "
                            f"the run wants {value!r}; rebuild the images or change the params")


def read_rows(path):
    with open(os.path.join(path, METADATA)) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows:
        raise DataError(f"{os.path.join(path, METADATA)}: no images listed")
    return rows


def image_dataset(path, expected_config: dict, batch_size: int, seed: int = 0,
                  repeat: bool = True, shuffle_buffer: int = 512) -> tf.data.Dataset:
    """Batches {"image": uint8 [B, y_res, x_res], "label": [B]} read from the stored PNGs."""
    check_config(path, expected_config)
    rows = read_rows(path)
    files = [os.path.join(path, r["file"]) for r in rows]
    labels = np.array([r["label"] for r in rows], np.int32)
    shape = [expected_config["y_res"], expected_config["x_res"]]

    def load(file, label):
        image = tf.io.decode_png(tf.io.read_file(file), channels=1)[..., 0]
        return {"image": tf.ensure_shape(image, shape), "label": label}

    ds = tf.data.Dataset.from_tensor_slices((files, labels)).map(load)
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)


def parse_resolution(text: str):
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) <= 0:
        raise ValueError(f"--resolution must be N or WxH (positive integers), got {text!r}")
    return (values[0], values[0]) if len(values) == 1 else tuple(values)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m data.mel_images",
                                description="Store a directory of audio as mel-spectrogram images")
    p.add_argument("--data", required=True, help="audio directory (recursive) or metadata.jsonl")
    p.add_argument("--out", required=True, help="new output directory")
    p.add_argument("--resolution", default="256", help="N or WxH (default 256)")
    p.add_argument("--hop-length", type=int, default=512)
    p.add_argument("--sample-rate", type=int, default=22050)
    p.add_argument("--n-fft", type=int, default=2048)
    p.add_argument("--top-db", type=float, default=80.0)
    args = p.parse_args(argv)
    import logging
    logging.getLogger("tensorflow").setLevel(logging.ERROR)   # our own one-line errors only
    try:
        x_res, y_res = parse_resolution(args.resolution)
        mel = Mel(x_res, y_res, args.sample_rate, args.n_fft, args.hop_length, args.top_db)
        start = time.perf_counter()
        count = build_images(args.data, args.out, mel)
    except (ValueError, DataError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {count} images of {y_res}×{x_res} to {args.out} "
          f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
