"""A stored dataset of mel-spectrogram images (teticio's audio_to_images), and its reader.

    count = build_images("dataset/chorales", "dataset/chorale-images", Mel(64, 64, hop_length=512))
    ds = image_dataset("dataset/chorale-images", mel_config, batch_size=8, seed=0)
    # → {"image": uint8 [B, y_res, x_res]}, shuffled, repeated

The audio goes through the project's pipeline (decode, mono, the project's resampler to the
Mel's rate, peak normalisation, then every whole slice of x_res·hop − 1 samples of each file, as
teticio's script takes every slice); each slice becomes one PNG (row 0 = the lowest mel band, as
data/mel.py). The directory holds the PNGs, metadata.jsonl (one row per image: file, label,
caption) and mel_config.json, so training reads images without recomputing spectrograms and can
check that they were made with its Mel parameters.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from data.mel import CONFIG_NAME, Mel
from data.pipeline import make_dataset, prepare
from data.sources import DataError

METADATA = "metadata.jsonl"


def is_image_dataset(path) -> bool:
    return os.path.isfile(os.path.join(path, CONFIG_NAME)) and \
        os.path.isfile(os.path.join(path, METADATA))


def build_images(data, out_dir, mel: Mel, data_params, skip_silent: bool = True) -> int:
    """Writes one PNG per whole slice of every file under `data`; returns the image count.
    Silent slices (every pixel equal: power_to_db of zeros) are skipped, as teticio does."""
    if os.path.exists(os.path.join(out_dir, METADATA)):
        raise DataError(f"{out_dir}: already holds an image dataset (use a new directory)")
    dp = dataclasses.replace(data_params, sample_rate=mel.sr, crop="fixed",
                             crop_samples=mel.slice_size, short_clips="pad",
                             shuffle_buffer=1)                  # file order, slice order
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
