"""Reading PyTorch tensors without unpickling objects, and their layouts in Keras: the shared part
of the converters (lmnt.py, diffusers.py)."""
from __future__ import annotations

import json
import os

import numpy as np


class ConvertError(ValueError):
    """A checkpoint that cannot be converted (the message names the tensor or key)."""


# --- reading -------------------------------------------------------------------------------------

def read_lmnt(path):
    """→ (state {name: float32 array}, params dict) of an lmnt DiffWave checkpoint."""
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    try:
        import torch
    except ImportError:
        raise ConvertError("converting a .pt checkpoint needs PyTorch (make bench-venv; "
                           ".venv-torch/bin/python -m diffusion.families.convert …)") from None
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:                          # noqa: BLE001 — any unreadable file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ConvertError(f"{path}: not a readable weights-only PyTorch checkpoint ({first})") \
            from None
    if isinstance(raw, dict) and "model" in raw:
        state, params = raw["model"], raw.get("params") or {}
    elif isinstance(raw, dict) and all(torch.is_tensor(v) for v in raw.values()):
        state, params = raw, {}                       # a bare state dict
    else:
        raise ConvertError(f"{path}: expected lmnt's checkpoint, a dict with 'model' and "
                           f"'params'")
    if not isinstance(params, dict):
        raise ConvertError(f"{path}: 'params' is not a dict")
    out = {}
    for name, value in state.items():
        if not torch.is_tensor(value):
            raise ConvertError(f"{path}: model entry {name!r} is not a tensor")
        out[name] = value.detach().cpu().float().numpy()
    return out, dict(params)


def read_diffusers(directory):
    """→ (state, unet config, mel config or None, scheduler config or None) of a UNet2DModel
    directory or of teticio's pipeline directory (its unet/ subfolder)."""
    if not os.path.isdir(directory):
        raise ConvertError(f"{directory}: no such directory")
    root, unet_dir = directory, directory
    if os.path.isdir(os.path.join(directory, "unet")):
        unet_dir = os.path.join(directory, "unet")

    def load_json(path, required):
        if not os.path.isfile(path):
            if required:
                raise ConvertError(f"{path}: missing (not a diffusers UNet2DModel directory)")
            return None
        try:
            with open(path) as f:
                return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConvertError(f"{path}: not valid JSON ({e})") from None

    if os.path.isdir(os.path.join(directory, "vqvae")):
        raise ConvertError(f"{directory}: a latent pipeline (vqvae/): only pixel-space "
                           f"UNet2DModel pipelines convert")
    config = load_json(os.path.join(unet_dir, "config.json"), True)
    weights = os.path.join(unet_dir, "diffusion_pytorch_model.safetensors")
    if not os.path.isfile(weights):
        raise ConvertError(f"{weights}: missing (save_pretrained with safetensors)")
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        state = {k: v.astype(np.float32) for k, v in load_file(weights).items()}
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise ConvertError(f"{weights}: not a readable safetensors file "
                           f"({str(e).strip()[:160]})") from None
    mel = load_json(os.path.join(root, "mel", "mel_config.json"), False)
    scheduler = load_json(os.path.join(root, "scheduler", "scheduler_config.json"), False)
    return state, config, mel, scheduler


# --- assigning -----------------------------------------------------------------------------------

class _Tensors:
    """The source tensors, consumed by name: every one must be used, with the right shape."""

    def __init__(self, state, where):
        self.state, self.where, self.used = state, where, set()

    def take(self, name):
        if name not in self.state:
            raise ConvertError(f"{self.where}: missing tensor {name!r}")
        self.used.add(name)
        return self.state[name]

    def has(self, name):
        return name in self.state

    def assign(self, variable, name, transform=lambda w: w):
        want = tuple(variable.shape)
        raw = self.take(name)
        try:
            value = transform(raw)
        except ValueError:                  # a reshape that the tensor's size does not allow
            value = np.zeros(0)
        if tuple(value.shape) != want:
            raise ConvertError(f"{self.where}: tensor {name!r} has shape "
                               f"{list(self.state[name].shape)}, expected one that maps to "
                               f"{list(want)}")
        variable.assign(value.astype(np.float32))

    def check_all_used(self):
        extra = sorted(set(self.state) - self.used)
        if extra:
            raise ConvertError(f"{self.where}: unexpected tensor {extra[0]!r} "
                               f"({len(extra)} not used)")


def _conv1d(w):                  # torch Conv1d [out, in, k] → Keras Conv1D [k, in, out]
    return np.transpose(w, (2, 1, 0))


def _conv2d(w):                  # torch Conv2d [out, in, kh, kw] → Keras Conv2D [kh, kw, in, out]
    return np.transpose(w, (2, 3, 1, 0))


def _linear(w):                  # torch Linear [out, in] → Keras Dense [in, out]
    return np.transpose(w)


def _dense_from_1x1(w):          # torch Conv1d [out, in, 1] → Keras Dense [in, out]
    return np.transpose(w[..., 0]) if w.ndim == 3 else w


def _upsampler(w):
    # torch ConvTranspose2d [in=1, out=1, k_mel, k_time] over (mel, time) → Keras
    # Conv2DTranspose [k_time, k_mel, out, in] over (time, mel).
    return np.transpose(w, (3, 2, 1, 0)) if w.ndim == 4 else w


def with_weights(params, overrides, load_weights, state, where):
    """(params with the --set overrides, the family's model holding the checkpoint's weights)."""
    from diffusion.families.registry import family_for
    from params import ParamsError, apply_overrides
    if overrides:
        try:
            params = apply_overrides(params, overrides)
        except ParamsError as e:
            raise ConvertError(str(e)) from None
    model = family_for(params).build_model()
    load_weights(model, state, where)
    return params, model
