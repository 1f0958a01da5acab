"""lmnt-com/diffwave checkpoints (.pt) → a DiffWave run (params + weights)."""
from __future__ import annotations

import json

import numpy as np

from diffusion.families.convert.tensors import (
    ConvertError,
    _conv1d,
    _dense_from_1x1,
    _linear,
    _Tensors,
    _upsampler,
    read_lmnt,
    with_weights,
)

# --- lmnt DiffWave -------------------------------------------------------------------------------

def lmnt_params(state, raw, where):
    """Our Params for an lmnt checkpoint: shapes from the tensors, the rest from its params."""
    from configs import get_preset
    from params import ParamsError, apply_overrides
    layers = sorted({int(k.split(".")[1]) for k in state if k.startswith("residual_layers.")})
    if "input_projection.weight" not in state:
        raise ConvertError(f"{where}: missing tensor 'input_projection.weight'")
    if not layers or layers != list(range(len(layers))):
        raise ConvertError(f"{where}: missing tensor 'residual_layers.{len(layers)}.*' "
                           f"(residual layers found: {layers[:5]}…)")
    channels = state["input_projection.weight"].shape[0]
    unconditional = bool(raw.get("unconditional", False))
    if not unconditional and not any(k.startswith("spectrogram_upsampler.") for k in state):
        raise ConvertError(f"{where}: missing tensor 'spectrogram_upsampler.conv1.weight' "
                           f"(params do not say unconditional)")
    schedule = np.asarray(raw.get("noise_schedule", np.linspace(1e-4, 0.05, 50)), np.float64)
    if schedule.ndim != 1 or len(schedule) < 2 or not np.allclose(
            schedule, np.linspace(schedule[0], schedule[-1], len(schedule)), rtol=0, atol=1e-9):
        raise ConvertError(f"{where}: params noise_schedule is not linear; our schedules are "
                           f"β linear from beta_start to beta_end")
    n_mels = int(raw.get("n_mels", 80))
    if not unconditional:
        n_mels = state.get("residual_layers.0.conditioner_projection.weight",
                           np.zeros((0, n_mels))).shape[1]
    hop = int(raw.get("hop_samples", 256))
    if not unconditional and hop != 256:
        raise ConvertError(f"{where}: params hop_samples={hop}, but lmnt's upsampler is two "
                           f"fixed ×16 stages (256 samples per frame)")
    cycle = int(raw.get("dilation_cycle_length", 10))
    overrides = [f"network.residual_layers={len(layers)}",
                 f"network.residual_channels={channels}",
                 f"network.dilation_cycle={cycle}",
                 f"network.conditioning={'none' if unconditional else 'mel'}",
                 f"network.n_mels={n_mels}", f"network.hop_length={hop}",
                 f"diffusion.num_steps={len(schedule)}",
                 f"diffusion.beta_start={float(schedule[0])!r}",
                 f"diffusion.beta_end={float(schedule[-1])!r}",
                 "diffusion.loss=l1",
                 f"data.sample_rate={int(raw.get('sample_rate', 22050))}",
                 "data.normalize=none",          # lmnt trains on the raw int16/32768 level
                 f"data.crop_samples={int(raw.get('crop_mel_frames', 62)) * hop}"]
    if "inference_noise_schedule" in raw:
        overrides.append("diffusion.inference_betas=" + json.dumps(
            [float(b) for b in raw["inference_noise_schedule"]]))
    if "batch_size" in raw:
        overrides.append(f"data.batch_size={int(raw['batch_size'])}")
    if "learning_rate" in raw:
        overrides.append(f"train.learning_rate={float(raw['learning_rate'])!r}")
    try:
        return apply_overrides(get_preset("base"), overrides)
    except ParamsError as e:
        raise ConvertError(f"{where}: {e}") from None


def load_lmnt_weights(model, state, where):
    """Copies an lmnt state dict into our (built) DiffWave; every tensor must be used."""
    t = _Tensors(state, where)
    t.assign(model.input_projection.kernel, "input_projection.weight", _conv1d)
    t.assign(model.input_projection.bias, "input_projection.bias")
    for k, dense in ((1, model.step_mlp1), (2, model.step_mlp2)):
        t.assign(dense.kernel, f"diffusion_embedding.projection{k}.weight", _linear)
        t.assign(dense.bias, f"diffusion_embedding.projection{k}.bias")
    for k, conv in enumerate(model.upsampler):
        t.assign(conv.kernel, f"spectrogram_upsampler.conv{k + 1}.weight", _upsampler)
        t.assign(conv.bias, f"spectrogram_upsampler.conv{k + 1}.bias")
    for i, block in enumerate(model.blocks):
        p = f"residual_layers.{i}."
        t.assign(block.dilated_conv.kernel, p + "dilated_conv.weight", _conv1d)
        t.assign(block.dilated_conv.bias, p + "dilated_conv.bias")
        t.assign(block.step_projection.kernel, p + "diffusion_projection.weight", _linear)
        t.assign(block.step_projection.bias, p + "diffusion_projection.bias")
        if block.cond_projection is not None:
            t.assign(block.cond_projection.kernel, p + "conditioner_projection.weight",
                     _dense_from_1x1)
            t.assign(block.cond_projection.bias, p + "conditioner_projection.bias")
        t.assign(block.output_projection.kernel, p + "output_projection.weight", _conv1d)
        t.assign(block.output_projection.bias, p + "output_projection.bias")
    for name in ("skip_projection", "output_projection"):
        t.assign(getattr(model, name).kernel, f"{name}.weight", _conv1d)
        t.assign(getattr(model, name).bias, f"{name}.bias")
    t.used.add("diffusion_embedding.embedding")      # a buffer (the fixed table), if saved
    t.check_all_used()


def convert_lmnt(path, overrides=()):
    """→ (params, model with the checkpoint's weights)."""
    state, raw = read_lmnt(path)
    return with_weights(lmnt_params(state, raw, path), overrides, load_lmnt_weights, state, path)
