"""diffusers UNet2DModel directories (teticio's pipelines) → a mel-unet run (params + weights)."""
from __future__ import annotations

import json

import numpy as np

from diffusion.families.convert.tensors import (
    ConvertError,
    _conv2d,
    _linear,
    _Tensors,
    read_diffusers,
    with_weights,
)

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
    from configs import get_preset
    from params import ParamsError, apply_overrides
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
    """→ (params, model with the directory's UNet weights)."""
    state, config, mel, scheduler = read_diffusers(directory)
    return with_weights(unet_params(config, mel, scheduler, directory), overrides,
                        load_diffusers_weights, state, directory)
