"""Checkpoints: the one restore with its one-line error, and the latest checkpoint of a run.

    latest = latest_checkpoint(run_dir)                  # run_dir/checkpoints, or None
    restore(tf.train.Checkpoint(model=m, ema=e), latest, partial=True, error=RunError,
            what="cannot restore into a diffwave with the run's params")

Every restore in the project goes through `restore` (loading a run for sampling, resuming a
training run, --init-from, a mel-unet's VAE, a diffgen's DiffAE), so a mismatch always reads
`<checkpoint>: <what> (<first line of TF's reason>)`.
"""
from __future__ import annotations

import os

import tensorflow as tf


class RunError(ValueError):
    """A run directory that cannot be used for sampling."""


def latest_checkpoint(run_dir):
    """The newest checkpoint prefix in run_dir/checkpoints, or None."""
    return tf.train.latest_checkpoint(os.path.join(str(run_dir), "checkpoints"))


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
        restore(tf.train.Checkpoint(model=model), latest, partial=True, error=error, what=what)
        return latest
    ema = EMA(model, ema_decay)
    restore(tf.train.Checkpoint(model=model, ema=ema), latest, partial=True, error=error,
            what=what)
    if use_ema:
        ema.copy_to(model)
    return latest


def is_packaged(checkpoint_path) -> bool:
    """True for a checkpoint written by package_run: the model's (EMA) weights, no EMA slots."""
    try:
        names = [name for name, _ in tf.train.list_variables(checkpoint_path)]
    except (tf.errors.OpError, ValueError):
        return False
    return not any(name.startswith(("ema/", "optimizer/")) for name in names)


def package_run(model, step: int, out_dir) -> str:
    """Writes `model`'s current weights (load the EMA ones first) as out_dir/checkpoints/
    ckpt-<step>, the only checkpoint there: a run directory generate.py and evaluate.py load
    like any other, at a third of a training checkpoint's size (no raw weights, no Adam)."""
    directory = os.path.join(str(out_dir), "checkpoints")
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory,
                                         max_to_keep=1)
    return manager.save(checkpoint_number=step)
