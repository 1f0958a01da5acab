"""The KL autoencoder (network/vae.py) of latent mel diffusion: its training loop and loading.

    python train.py --model mel-vae --data dataset/chorales --run runs/vae --preset small \
        [--steps 2000] [--set network.channels=32,64,64] [--set kl_weight=1e-6]
    python train.py --model mel-unet --data dataset/chorales --run runs/latent --preset small \
        --set vae_run=runs/vae            # diffusion on latents scaled by network.latent_scale

A mel-vae run is a run like the others: params.json (the Mel, the data settings and the
architecture; the presets share the Mel of the mel-unet preset of the same name), checkpoints/
(model, optimizer, data iterator) and logs/; re-running the command resumes. --data is an audio
directory or a `python -m data.mel_images` directory. The objective is reconstruction + KL, not
a diffusion one, so this is a small single-device Adam loop rather than diffusion/training/engine.py.
"""
from __future__ import annotations

import dataclasses
import math
import os
import signal

import keras
import tensorflow as tf

from data.mel import Mel
from diffusion.training.checkpoints import latest_checkpoint, restore
from diffusion.training.engine import TrainError, WarmupSchedule
from params import MelParams, Params, ParamsError


def build_vae(params):
    from network.vae import KLAutoencoder
    n = params.network
    vae = KLAutoencoder(n.channels, n.latent_channels, n.norm_groups, name="vae")
    vae(tf.zeros([1, n.y_res, n.x_res, 1]))
    return vae


def check_vae_run(run_dir, params) -> tuple:
    """(the mel-vae run's params, its latest checkpoint) for the mel-unet `params`: ValueError
    (one line, naming the run) when it is not a mel-vae run, has another Mel or no checkpoint.
    No TF ops, so train.py checks a new run before saving its params.json."""
    run_dir = str(run_dir)
    try:
        vae_params = Params.load(os.path.join(run_dir, "params.json"))
    except ParamsError as e:
        raise ValueError(f"network.vae_run: {e}") from None
    if vae_params.model != "mel-vae":
        raise ValueError(f"network.vae_run: {run_dir} is a {vae_params.model} run, not a "
                         f"mel-vae run (train one with train.py --model mel-vae)")
    mine, theirs = _mel_settings(params), _mel_settings(vae_params)
    for key in mine:
        if mine[key] != theirs[key]:
            raise ValueError(f"network.vae_run: {run_dir}: its Mel {key} is {theirs[key]!r}, "
                             f"this run's is {mine[key]!r}")
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise ValueError(f"network.vae_run: {run_dir}: no checkpoint yet (train it first)")
    return vae_params, latest


def _mel_settings(params) -> dict:
    """What makes the images (Griffin-Lim's n_iter does not)."""
    names = [f.name for f in dataclasses.fields(MelParams) if f.name != "n_iter"]
    return {"sample_rate": params.data.sample_rate,
            **{name: getattr(params.network, name) for name in names}}


def load_vae(run_dir, params):
    """The KLAutoencoder of the mel-vae run `run_dir` (checked by check_vae_run), restored."""
    vae_params, latest = check_vae_run(run_dir, params)
    vae = build_vae(vae_params)
    restore(tf.train.Checkpoint(model=vae), latest, partial=True, error=ValueError,
            what="cannot restore the VAE", prefix="network.vae_run: ")
    return vae


def train_vae(params, run_dir, dataset, until_step: int, log=print):
    """Trains until `until_step` → ("done" | "stopped", step). SIGINT/SIGTERM stop after the
    current step with a checkpoint; a non-finite loss raises TrainError before its update."""
    from network.vae import vae_loss
    tp, n = params.train, params.network
    keras.utils.set_random_seed(tp.seed)          # the initial weights are part of the run
    vae = build_vae(params)
    optimizer = keras.optimizers.Adam(WarmupSchedule(tp.learning_rate, tp.warmup_steps),
                                      global_clipnorm=tp.grad_clip_norm)
    optimizer.build(vae.trainable_variables)
    iterator = iter(dataset)
    checkpoint = tf.train.Checkpoint(model=vae, optimizer=optimizer, data=iterator)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(str(run_dir), "checkpoints"),
                                         tp.keep_checkpoints)
    if manager.latest_checkpoint:
        restore(checkpoint, manager.latest_checkpoint, partial=False, error=TrainError,
                what="cannot restore into the run's VAE")
    step = int(optimizer.iterations)
    log(f"model: mel-vae, {vae.count_params():,} parameters; "
        + (f"resumed at step {step}" if step else "new run"))
    mel = Mel.from_params(params)

    @tf.function
    def train_step():
        x = mel.batch_images(next(iterator))                          # images in [−1, 1]
        seed = tf.stack([tf.cast(optimizer.iterations, tf.int32), tp.seed])
        with tf.GradientTape() as tape:
            mean, logvar = vae.encode(x)
            noise = tf.random.stateless_normal(tf.shape(mean), seed)
            recon = vae.decode(mean + tf.exp(0.5 * logvar) * noise)   # reparameterisation
            loss, rec, kl = vae_loss(x, recon, mean, logvar, n.kl_weight)
        if tf.math.is_finite(loss):                  # a bad step leaves the weights intact
            optimizer.apply(tape.gradient(loss, vae.trainable_variables),
                            vae.trainable_variables)
        return loss, rec, kl

    stop = []
    handlers = {s: signal.signal(s, lambda signum, _: stop.append(signal.Signals(signum).name))
                for s in (signal.SIGINT, signal.SIGTERM)}
    writer = tf.summary.create_file_writer(os.path.join(str(run_dir), "logs"))
    try:
        while step < until_step and not stop:
            loss, rec, kl = (float(v) for v in train_step())
            if not math.isfinite(loss):
                raise TrainError(f"loss became {loss} at step {step}; stopped before the update;"
                                 f" last good checkpoint: {manager.latest_checkpoint or 'none'}")
            step = int(optimizer.iterations)
            if step % tp.log_every == 0 or step == until_step:
                log(f"step {step}/{until_step}  loss {loss:.4f}  l1 {rec:.4f}  kl {kl:.2f}")
                with writer.as_default(step=step):
                    for name, value in (("loss", loss), ("l1", rec), ("kl", kl)):
                        tf.summary.scalar(f"train/{name}", value)
            if step % tp.checkpoint_every == 0:
                manager.save(checkpoint_number=step)
        path = manager.save(checkpoint_number=step)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        writer.flush()
    if stop:
        log(f"{stop[0]}: stopped at step {step}; checkpoint {path}")
        return "stopped", step
    return "done", step
