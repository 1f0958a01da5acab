"""Bring PyTorch checkpoints of the anchors to this project: each writes a run directory
(params.json + a checkpoint with the weights as both the model and its EMA) that generate.py and
export.py take like any trained run.

    python -m network.convert lmnt CKPT.pt --run runs/x       # lmnt-com/diffwave (.pt)
    python -m network.convert diffusers DIR --run runs/y      # a diffusers UNet2DModel directory

lmnt: the checkpoint of `python -m diffwave` (a dict with 'model', its state dict, and 'params'),
opened with torch.load(weights_only=True): tensors and plain containers only, never arbitrary
objects. torch is imported here, lazily; nothing else in the project needs it. A checkpoint whose
params say `unconditional` (lmnt v0.1.8) becomes an unconditional DiffWave, otherwise a mel
vocoder (lmnt's upsampler is two fixed ×16 stages: hop 256).

diffusers: DIR holds config.json + diffusion_pytorch_model.safetensors (UNet2DModel.
save_pretrained), or is teticio's AudioDiffusionPipeline layout (unet/, mel/mel_config.json,
scheduler/scheduler_config.json), whose Mel and noise schedule are taken too. Read with
safetensors (no torch). Configurations our UNet2D cannot express are refused by key.

Any wrong or partial checkpoint is a one-line error naming the missing, unexpected or
mis-shaped tensor (or the config key).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

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
                           ".venv-torch/bin/python -m network.convert …)") from None
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


# --- lmnt DiffWave -------------------------------------------------------------------------------

def lmnt_params(state, raw, where):
    """Our Params for an lmnt checkpoint: shapes from the tensors, the rest from its params."""
    from params import ParamsError, apply_overrides, get_preset
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
    from diffusion.families import family_for
    from params import ParamsError, apply_overrides
    state, raw = read_lmnt(path)
    params = lmnt_params(state, raw, path)
    if overrides:
        try:
            params = apply_overrides(params, overrides)
        except ParamsError as e:
            raise ConvertError(str(e)) from None
    model = family_for(params).build_model()
    load_lmnt_weights(model, state, path)
    return params, model


# --- diffusers UNet2DModel -----------------------------------------------------------------------

# Config values our UNet2D computes with (key: allowed values); anything else is refused.
_UNET_FIXED = {"in_channels": (1,), "out_channels": (1,), "act_fn": ("silu",),
               "time_embedding_type": ("positional",), "flip_sin_to_cos": (True,),
               "freq_shift": (0,), "center_input_sample": (False,), "norm_eps": (1e-5,),
               "resnet_time_scale_shift": ("default",), "add_attention": (True,),
               "class_embed_type": (None,), "num_class_embeds": (None,),
               "attention_head_dim": (8,), "downsample_padding": (1,),
               "downsample_type": ("conv",), "upsample_type": ("conv",),
               "mid_block_scale_factor": (1, 1.0), "dropout": (0, 0.0),
               "attn_norm_num_groups": (None,), "time_embedding_dim": (None,)}


def unet_params(config, mel, scheduler, where):
    from params import ParamsError, apply_overrides, get_preset
    if config.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise ConvertError(f"{where}: _class_name {config.get('_class_name')!r}: only "
                           f"UNet2DModel converts (not teticio's conditional or latent models)")
    for key, allowed in _UNET_FIXED.items():
        if key in config and config[key] not in allowed:
            raise ConvertError(f"{where}: config {key}={config[key]!r} is not supported "
                               f"(ours: {allowed[0]!r})")
    channels = list(config.get("block_out_channels", (224, 448, 672, 896)))
    down = list(config.get("down_block_types", ()))
    up = list(config.get("up_block_types", ()))
    if len(down) != len(channels) or len(up) != len(channels):
        raise ConvertError(f"{where}: config down_block_types/up_block_types need one entry "
                           f"per block_out_channels ({len(channels)})")
    attention = [int(d == "AttnDownBlock2D") for d in down]
    for d in down:
        if d not in ("DownBlock2D", "AttnDownBlock2D"):
            raise ConvertError(f"{where}: config down_block_types has {d!r} (ours: DownBlock2D, "
                               f"AttnDownBlock2D)")
    if [int(u == "AttnUpBlock2D") for u in reversed(up)] != attention or \
            any(u not in ("UpBlock2D", "AttnUpBlock2D") for u in up):
        raise ConvertError(f"{where}: config up_block_types {up} must mirror down_block_types "
                           f"(attention at the same levels)")
    size = config.get("sample_size", 256)
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    mel = mel or {}
    x_res, y_res = int(mel.get("x_res", width)), int(mel.get("y_res", height))
    hop = int(mel.get("hop_length", 512))
    overrides = [f"network.block_channels={json.dumps(channels)}",
                 f"network.attention={json.dumps(attention)}",
                 f"network.layers_per_block={int(config.get('layers_per_block', 2))}",
                 f"network.norm_groups={int(config.get('norm_num_groups', 32))}",
                 f"network.x_res={x_res}", f"network.y_res={y_res}",
                 f"network.hop_length={hop}", f"data.crop_samples={x_res * hop - 1}"]
    for ours, theirs in (("n_fft", "n_fft"), ("top_db", "top_db"), ("n_iter", "n_iter")):
        if theirs in mel:
            overrides.append(f"network.{ours}={mel[theirs]}")
    if "sample_rate" in mel:
        overrides.append(f"data.sample_rate={int(mel['sample_rate'])}")
    if scheduler:
        if scheduler.get("beta_schedule", "linear") != "linear":
            raise ConvertError(f"{where}: scheduler beta_schedule="
                               f"{scheduler['beta_schedule']!r} (ours: linear)")
        overrides += [f"diffusion.num_steps={int(scheduler.get('num_train_timesteps', 1000))}",
                      f"diffusion.beta_start={float(scheduler.get('beta_start', 1e-4))!r}",
                      f"diffusion.beta_end={float(scheduler.get('beta_end', 0.02))!r}"]
    try:
        return apply_overrides(get_preset("base", "mel-unet"), overrides)
    except ParamsError as e:
        raise ConvertError(f"{where}: {e}") from None


def _load_resnet(t, resnet, p):
    for ours, theirs in ((resnet.norm1, "norm1"), (resnet.norm2, "norm2")):
        t.assign(ours.gamma, p + theirs + ".weight")
        t.assign(ours.beta, p + theirs + ".bias")
    for ours, theirs in ((resnet.conv1, "conv1"), (resnet.conv2, "conv2")):
        t.assign(ours.kernel, p + theirs + ".weight", _conv2d)
        t.assign(ours.bias, p + theirs + ".bias")
    t.assign(resnet.step_proj.kernel, p + "time_emb_proj.weight", _linear)
    t.assign(resnet.step_proj.bias, p + "time_emb_proj.bias")
    if resnet.shortcut is not None:
        t.assign(resnet.shortcut.kernel, p + "conv_shortcut.weight", _conv2d)
        t.assign(resnet.shortcut.bias, p + "conv_shortcut.bias")


def _load_attention(t, attn, p):
    t.assign(attn.norm.gamma, p + "group_norm.weight")
    t.assign(attn.norm.beta, p + "group_norm.bias")
    mha = attn.attention
    heads, head_dim = mha._num_heads, mha._key_dim
    # Current names, or the deprecated ones of older checkpoints (query/key/value/proj_attn).
    old = not t.has(p + "to_q.weight") and t.has(p + "query.weight")
    names = ("query", "key", "value", "proj_attn") if old else ("to_q", "to_k", "to_v", "to_out.0")
    for dense, name in zip((mha._query_dense, mha._key_dense, mha._value_dense), names):
        t.assign(dense.kernel, p + name + ".weight",
                 lambda w: np.transpose(w).reshape(w.shape[1], heads, head_dim))
        t.assign(dense.bias, p + name + ".bias", lambda b: b.reshape(heads, head_dim))
    t.assign(mha._output_dense.kernel, p + names[3] + ".weight",
             lambda w: np.transpose(w).reshape(heads, head_dim, w.shape[0]))
    t.assign(mha._output_dense.bias, p + names[3] + ".bias")


def load_diffusers_weights(model, state, where):
    """Copies a diffusers UNet2DModel state dict into our (built) UNet2D."""
    t = _Tensors(state, where)
    t.assign(model.step_mlp[0].kernel, "time_embedding.linear_1.weight", _linear)
    t.assign(model.step_mlp[0].bias, "time_embedding.linear_1.bias")
    t.assign(model.step_mlp[1].kernel, "time_embedding.linear_2.weight", _linear)
    t.assign(model.step_mlp[1].bias, "time_embedding.linear_2.bias")
    t.assign(model.conv_in.kernel, "conv_in.weight", _conv2d)
    t.assign(model.conv_in.bias, "conv_in.bias")
    for kind, levels in (("down_blocks", model.down), ("up_blocks", model.up)):
        for i, (blocks, sample) in enumerate(levels):
            for j, (resnet, attn) in enumerate(blocks):
                _load_resnet(t, resnet, f"{kind}.{i}.resnets.{j}.")
                if attn is not None:
                    _load_attention(t, attn, f"{kind}.{i}.attentions.{j}.")
            if sample is not None:
                name = "downsamplers" if kind == "down_blocks" else "upsamplers"
                t.assign(sample.kernel, f"{kind}.{i}.{name}.0.conv.weight", _conv2d)
                t.assign(sample.bias, f"{kind}.{i}.{name}.0.conv.bias")
    _load_resnet(t, model.mid[0], "mid_block.resnets.0.")
    _load_attention(t, model.mid[1], "mid_block.attentions.0.")
    _load_resnet(t, model.mid[2], "mid_block.resnets.1.")
    t.assign(model.norm_out.gamma, "conv_norm_out.weight")
    t.assign(model.norm_out.beta, "conv_norm_out.bias")
    t.assign(model.conv_out.kernel, "conv_out.weight", _conv2d)
    t.assign(model.conv_out.bias, "conv_out.bias")
    t.check_all_used()


def convert_diffusers(directory, overrides=()):
    from diffusion.families import family_for
    from params import ParamsError, apply_overrides
    state, config, mel, scheduler = read_diffusers(directory)
    params = unet_params(config, mel, scheduler, directory)
    if overrides:
        try:
            params = apply_overrides(params, overrides)
        except ParamsError as e:
            raise ConvertError(str(e)) from None
    model = family_for(params).build_model()
    load_diffusers_weights(model, state, directory)
    return params, model


# --- writing the run -----------------------------------------------------------------------------

def write_run(params, model, run_dir):
    """params.json + checkpoints/ckpt-0 holding the model and an EMA equal to it."""
    import tensorflow as tf

    from diffusion.ema import EMA
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    if os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
        raise ConvertError(f"{run_dir}: already holds checkpoints; choose a new --run")
    params.save(os.path.join(run_dir, "params.json"))
    ema = EMA(model, params.train.ema_decay, params.train.ema_power)   # shadow = the weights
    checkpoint = tf.train.Checkpoint(model=model, ema=ema)
    return tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=1).save(
        checkpoint_number=0)


CONVERTERS = {"lmnt": convert_lmnt, "diffusers": convert_diffusers}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m network.convert", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=sorted(CONVERTERS), help="lmnt (.pt) | diffusers (directory)")
    p.add_argument("source", help="the checkpoint file (lmnt) or directory (diffusers)")
    p.add_argument("--run", required=True, help="run directory to write")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a hyperparameter of the written params (e.g. data.batch_size)")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from params import quiet_tensorflow
    quiet_tensorflow()
    try:
        params, model = CONVERTERS[args.kind](args.source, args.overrides)
        path = write_run(params, model, args.run)
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    count = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    print(f"converted {args.source} → {args.run} ({params.model}, {count:,} parameters, "
          f"checkpoint {os.path.basename(path)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
