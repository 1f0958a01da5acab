"""Export a trained run as a SavedModel whose whole sampling loop is in the graph.

    python export.py --run runs/digits --out exported/digits [--sampler fast|ddpm|ddim]
        [--steps 50] [--eta 0] [--no-ema] [--chunk-seconds 4]

Serve it with tf.saved_model.load, tensorflow_hub.load or `saved_model_cli run` (README).
The output directory must not exist yet (an export never overwrites anything).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from params import quiet_tensorflow  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True, help="new directory for the SavedModel")
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
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()
    from diffusion.export import SamplerModule, export
    from diffusion.inference import RunError, build_scheduler, load_run
    if os.path.exists(args.out) and os.listdir(args.out):
        print(f"error: {args.out} exists and is not empty; choose a new --out", file=sys.stderr)
        return 2
    try:
        params, family, model = load_run(args.run, use_ema=args.ema)
        if params.model == "diffgen":
            return export_diffgen(args, family, model)
        if params.model not in ("diffwave", "mel-unet"):
            raise ValueError(f"{args.run}: SavedModel export of {params.model} runs is not in "
                             f"this version (DiffWave, mel-unet and diffgen runs)")
        if params.model == "mel-unet" and params.network.vae_run:
            raise ValueError(f"{args.run}: SavedModel export of latent (vae_run) runs is not in "
                             f"this version")
        if params.model == "mel-unet" and args.sampler == "fast":
            args.sampler = "ddim"                 # mel: DDIM (fast is DiffWave's schedule)
        if args.steps is not None and not 1 <= args.steps <= params.diffusion.num_steps:
            raise ValueError(f"--steps must be in 1..{params.diffusion.num_steps}, "
                             f"got {args.steps}")
        scheduler = build_scheduler(params, args.sampler, args.steps, args.eta)
    except (RunError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    chunk = int(args.chunk_seconds * params.data.sample_rate)
    if params.model == "mel-unet":            # images + Griffin-Lim audio, one slice wide
        from diffusion.mel_export import MelSamplerModule, export_mel
        export_mel(MelSamplerModule(family, model, scheduler), args.out)
    else:
        export(SamplerModule(family, model, scheduler, params, chunk), args.out)
    print(f"exported {args.run} ({args.sampler}, {scheduler.num_inference_steps} steps, "
          f"{getattr(params.network, 'conditioning', 'no')} conditioning) to {args.out} in "
          f"{time.perf_counter() - start:.1f} s; signatures: serving_default, generate, denoise")
    return 0


def export_diffgen(args, family, model) -> int:
    """Text → audio: a string input, both V loops and the text encoder in the graph."""
    from diffusion.text_export import TextToAudioModule, export_text_to_audio
    steps = args.steps or 50
    for flag, value in (("--steps", steps), ("--decode-steps", args.decode_steps)):
        if not 1 <= value <= 1000:
            raise ValueError(f"{flag} must be in 1..1000, got {value}")
    family.autoencoder                            # loads and checks the DiffAE run
    start = time.perf_counter()
    export_text_to_audio(TextToAudioModule(family, model, steps, args.decode_steps), args.out)
    print(f"exported {args.run} (text → audio, {steps} + {args.decode_steps} V steps) to "
          f"{args.out} in {time.perf_counter() - start:.1f} s; signature serving_default(text, "
          f"seconds, seed, guidance); servers must `import tensorflow_text` first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
