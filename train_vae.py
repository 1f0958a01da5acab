"""Train the KL autoencoder (network/vae.py) on mel-spectrogram images, for latent diffusion.

    python train_vae.py --data dataset/chorales --run runs/vae --preset small --steps 2000 \
        [--channels 32,64,64] [--latent-channels 4] [--kl-weight 1e-6] [--lr 1e-4]
    python train.py --model mel-unet --data dataset/chorales --run runs/latent --preset small \
        --set vae_run=runs/vae            # diffusion on latents scaled by network.latent_scale

The Mel (and the data settings) come from the mel-unet --preset; --data is an audio directory
or an audio_to_images.py directory. The run holds vae.json (Mel config + architecture) and
checkpoints/ (model, optimizer, data iterator); re-running resumes. This is not the diffusion
trainer: the objective is reconstruction + KL, a plain Adam loop.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from params import ParamsError, get_preset, quiet_tensorflow  # noqa: E402

CONFIG = "vae.json"


def load_vae(run_dir):
    """(KLAutoencoder with the latest weights, config dict); ValueError naming the run."""
    import tensorflow as tf
    path = os.path.join(str(run_dir), CONFIG)
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read a VAE config ({e})") from None
    vae = build_vae(config)
    latest = tf.train.latest_checkpoint(os.path.join(str(run_dir), "checkpoints"))
    if latest is None:
        raise ValueError(f"{run_dir}: no VAE checkpoint yet (train it first)")
    tf.train.Checkpoint(model=vae).restore(latest).expect_partial()
    return vae, config


def build_vae(config):
    import tensorflow as tf
    from network.vae import KLAutoencoder
    vae = KLAutoencoder(config["channels"], config["latent_channels"], config["norm_groups"],
                        name="vae")
    vae(tf.zeros([1, config["mel"]["y_res"], config["mel"]["x_res"], 1]))
    return vae


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--preset", default="small", help="mel-unet preset giving the Mel and data")
    p.add_argument("--channels", default="32,64,64")
    p.add_argument("--latent-channels", type=int, default=4)
    p.add_argument("--norm-groups", type=int, default=8)
    p.add_argument("--kl-weight", type=float, default=1e-6)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--steps", type=int, default=1000, help="train until this many steps")
    p.add_argument("--log-every", type=int, default=10)
    args = p.parse_args(argv)
    quiet_tensorflow()
    import keras
    import tensorflow as tf
    from data.mel_images import image_dataset, is_image_dataset
    from data.pipeline import make_dataset, prepare
    from data.sources import DataError
    from diffusion.families import family_for
    from network.vae import vae_loss
    try:
        params = get_preset(args.preset, "mel-unet")
        family = family_for(params)
        channels = [int(c) for c in args.channels.split(",")]
        config = {"mel": family.mel.get_config(), "channels": channels,
                  "latent_channels": args.latent_channels, "norm_groups": args.norm_groups,
                  "kl_weight": args.kl_weight}
        path = os.path.join(args.run, CONFIG)
        if os.path.exists(path):
            with open(path) as f:
                if json.load(f) != config:
                    raise ValueError(f"{path} holds another VAE config; use a new --run")
        if is_image_dataset(args.data):
            expected = {k: v for k, v in config["mel"].items() if k != "n_iter"}
            dataset = image_dataset(args.data, expected, params.data.batch_size)
        else:
            dataset = make_dataset(prepare(args.data, params.data), params.data)
        os.makedirs(args.run, exist_ok=True)
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
    except (ParamsError, DataError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    keras.utils.set_random_seed(0)
    vae = build_vae(config)
    optimizer = keras.optimizers.Adam(args.lr)
    optimizer.build(vae.trainable_variables)
    iterator = iter(dataset)
    checkpoint = tf.train.Checkpoint(model=vae, optimizer=optimizer, data=iterator)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(args.run, "checkpoints"), 3)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)

    @tf.function
    def train_step():
        x, _ = family.split_batch(next(iterator))                  # images in [−1, 1]
        seed = tf.stack([tf.cast(optimizer.iterations, tf.int32), 0])
        with tf.GradientTape() as tape:
            mean, logvar = vae.encode(x)
            noise = tf.random.stateless_normal(tf.shape(mean), seed)
            recon = vae.decode(mean + tf.exp(0.5 * logvar) * noise)   # reparameterisation
            loss, rec, kl = vae_loss(x, recon, mean, logvar, args.kl_weight)
        optimizer.apply(tape.gradient(loss, vae.trainable_variables), vae.trainable_variables)
        return loss, rec, kl

    while int(optimizer.iterations) < args.steps:
        loss, rec, kl = train_step()
        step = int(optimizer.iterations)
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step}/{args.steps}  loss {float(loss):.4f}  l1 {float(rec):.4f}  "
                  f"kl {float(kl):.2f}", flush=True)
    manager.save(checkpoint_number=int(optimizer.iterations))
    print(f"done: step {int(optimizer.iterations)}; {args.run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
