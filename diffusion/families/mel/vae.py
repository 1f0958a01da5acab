"""The KL autoencoder (network/vae.py) of latent mel diffusion: its training family and loading.

    python train.py --model mel-vae --data dataset/chorales --run runs/vae --preset small \
        [--steps 2000] [--set network.channels=32,64,64] [--set kl_weight=1e-6]
    python train.py --model mel-unet --data dataset/chorales --run runs/latent --preset small \
        --set vae_run=runs/vae            # diffusion on latents scaled by network.latent_scale

A mel-vae run is a run like the others: params.json (the Mel, the data settings and the
architecture; the presets share the Mel of the mel-unet preset of the same name), checkpoints/
(model, optimizer, data iterator) and logs/; re-running the command resumes. --data is an audio
directory or a `python -m data.mel_images` directory. The objective is reconstruction + KL, not
a diffusion one: `MelVAEFamily` gives diffusion/training/engine.py its loss (one device, no EMA).
"""
from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from data.mel import Mel
from diffusion.families.base import Family
from diffusion.training.checkpoints import latest_checkpoint, restore
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


@dataclasses.dataclass
class MelVAEFamily(Family):
    """The mel VAE as the engine trains it: x₀ = the images, loss = L1 + kl_weight·KL, with
    the reparameterisation noise keyed by the step's seed; no EMA, one device."""
    params: object

    objective = None                    # reconstruction + KL, not a diffusion objective
    uses_ema = False
    single_device = True
    tensorboard_samples = False

    def build_model(self):
        return build_vae(self.params)

    @property
    def mel(self):
        if "_mel" not in self.__dict__:
            self.__dict__["_mel"] = Mel.from_params(self.params)
        return self.__dict__["_mel"]

    def split_batch(self, batch):
        return self.mel.batch_images(batch), {}                          # images in [−1, 1]

    def draw(self, objective, shape, seed) -> dict:
        return {}

    def loss(self, objective, model, x0, cond, draws, seed):
        from network.vae import vae_loss
        mean, logvar = model.encode(x0)
        noise = tf.random.stateless_normal(tf.shape(mean), seed)
        recon = model.decode(mean + tf.exp(0.5 * logvar) * noise)       # reparameterisation
        loss, rec, kl = vae_loss(x0, recon, mean, logvar, self.params.network.kl_weight)
        return tf.fill(tf.shape(x0)[:1], loss), {"l1": rec, "kl": kl}

    def next_step(self, run_dir) -> str:
        return f"use it with --model mel-unet --set vae_run={run_dir}"
