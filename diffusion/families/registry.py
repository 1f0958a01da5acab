"""Loading a trained run for sampling (generate.py, export.py).

    params, family, model = load_run("runs/digits", use_ema=True)

The model gets the EMA weights of the latest checkpoint (or the raw weights with use_ema=False).
Every failure is a RunError with a one-line message naming the run or checkpoint.
"""
from __future__ import annotations

import os

from diffusion.families.diffwave import DiffWaveFamily
from diffusion.families.mel.family import MelUNetFamily
from diffusion.families.mel.vae import MelVAEFamily
from diffusion.families.text_to_audio.family import DiffAEFamily, DiffGenFamily
from diffusion.training.checkpoints import RunError, latest_checkpoint, load_weights
from diffusion.training.precision import apply_policy
from params import Params, ParamsError


def load_run(run_dir, use_ema: bool = True):
    run_dir = str(run_dir)
    if not os.path.isdir(run_dir):
        raise RunError(f"{run_dir}: no such run directory")
    try:
        params = Params.load(os.path.join(run_dir, "params.json"))
    except ParamsError as e:
        raise RunError(str(e)) from None
    if latest_checkpoint(run_dir) is None:
        raise RunError(f"{run_dir}: no checkpoint yet (train it first)")
    apply_policy(params.train, "sampling")     # the run's precision, where it is native here
    try:
        family = family_for(params)
    except ValueError as e:                 # a mel-vae run: nothing to sample
        raise RunError(f"{run_dir}: {e}") from None
    model = family.build_model()
    load_weights(model, run_dir, params.train.ema_decay, use_ema, error=RunError,
                 what=f"cannot restore into a {params.model} with the run's params")
    return params, family, model


FAMILIES = {"diffwave": DiffWaveFamily, "mel-unet": MelUNetFamily, "diffae": DiffAEFamily,
            "diffgen": DiffGenFamily}


def trainable_for(params):
    """The family train.py trains: a diffusion family, or the mel VAE (an autoencoder)."""
    if params.model == "mel-vae":
        return MelVAEFamily(params)
    return family_for(params)


def family_for(params):
    if params.model not in FAMILIES:       # mel-vae: an autoencoder, not a diffusion model
        raise ValueError(f"{params.model} runs are not diffusion models (a mel-vae run serves "
                         f"a mel-unet run's network.vae_run)")
    return FAMILIES[params.model](params)
