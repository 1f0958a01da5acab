"""Checkpoints: the one restore with its one-line error, the latest checkpoint of a run, and
the packaged weights of pretrained/ runs.

    latest = latest_checkpoint(run_dir)                  # run_dir/checkpoints, or None
    restore(tf.train.Checkpoint(model=m, ema=e), latest, partial=True, error=RunError,
            what="cannot restore into a diffwave with the run's params")

Every restore in the project goes through `restore` (loading a run for sampling, resuming a
training run, --init-from, a mel-unet's VAE, a diffgen's DiffAE), so a mismatch always reads
`<checkpoint>: <what> (<first line of TF's reason>)`.

A packaged run (`package_run`, export.py --format pretrained) holds the sampling weights alone
as checkpoints/weights-<step>.npz in float16 by default: a third of a training checkpoint's
size again (no raw weights or Adam slots, half the bytes per weight), so three models fit the
25 MB of pretrained/. Each array is stored with its variable's path and checked on load.
"""
from __future__ import annotations

import glob
import os
import re

import numpy as np
import tensorflow as tf

PACKAGED_DTYPES = ("float16", "float32")


class RunError(ValueError):
    """A run directory that cannot be used for sampling."""


def latest_checkpoint(run_dir):
    """The newest checkpoint prefix in run_dir/checkpoints (or its packaged weights), or None."""
    directory = os.path.join(str(run_dir), "checkpoints")
    found = tf.train.latest_checkpoint(directory)
    if found is None:
        packaged = glob.glob(os.path.join(glob.escape(directory), "weights-*.npz"))
        found = max(packaged, key=checkpoint_step) if packaged else None
    return found


def checkpoint_step(path) -> int:
    """The step a checkpoint was written at, from its name (ckpt-<step>, weights-<step>.npz)."""
    match = re.search(r"-(\d+)(\.npz)?$", str(path))
    if match is None:
        raise ValueError(f"{path}: not a checkpoint name (ckpt-<step> or weights-<step>.npz)")
    return int(match.group(1))


def restore(checkpoint: tf.train.Checkpoint, path: str, *, partial: bool, error, what: str,
            prefix: str = "", width: int = 120):
    """Restores `path` into `checkpoint`; every object the checkpoint tracks must be matched.
    `partial`: the file may hold more (an optimizer, a data iterator) than `checkpoint` asks
    for. A failure raises `error(f"{prefix}{path}: {what} ({reason})")`, one line."""
    try:
        status = checkpoint.restore(path)
        if partial:
            status = status.expect_partial()
        status.assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as e:
        reason = str(e).strip().splitlines()[0][:width]
        raise error(f"{prefix}{path}: {what} ({reason})") from None
    return path


def load_weights(model, run_dir, ema_decay: float, use_ema: bool, *, error, what: str):
    """The latest checkpoint of `run_dir` into `model`: its EMA weights (use_ema) or the raw
    ones. Raises `error` when the run has no checkpoint or it does not fit."""
    from diffusion.training.ema import EMA
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise error(f"{run_dir}: no checkpoint yet (train it first)")
    if is_packaged(latest):                 # EMA weights only (package_run): nothing to swap
        return load_packaged(model, latest, error=error, what=what)
    if not _has_ema(latest):                # a model-only TF checkpoint (the packaging before
        restore(tf.train.Checkpoint(model=model), latest, partial=True, error=error,   # .npz)
                what=what)
        return latest
    ema = EMA(model, ema_decay)
    restore(tf.train.Checkpoint(model=model, ema=ema), latest, partial=True, error=error,
            what=what)
    if use_ema:
        ema.copy_to(model)
    return latest


def _has_ema(checkpoint_path) -> bool:
    try:
        return any(name.startswith("ema/") for name, _ in tf.train.list_variables(checkpoint_path))
    except (tf.errors.OpError, ValueError):
        return True                         # unreadable: the normal restore reports it


def is_packaged(checkpoint_path) -> bool:
    """True for the weights package_run writes (the model's EMA weights alone)."""
    return str(checkpoint_path).endswith(".npz")


def package_run(model, step: int, out_dir, dtype: str = "float16") -> str:
    """Writes `model`'s current weights (load the EMA ones first) as out_dir/checkpoints/
    weights-<step>.npz in `dtype`, the only checkpoint there: a run directory generate.py,
    evaluate.py and train.py --init-from load like any other."""
    if dtype not in PACKAGED_DTYPES:
        raise ValueError(f"weights dtype {dtype!r}: choose from {', '.join(PACKAGED_DTYPES)}")
    directory = os.path.join(str(out_dir), "checkpoints")
    os.makedirs(directory, exist_ok=True)
    for old in glob.glob(os.path.join(glob.escape(directory), "weights-*.npz")):
        os.remove(old)
    arrays = {f"w{i:04d}": np.asarray(v.numpy(), dtype) for i, v in enumerate(model.weights)}
    path = os.path.join(directory, f"weights-{int(step)}.npz")
    np.savez(path, paths=np.array([v.path for v in model.weights]), **arrays)
    return path


def _unnumbered(path: str) -> str:
    """A variable path without Keras' per-process layer numbering ("dense_25" → "dense"): the
    second model of a kind built in one process gets numbered names."""
    return "/".join(re.sub(r"_\d+$", "", part) for part in path.split("/"))


def load_packaged(model, path, *, error, what: str) -> str:
    """package_run's weights into `model` (cast to each variable's dtype); a file that does not
    match the model's variables one for one (path and shape) raises `error`, one line."""
    try:
        with np.load(path) as f:
            paths = [str(p) for p in f["paths"]]
            arrays = [f[f"w{i:04d}"] for i in range(len(paths))]
    except (OSError, KeyError, ValueError) as e:
        raise error(f"{path}: {what} (unreadable weights file: {str(e)[:100]})") from None
    weights = model.weights
    if len(paths) != len(weights):
        raise error(f"{path}: {what} ({len(paths)} arrays for {len(weights)} variables)")
    for name, array, var in zip(paths, arrays, weights):
        if _unnumbered(name) != _unnumbered(var.path) or tuple(array.shape) != tuple(var.shape):
            raise error(f"{path}: {what} ({name} {tuple(array.shape)} where the model has "
                        f"{var.path} {tuple(var.shape)})")
    for array, var in zip(arrays, weights):
        var.assign(array.astype(var.dtype))
    return str(path)
