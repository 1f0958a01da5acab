"""Named presets per family (`train.py --preset NAME`); a preset is a partial Params dict.

    params = get_preset("tiny", "diffwave")      # → a validated params.Params
"""
from __future__ import annotations

from configs import diffwave, mel, text_to_audio
from params import Params, ParamsError

PRESETS = {"diffwave": diffwave.PRESETS, "mel-unet": mel.PRESETS, "mel-vae": mel.VAE_PRESETS,
           "diffae": text_to_audio.DIFFAE_PRESETS, "diffgen": text_to_audio.DIFFGEN_PRESETS}


def get_preset(name: str, model: str = "diffwave") -> Params:
    if model not in PRESETS:
        raise ParamsError(f"model must be one of {sorted(PRESETS)}, got {model!r}")
    if name not in PRESETS[model]:
        raise ParamsError(f"unknown preset {name!r} for {model} (choose from "
                          f"{', '.join(PRESETS[model])})")
    return Params.from_dict({"model": model, **PRESETS[model][name]},
                            where=f"preset {model}/{name}")
