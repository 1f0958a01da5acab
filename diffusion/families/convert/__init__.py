"""Bring PyTorch checkpoints of the anchors to this project: each writes a run directory
(params.json + a checkpoint with the weights as both the model and its EMA) that generate.py and
export.py take like any trained run.

    python -m diffusion.families.convert lmnt CKPT.pt --run runs/x       # lmnt-com/diffwave (.pt)
    python -m diffusion.families.convert diffusers DIR --run runs/y      # a diffusers UNet2DModel directory

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
import os
import sys

import numpy as np

from diffusion.families.convert.diffusers import convert_diffusers
from diffusion.families.convert.lmnt import convert_lmnt
from diffusion.families.convert.tensors import ConvertError

# --- writing the run -----------------------------------------------------------------------------

def write_run(params, model, run_dir):
    """params.json + checkpoints/ckpt-0 holding the model and an EMA equal to it."""
    import tensorflow as tf

    from diffusion.training.ema import EMA
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
    p = argparse.ArgumentParser(prog="python -m diffusion.families.convert", description=__doc__.split(
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
