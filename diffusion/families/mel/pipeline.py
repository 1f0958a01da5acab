"""The mel-UNet pipeline as a self-contained directory (the offline save_pretrained).

    pipe = MelPipeline.from_run("runs/mel")                 # EMA weights of the latest checkpoint
    pipe.save("pipelines/mel")                              # model_index.json, mel_config.json,
    pipe = MelPipeline.load("pipelines/mel")                #   unet/, scheduler/
    images, audio = pipe(num=2, seed=0, steps=50, eta=0.0)  # uint8 images, Griffin-Lim audio

    python -m diffusion.families.mel.pipeline --run runs/mel --out pipelines/mel

Layout (diffusers' names): model_index.json names the components; mel_config.json (data/mel.py);
unet/config.json (UNet2D's constructor arguments) + unet/model.weights.h5 (Keras weights);
scheduler/scheduler_config.json (linear β over num_train_timesteps, DDIM η); vae/config.json
(+ scaling_factor, diffusers' name for the latent scale) and vae/model.weights.h5 in latent
mode, else "vae": null. Sampling goes through diffusion/core/schedulers.py, as generate.py does.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import tensorflow as tf

from data.mel import Mel

INDEX = "model_index.json"


class MelPipeline:
    def __init__(self, mel: Mel, unet, scheduler_config: dict, vae=None,
                 latent_scale: float = 0.18215):
        self.mel, self.unet, self.scheduler_config = mel, unet, dict(scheduler_config)
        self.vae, self.latent_scale = vae, float(latent_scale)     # latent mode when vae

    @classmethod
    def from_run(cls, run_dir, use_ema: bool = True) -> "MelPipeline":
        from diffusion.families.registry import RunError, load_run
        params, family, model = load_run(run_dir, use_ema=use_ema)
        if params.model != "mel-unet":
            raise RunError(f"{run_dir}: a {params.model} run, not mel-unet")
        d = params.diffusion
        return cls(family.mel, model, {"_class_name": "DDIMScheduler",
                                       "num_train_timesteps": d.num_steps,
                                       "beta_start": d.beta_start, "beta_end": d.beta_end,
                                       "beta_schedule": "linear", "eta": 0.0},
                   family.vae, params.network.latent_scale)

    # -- directory -----------------------------------------------------------------------------
    def save(self, directory) -> None:
        if os.path.exists(os.path.join(directory, INDEX)):
            raise FileExistsError(f"{directory}: already holds a pipeline")
        os.makedirs(os.path.join(directory, "unet"), exist_ok=True)
        os.makedirs(os.path.join(directory, "scheduler"), exist_ok=True)
        self.mel.save_config(directory)
        config = {k: list(v) if isinstance(v, tuple) else v
                  for k, v in self.unet.get_config().items()
                  if k in ("block_channels", "attention", "layers_per_block", "norm_groups",
                           "in_channels", "encoding_dim")}
        _write_json(os.path.join(directory, "unet", "config.json"),
                    {"_class_name": "UNet2D", **config})
        self.unet.save_weights(os.path.join(directory, "unet", "model.weights.h5"))
        _write_json(os.path.join(directory, "scheduler", "scheduler_config.json"),
                    self.scheduler_config)
        vae = None
        if self.vae is not None:
            os.makedirs(os.path.join(directory, "vae"), exist_ok=True)
            config = {k: list(v) if isinstance(v, tuple) else v
                      for k, v in self.vae.get_config().items()
                      if k in ("channels", "latent_channels", "norm_groups", "in_channels")}
            _write_json(os.path.join(directory, "vae", "config.json"),
                        {"_class_name": "KLAutoencoder", "scaling_factor": self.latent_scale,
                         **config})
            self.vae.save_weights(os.path.join(directory, "vae", "model.weights.h5"))
            vae = ["network.vae", "KLAutoencoder"]
        _write_json(os.path.join(directory, INDEX),
                    {"_class_name": "MelPipeline", "mel": ["data.mel", "Mel"],
                     "unet": ["network.unet2d", "UNet2D"],
                     "scheduler": ["diffusion.core.schedulers", "DDIMScheduler"], "vae": vae})

    @classmethod
    def load(cls, directory) -> "MelPipeline":
        from network.unet2d import UNet2D
        index = _read_json(os.path.join(directory, INDEX))
        mel = Mel.from_config(directory)
        vae, scale, shape = None, 0.18215, [1, mel.y_res, mel.x_res, 1]
        if index.get("vae"):
            from network.vae import KLAutoencoder
            config = _read_json(os.path.join(directory, "vae", "config.json"))
            scale = config.pop("scaling_factor")
            vae = KLAutoencoder(**{k: v for k, v in config.items() if not k.startswith("_")},
                                name="vae")
            vae(tf.zeros(shape))
            vae.load_weights(os.path.join(directory, "vae", "model.weights.h5"))
            f = vae.downsampling
            shape = [1, mel.y_res // f, mel.x_res // f, vae.latent_channels]
        config = {k: v for k, v in _read_json(os.path.join(directory, "unet", "config.json"))
                  .items() if not k.startswith("_")}
        unet = UNet2D(**config, name="unet2d")
        inputs = {"image": tf.zeros(shape), "step": tf.zeros([1])}
        if config.get("encoding_dim"):
            inputs["encoding"] = tf.zeros([1, config["encoding_dim"]])
        unet(inputs)
        unet.load_weights(os.path.join(directory, "unet", "model.weights.h5"))
        scheduler = _read_json(os.path.join(directory, "scheduler", "scheduler_config.json"))
        return cls(mel, unet, scheduler, vae, scale)

    # -- sampling ------------------------------------------------------------------------------
    def scheduler(self, steps: int = 50, eta: float | None = None):
        from diffusion.core.schedule import NoiseSchedule
        from diffusion.core.schedulers import DDIMScheduler
        c = self.scheduler_config
        schedule = NoiseSchedule.linear(c["num_train_timesteps"], c["beta_start"], c["beta_end"])
        scheduler = DDIMScheduler(schedule, eta=c.get("eta", 0.0) if eta is None else eta)
        scheduler.set_timesteps(min(steps, schedule.num_steps))
        return scheduler

    def denoise(self, x, t):
        return self.unet({"image": x, "step": t}, training=False)

    def __call__(self, num: int = 1, seed: int = 0, steps: int = 50, eta: float | None = None,
                 slices: int = 1, noise=None, griffin_lim: bool = True):
        """(uint8 images [num, y_res, x_res·slices], audio [num, samples] or None)."""
        from diffusion.core.sampling import sample
        f = self.vae.downsampling if self.vae is not None else 1
        channels = self.vae.latent_channels if self.vae is not None else 1
        shape = [num, self.mel.y_res // f, self.mel.x_res * slices // f, channels]
        x = sample(self.denoise, self.scheduler(steps, eta), shape, seed, noise=noise).numpy()
        if self.vae is not None:                           # latents ÷ scale → VAE decoder
            x = self.vae.decode(x / self.latent_scale).numpy()
        images = np.clip(np.round((x[..., 0] + 1.0) * 127.5), 0, 255).astype(np.uint8)
        audio = np.stack([self.mel.image_to_audio(i) for i in images]) if griffin_lim else None
        return images, audio


def _write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read ({e})") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Save a mel-unet run as a pipeline directory")
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--no-ema", dest="ema", action="store_false", default=True)
    args = p.parse_args(argv)
    try:
        MelPipeline.from_run(args.run, use_ema=args.ema).save(args.out)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote pipeline {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
