"""Generate audio from a trained run: WAV files and a spectrogram PNG for each.

    python generate.py --run runs/digits --seconds 1 --num 4 --out out/ \
        [--sampler fast|ddpm] [--seed 0] [--label 7] [--no-ema]

fast: DiffWave's short inference schedule (params diffusion.inference_betas, 6 steps for BASE)
aligned to fractional training steps; ddpm: ancestral sampling over all T training steps.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SAMPLERS = ("fast", "ddpm")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a run directory made by train.py")
    p.add_argument("--seconds", type=float, default=1.0, help="length of each clip")
    p.add_argument("--num", type=int, default=1, help="number of clips")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--sampler", default="fast", help="fast | ddpm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label", type=int, default=None, help="class label (class-conditional)")
    p.add_argument("--ema", dest="ema", action="store_true", default=True,
                   help="sample with the EMA weights (default)")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="use the raw weights")
    return p.parse_args(argv)


def check_args(args, params):
    """One-line errors for everything that can be checked before any work."""
    if args.sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {args.sampler!r} (choose from {', '.join(SAMPLERS)})")
    if not args.seconds > 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")
    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    conditioning = params.network.conditioning
    if conditioning == "class":
        if args.label is None:
            raise ValueError(f"{args.run} is class-conditional: give --label "
                             f"0..{params.network.num_classes - 1}")
        if not 0 <= args.label < params.network.num_classes:
            raise ValueError(f"--label {args.label} is out of range "
                             f"0..{params.network.num_classes - 1}")
    elif args.label is not None:
        raise ValueError(f"{args.run} is not class-conditional; drop --label")
    if conditioning == "mel":
        raise ValueError(f"{args.run} is a mel-conditioned vocoder: generation from a mel "
                         f"spectrogram is not in this version")


def spectrogram_png(audio) -> bytes:
    """Log-magnitude STFT as an 8-bit PNG (low frequencies at the bottom), via TF's encoder."""
    import tensorflow as tf
    spec = tf.math.log(tf.abs(tf.signal.stft(audio, 512, 128, pad_end=True)) + 1e-5)
    spec = (spec - tf.reduce_min(spec)) / (tf.reduce_max(spec) - tf.reduce_min(spec) + 1e-9)
    image = tf.cast(tf.transpose(spec)[::-1, :, None] * 255.0, tf.uint8)
    return tf.io.encode_png(image).numpy()


def main(argv=None) -> int:
    args = parse_args(argv)
    import soundfile as sf
    import tensorflow as tf

    from diffusion.inference import RunError, load_run
    from diffusion.samplers import AncestralScheduler, sample
    try:
        params, family, model = load_run(args.run, use_ema=args.ema)
        check_args(args, params)
        os.makedirs(args.out, exist_ok=True)
    except (RunError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from diffusion.schedule import NoiseSchedule
    scheduler = AncestralScheduler(NoiseSchedule.from_params(params))
    if args.sampler == "fast":
        scheduler.set_timesteps("fast", params.diffusion.inference_betas)
    rate = params.data.sample_rate
    length = max(1, int(round(args.seconds * rate)))
    cond = {"label": tf.fill([args.num], args.label)} if args.label is not None else {}

    def progress(i, total):
        if not sys.stderr.isatty():
            return
        bar = "#" * (20 * i // total)
        print(f"\r{args.sampler} [{bar:<20s}] step {i}/{total}", end="", file=sys.stderr,
              flush=True)

    start = time.perf_counter()
    audio = sample(family.denoiser(model, cond), scheduler, [args.num, length, 1], args.seed,
                   progress).numpy()[..., 0]
    elapsed = time.perf_counter() - start
    if sys.stderr.isatty():
        print(file=sys.stderr)
    stem = os.path.basename(os.path.normpath(args.run))
    for i, clip in enumerate(audio):
        base = os.path.join(args.out, f"{stem}_{args.sampler}_seed{args.seed}_{i}")
        sf.write(base + ".wav", clip, rate, subtype="PCM_16")
        with open(base + ".png", "wb") as f:
            f.write(spectrogram_png(clip))
    seconds = args.num * length / rate
    print(f"wrote {args.num} clip(s) of {length / rate:.2f} s to {args.out} "
          f"({args.sampler}, {scheduler.num_inference_steps} steps, {elapsed:.1f} s, "
          f"real-time factor {seconds / elapsed:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
