"""Mel-UNet and mel-VAE presets (teticio/audio-diffusion; latent mode after Stable Diffusion)."""
from __future__ import annotations

import dataclasses

from params import MelParams

# The mel-UNet family (teticio/audio-diffusion; DDPM over 1000 steps, MSE on ε).
_MEL = {"data": {"sample_rate": 22050},
        "diffusion": {"num_steps": 1000, "beta_end": 0.02, "loss": "l2"},
        "train": {"learning_rate": 1e-4, "warmup_steps": 500, "ema_decay": 0.9999,
                  "ema_power": 0.75}}
PRESETS = {
    # 32×32 images of 32 mel bands, a 3-level UNet: tests.
    "tiny": {**_MEL, "data": {**_MEL["data"], "crop_samples": 32 * 256 - 1, "batch_size": 4,
                              "shuffle_buffer": 64},
             "network": {"x_res": 32, "y_res": 32, "n_fft": 1024, "hop_length": 256,
                         "block_channels": (16, 32, 32), "attention": (0, 1, 0),
                         "layers_per_block": 1, "norm_groups": 8},
             "train": {**_MEL["train"], "learning_rate": 1e-3, "warmup_steps": 0,
                       "checkpoint_every": 50, "log_every": 10, "audio_every": 1000}},
    # 64×64, the HF diffusion course's size, a small UNet that trains on CPU.
    "small": {**_MEL, "data": {**_MEL["data"], "crop_samples": 64 * 512 - 1, "batch_size": 8},
              "network": {"x_res": 64, "y_res": 64, "block_channels": (32, 64, 64, 128),
                          "attention": (0, 0, 1, 0), "norm_groups": 16}},
    # pretrained/digits: "small" on 1 s spoken digits at 16 kHz (64 frames of hop 256), one-hot
    # labels; a higher learning rate with a short warm-up for CPU budgets.
    "digits": {**_MEL, "data": {**_MEL["data"], "sample_rate": 16000, "crop_samples": 64 * 256 - 1,
                                "batch_size": 8},
               "network": {"x_res": 64, "y_res": 64, "n_fft": 1024, "hop_length": 256,
                           "block_channels": (32, 64, 64, 128), "attention": (0, 0, 1, 0),
                           "norm_groups": 16, "num_classes": 10},
               "train": {**_MEL["train"], "learning_rate": 3e-4, "warmup_steps": 200,
                         "log_every": 100, "audio_every": 1000000}},
    # pretrained/chorales: "small" on the bundled chorales at 16 kHz, unconditional; hop 512 so a
    # 64-frame image spans 2 s (a bar or so), n_fft 2048 for 75 % overlap (Griffin-Lim needs it).
    "chorales": {**_MEL, "data": {**_MEL["data"], "sample_rate": 16000,
                                  "crop_samples": 64 * 512 - 1, "batch_size": 8},
                 "network": {"x_res": 64, "y_res": 64, "n_fft": 2048, "hop_length": 512,
                             "block_channels": (32, 64, 64, 128), "attention": (0, 0, 1, 0),
                             "norm_groups": 16},
                 "train": {**_MEL["train"], "learning_rate": 3e-4, "warmup_steps": 200,
                           "log_every": 100, "audio_every": 1000000}},
    # teticio/audio-diffusion-256: 256×256, blocks (128, 128, 256, 256, 512, 512).
    "base": {**_MEL, "data": {**_MEL["data"], "crop_samples": 256 * 512 - 1}},
}


# The VAE of latent mel diffusion: each preset has the Mel and data of the mel-unet preset of
# the same name (a mel-unet run's network.vae_run needs the same Mel).
def _vae_preset(mel_preset: str, network: dict, train: dict) -> dict:
    mel = PRESETS[mel_preset]
    mel_keys = {f.name for f in dataclasses.fields(MelParams)}
    return {"data": mel["data"], "network": {**{k: v for k, v in mel.get("network", {}).items()
                                                if k in mel_keys}, **network}, "train": train}


VAE_PRESETS = {
    "tiny": _vae_preset("tiny", {"channels": (8, 16, 16), "norm_groups": 4},
                        {"learning_rate": 2e-3, "checkpoint_every": 50, "log_every": 5}),
    "small": _vae_preset("small", {}, {"learning_rate": 1e-4, "log_every": 10}),
    # 256×256 → 32×32×4 latents: Stable Diffusion's AutoencoderKL widths.
    "base": _vae_preset("base", {"channels": (128, 256, 512, 512), "norm_groups": 32},
                        {"learning_rate": 1e-4}),
}
