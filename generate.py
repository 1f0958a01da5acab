"""Generate audio from a trained run: WAV files and a labelled figure (waveform + log-mel) each.

    python generate.py --run runs/digits --seconds 2.5 --num 4 --out out/ \
        [--sampler fast|ddpm|ddim] [--steps N] [--eta 0] [--seed 0] [--label 7] \
        [--mel FILE] [--from-audio FILE --strength 0.5] [--no-ema] [--chunk-seconds 4]
    python generate.py --run T2A_RUN --text "a brass quartet playing a Bach chorale" \
        --seconds 6 [--guidance 5] [--steps 50] [--decode-steps 50]      # text → audio

fast: DiffWave's short inference schedule (params diffusion.inference_betas, 6 steps for BASE)
aligned to fractional training steps; ddpm: ancestral sampling over all T training steps;
ddim: DDIM over --steps evenly spaced training steps with --eta (0 = deterministic).
--from-audio starts from that audio noised to --strength (audio-to-audio, SDEdit);
--mel conditions a mel vocoder run on a log-mel (.npy [frames, n_mels]) or an audio file.
--mask-start/--mask-end SECS keep those seconds of --from-audio at every step (in/out-painting;
use --strength 1 to regenerate the rest from noise). --encode X.npy writes the DDIM inversion
of --from-audio; --noise X.npy starts from a given x_T; --slerp OTHER --alpha a decodes the
slerp of the two inputs' encodings. --loop N cuts each clip to whole bars at its tracked beat
(data/beats.py) and tiles it N times.
Long clips are denoised in overlapping chunks (exact: the halo covers the receptive field).
Text-to-audio (diffgen) runs: the V sampler makes a DiffAE latent for the duration (classifier-
free guidance --guidance), which the run's autoencoder decodes with --decode-steps V steps.
A diffae run reconstructs --from-audio (encode → decode).
Everything runs through the Python API (diffusion/pipeline.py): this file maps flags to
`Pipeline.from_pretrained(--run)(...)`'s keywords and writes what it returns.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

from diffusion.requests import flag_message  # noqa: E402
from params import quiet_tensorflow  # noqa: E402

# The flags that are Pipeline keywords (--mask-start → mask_start); one left at None is not
# passed (the model's default).
KEYWORDS = ("num", "seed", "sampler", "steps", "eta", "seconds", "label", "mel", "text",
            "guidance", "decode_steps", "vocoder", "vocoder_gain_db", "consistency",
            "refine_steps", "from_audio", "strength", "mask_start", "mask_end", "noise", "slerp",
            "alpha", "loop", "chunk_seconds")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True,
                   help="a run directory made by train.py, pretrained/NAME or a SavedModel")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--seconds", type=float, default=None, help="length of each clip (default 1)")
    p.add_argument("--num", type=int, default=1, help="number of clips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", default=None,
                   help="fast | ddpm | ddim | v (default: fast for DiffWave, ddim for mel-unet, "
                        "v for diffgen/diffae)")
    p.add_argument("--steps", type=int, default=None, help="DDIM / V steps (default 50, ≤ T)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM η (0 deterministic, 1 DDPM-like)")
    p.add_argument("--label", type=int, default=None, help="class label (class-conditional runs)")
    p.add_argument("--mel", default=None, help="log-mel .npy or audio file (mel vocoder runs)")
    p.add_argument("--consistency", type=float, default=None, metavar="S",
                   help="mel vocoder runs: steer each step toward --mel with scale S (0 = off; "
                        "default: the run's network.consistency)")
    p.add_argument("--refine-steps", type=int, default=None, metavar="N",
                   help="mel vocoder runs: N Adam steps toward --mel after sampling (default: "
                        "the run's network.refine_steps)")
    p.add_argument("--text", default=None, help="text prompt (diffgen runs)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (diffgen, and class mel-unet runs "
                        "trained with cfg_drop; default network.guidance, 1 = none)")
    p.add_argument("--decode-steps", type=int, default=None,
                   help="V-sampler steps of the DiffAE decoder (diffgen, diffae; default 50)")
    p.add_argument("--vocoder", default=None, metavar="DIFFWAVE_RUN",
                   help="mel-unet runs: invert the images with this mel-conditioned DiffWave "
                        "run instead of Griffin-Lim (same sample rate and hop; n_fft = 4·hop)")
    p.add_argument("--vocoder-gain-db", type=float, default=None,
                   help="absolute level of the images' 0 dB (data/mel_convert.py step 3; "
                        "default: 10·log10(n_fft²/16) − 24, peak-normalised music)")
    p.add_argument("--from-audio", default=None, help="audio file to start from (SDEdit)")
    p.add_argument("--strength", type=float, default=None,
                   help="with --from-audio: 1 = pure noise, → 0 = keep the input (default 0.5)")
    p.add_argument("--mask-start", type=float, default=None, metavar="SECS",
                   help="with --from-audio: keep its first SECS at every step (out-painting)")
    p.add_argument("--mask-end", type=float, default=None, metavar="SECS",
                   help="with --from-audio: keep its last SECS at every step")
    p.add_argument("--encode", default=None, metavar="OUT.npy",
                   help="with --from-audio and ddim: write its DDIM encoding x_T (inversion)")
    p.add_argument("--noise", default=None, metavar="FILE.npy",
                   help="start from this x_T (e.g. an --encode output) instead of the seed's")
    p.add_argument("--slerp", default=None, metavar="AUDIO",
                   help="with --from-audio and ddim: decode slerp(encode(from), encode(AUDIO))")
    p.add_argument("--alpha", type=float, default=None,
                   help="--slerp position (0 = --from-audio; default 0.5)")
    p.add_argument("--loop", type=int, default=None, metavar="N",
                   help="cut each clip to whole bars at its tracked beat and tile it N times")
    p.add_argument("--chunk-seconds", type=float, default=None,
                   help="denoise longer clips in exact overlapping chunks (0: never; default 4)")
    p.add_argument("--ema", dest="ema", action="store_true", default=True,
                   help="sample with the EMA weights (default)")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="use the raw weights")
    return p.parse_args(argv)


def keywords(args) -> dict:
    """The Pipeline keywords of the flags given (an unset flag keeps the model's default)."""
    return {key: getattr(args, key) for key in KEYWORDS
            if getattr(args, key) is not None and not (key == "eta" and not args.eta)}


def progress_bar(sampler):
    """progress(i, total) drawing a bar on stderr (a terminal's)."""
    def progress(i, total):
        bar = "#" * (20 * i // total)
        print(f"\r{sampler} [{bar:<20s}] step {i}/{total}", end="", file=sys.stderr,
              flush=True)
    return progress


def generate(args):
    """(Output, the Pipeline) of parsed `args`; every argument is checked before any work."""
    from diffusion import Pipeline
    pipe = Pipeline.from_pretrained(args.run, use_ema=args.ema)
    options = keywords(args)
    if args.encode:                           # DDIM inversion (audio → x_T), written
        sampler = options.get("sampler") or pipe.accepts.default_sampler
        if "from_audio" not in options or sampler != "ddim":
            raise ValueError("--encode inverts --from-audio with DDIM: give --from-audio and "
                             "--sampler ddim")
        pipe.request(**options)               # every argument checked before the work
        noise = pipe.encode(**{k: v for k, v in options.items() if k != "sampler"})
        options["sampler"] = "ddim"
        os.makedirs(os.path.dirname(os.path.abspath(args.encode)), exist_ok=True)
        np.save(args.encode, noise)
        if "slerp" not in options:            # then decoded: the input again, up to DDIM
            options = {k: v for k, v in options.items() if k not in (
                "from_audio", "strength", "mask_start", "mask_end")} | {"noise": noise}
    sampler = options.get("sampler") or pipe.accepts.default_sampler or "savedmodel"
    # A progress bar on a terminal (one compiled step per index); else the loop runs in the graph.
    return pipe(progress=progress_bar(sampler) if sys.stderr.isatty() else None, **options)


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()
    from data.audio_io import AudioError
    from diffusion.families.registry import RunError
    try:
        out = generate(args)
        os.makedirs(args.out, exist_ok=True)
    except (RunError, AudioError, ValueError, OSError) as e:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        print(f"error: {flag_message(str(e), KEYWORDS)}", file=sys.stderr)
        return 2
    if sys.stderr.isatty():
        print(file=sys.stderr)
    out.save(args.out)
    length = out.audio.shape[1]
    seconds = len(out.audio) * length / out.sample_rate
    if out.info:
        print(out.info)
    how = f"{out.sampler}, {out.steps} steps" if out.steps else "SavedModel"
    print(f"wrote {len(out.audio)} clip(s) of {length / out.sample_rate:.2f} s to {args.out} "
          f"({how}, {out.elapsed:.1f} s, real-time factor {seconds / out.elapsed:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
