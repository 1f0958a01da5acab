"""A mel-UNet's images through a neural vocoder (a mel-conditioned DiffWave run) instead of
Griffin-Lim: the one chain generate.py, app.py and evaluate.py use.

    vocoder = load_vocoder("pretrained/vocoder", params, family)
    audio = run_vocoder(vocoder, images, family.mel)          # [N, W·hop]
"""
from __future__ import annotations

import numpy as np


def load_vocoder(run_dir, params, family, load_run=None):
    """(params, family, model) of a mel-conditioned DiffWave run matching this run's Mel."""
    from data.mel_convert import check_compatible
    if load_run is None:
        from diffusion.families.registry import load_run
    if not family.makes_images:
        raise ValueError(f"{run_dir}: a vocoder inverts mel-unet images; this run is "
                         f"{params.model}")
    vparams, vfamily, vmodel = load_run(run_dir, use_ema=True)
    if getattr(vparams.network, "conditioning", None) != "mel":
        raise ValueError(f"{run_dir}: not a mel-conditioned DiffWave run")
    try:
        check_compatible(family.mel, vparams.data.sample_rate, vparams.network.hop_length)
    except ValueError as e:
        raise ValueError(f"{run_dir}: Mel parameters differ: {e}") from None
    return vparams, vfamily, vmodel


def default_gain_db(mel) -> float:
    """The level given to a mel image (its dB are relative to its own loudest bin)."""
    return 10.0 * np.log10(mel.n_fft ** 2 / 16.0) - 24.0


def run_vocoder(vocoder, images, mel, gain_db=None, seed: int = 0):
    """uint8 mel-UNet images → DiffWave audio [N, W·hop] (conditioning: data/mel_convert.py)."""
    import tensorflow as tf

    from data.mel_convert import image_to_log_mel
    vparams, vfamily, vmodel = vocoder
    gain = default_gain_db(mel) if gain_db is None else gain_db
    cond = image_to_log_mel(images, mel, vparams.network.n_mels, gain)
    shape = [len(images), cond.shape[1] * vparams.network.hop_length, 1]
    scheduler = vfamily.scheduler(vfamily.default_sampler)
    x = vfamily.sample(vmodel, scheduler, shape, {"mel": tf.constant(cond)}, seed)
    return x.numpy()[..., 0]
