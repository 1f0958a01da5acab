"""Export a trained run as a SavedModel whose whole sampling loop is in the graph, or as a
pretrained run (its EMA weights only, for pretrained/).

    python export.py --run runs/digits --out exported/digits [--sampler fast|ddpm|ddim]
        [--steps 50] [--eta 0] [--no-ema] [--chunk-seconds 4]
    python export.py --run runs/vocoder --out pretrained/vocoder --format pretrained
        [--weights-dtype float16|float32] [--card NOTES.md] [--guidance 3]

--format pretrained writes OUT/params.json, OUT/checkpoints/weights-<step>.npz holding the EMA
weights alone (no raw weights, no optimizer; float16 by default: a sixth of a training
checkpoint), which generate.py, evaluate.py, export.py and train.py --init-from load as they
load any run, and OUT/README.md, the model card: the network, steps, batch, learning rate and
training time (from the run's TensorBoard events, over all its sessions), then --card's text
(the data and the measured figures, with the commands that reproduce them).

Serve it with tf.saved_model.load, tensorflow_hub.load or `saved_model_cli run` (README).
The output directory must not exist yet (an export never overwrites anything).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from diffusion.requests import flag_message  # noqa: E402
from params import quiet_tensorflow  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True, help="new directory for the SavedModel")
    p.add_argument("--format", choices=("savedmodel", "pretrained"), default="savedmodel")
    p.add_argument("--sampler", default="fast", help="fast | ddpm | ddim (fixed at export)")
    p.add_argument("--steps", type=int, default=None,
                   help="DDIM steps (default 50, ≤ T); diffgen: V steps (default 50)")
    p.add_argument("--decode-steps", type=int, default=50,
                   help="diffgen: V steps of the DiffAE decoder (fixed at export)")
    p.add_argument("--eta", type=float, default=0.0)
    p.add_argument("--ema", dest="ema", action="store_true", default=True)
    p.add_argument("--no-ema", dest="ema", action="store_false")
    p.add_argument("--chunk-seconds", type=float, default=4.0,
                   help="denoise in exact overlapping chunks of this length (0: never)")
    p.add_argument("--weights-dtype", choices=("float16", "float32"), default="float16",
                   help="--format pretrained: the stored weights' type")
    p.add_argument("--guidance", type=float, default=None,
                   help="--format pretrained: the packaged default classifier-free guidance scale "
                        "(network.guidance; diffgen, or mel-unet trained with cfg_drop)")
    p.add_argument("--card", default=None,
                   help="--format pretrained: markdown appended to the model card")
    return p.parse_args(argv)


OPTIONS = ("sampler", "steps", "eta", "decode_steps", "chunk_seconds")   # ExportOptions' flags


def export_options(args):
    """The flags a SavedModel fixes, typed (diffusion.requests.ExportOptions)."""
    from diffusion.requests import ExportOptions
    return ExportOptions(**{name: getattr(args, name) for name in OPTIONS})


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()
    from diffusion.families.registry import RunError, load_run
    if os.path.exists(args.out) and os.listdir(args.out):
        print(f"error: {args.out} exists and is not empty; choose a new --out", file=sys.stderr)
        return 2
    try:
        params, family, model = load_run(args.run, use_ema=args.ema)
        if args.format == "pretrained":
            return package(args, params, model)
        module, what = family.export_module(model, export_options(args))
    except (RunError, ValueError) as e:
        print(f"error: {flag_message(str(e), OPTIONS)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    module.save(args.out)
    print(f"exported {args.run} ({what}) to {args.out} in {time.perf_counter() - start:.1f} s; "
          f"{module.signatures_note}")
    return 0


def package(args, params, model) -> int:
    """--format pretrained: params.json, the EMA weights as the run's only checkpoint, a card."""
    from diffusion.training.checkpoints import checkpoint_step, latest_checkpoint, package_run
    notes = ""
    if args.card is not None:
        try:
            with open(args.card, encoding="utf-8") as f:
                notes = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"--card {args.card}: cannot read it ({e})") from None
    if args.guidance is not None:            # a sampling default; the weights are unchanged
        if not hasattr(params.network, "guidance"):
            raise ValueError(f"--guidance: {args.run} is a {params.model} run, which has no "
                             f"classifier-free guidance")
        params.network.guidance = args.guidance
        params.validate()
    step = checkpoint_step(latest_checkpoint(args.run))
    os.makedirs(args.out, exist_ok=True)
    params.save(os.path.join(args.out, "params.json"))
    path = package_run(model, step, args.out, args.weights_dtype)
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8") as f:
        f.write(model_card(args, params, model, step) + ("\n" + notes if notes else ""))
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(args.out)
               for f in files)
    print(f"packaged {args.run} at step {step} ({'EMA' if args.ema else 'raw'} weights, "
          f"{args.weights_dtype}) as {path}; {args.out} is {size / 2**20:.1f} MiB")
    return 0


def model_card(args, params, model, step) -> str:
    """The card's generated part: what the weights are and how they were trained."""
    import numpy as np

    from diffusion.training.history import summary
    trained = summary(args.run)
    d, t = params.data, params.train
    net = vars(params.network)
    network = ", ".join(f"{k}={v}" for k, v in net.items()       # a class count only if used
                        if k != "num_classes" or net.get("conditioning", "class") == "class")
    count = sum(int(np.prod(w.shape)) for w in model.weights)
    hours = trained["seconds"] / 3600
    rows = [("model", f"`{params.model}`: {network}"),
            ("parameters", f"{count:,}"),
            ("weights", f"{'EMA' if args.ema else 'raw'}, {args.weights_dtype}, step {step}"),
            ("batch", f"{d.batch_size} × {d.crop_samples} samples at {d.sample_rate} Hz"),
            ("optimizer", f"Adam, learning rate {t.learning_rate:g} (warm-up {t.warmup_steps}), "
                          f"EMA decay {t.ema_decay:g}"),
            ("training time", f"{hours:.1f} h in {trained['sessions']} session(s), "
                              f"{trained['steps_run']:,} steps run "
                              f"({trained['steps_run'] / max(trained['seconds'], 1e-9):.2f} "
                              f"steps/s), from the run's TensorBoard events")]
    name = os.path.basename(os.path.normpath(args.out))
    return (f"# {name}\n\nOur own weights, trained with this project's `train.py` and packaged "
            f"by `export.py --format pretrained` (params in `params.json`).\n\n"
            "| | |\n| --- | --- |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows))


if __name__ == "__main__":
    sys.exit(main())
