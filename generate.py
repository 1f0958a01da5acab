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
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from params import quiet_tensorflow  # noqa: E402

import numpy as np  # noqa: E402

SAMPLERS = ("fast", "ddpm", "ddim", "v")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a run directory made by train.py")
    p.add_argument("--seconds", type=float, default=1.0, help="length of each clip")
    p.add_argument("--num", type=int, default=1, help="number of clips")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--sampler", default=None,
                   help="fast | ddpm | ddim (default: fast for DiffWave, ddim for mel-unet)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default 50, ≤ T)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM η (0 deterministic, 1 DDPM-like)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from-audio", default=None, help="audio file to start from (SDEdit)")
    p.add_argument("--strength", type=float, default=0.5,
                   help="with --from-audio: 1 = pure noise, → 0 = keep the input")
    p.add_argument("--mask-start", type=float, default=0.0, metavar="SECS",
                   help="with --from-audio: keep its first SECS at every step (out-painting)")
    p.add_argument("--mask-end", type=float, default=0.0, metavar="SECS",
                   help="with --from-audio: keep its last SECS at every step")
    p.add_argument("--encode", default=None, metavar="OUT.npy",
                   help="with --from-audio and ddim: write its DDIM encoding x_T (inversion)")
    p.add_argument("--noise", default=None, metavar="FILE.npy",
                   help="start from this x_T (e.g. an --encode output) instead of the seed's")
    p.add_argument("--slerp", default=None, metavar="AUDIO",
                   help="with --from-audio and ddim: decode slerp(encode(from), encode(AUDIO))")
    p.add_argument("--alpha", type=float, default=0.5, help="--slerp position (0 = --from-audio)")
    p.add_argument("--loop", type=int, default=0, metavar="N",
                   help="cut each clip to whole bars at its tracked beat and tile it N times")
    p.add_argument("--chunk-seconds", type=float, default=4.0,
                   help="denoise longer clips in exact overlapping chunks (0: never)")
    from diffusion.families.registry import FAMILIES
    for family_class in dict.fromkeys(FAMILIES.values()):   # each family's own options
        family_class.add_arguments(p)
    p.add_argument("--ema", dest="ema", action="store_true", default=True,
                   help="sample with the EMA weights (default)")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="use the raw weights")
    return p.parse_args(argv)


def check_args(args, params, family):
    """One-line errors for everything that can be checked before any work."""
    if args.sampler is None:
        args.sampler = family.default_sampler
    if args.sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {args.sampler!r} (choose from {', '.join(SAMPLERS)})")
    if not args.seconds > 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")
    if args.sampler == "ddim" and args.steps is not None and \
            not 1 <= args.steps <= params.diffusion.num_steps:
        raise ValueError(f"--steps must be in 1..{params.diffusion.num_steps} (the run's T), "
                         f"got {args.steps}")
    if args.sampler not in family.samplers:
        raise ValueError(f"--sampler {args.sampler} does not apply to {params.model} runs "
                         f"(v is for diffae/diffgen runs only)")
    if args.sampler == "v" and args.steps is not None and not 1 <= args.steps <= 1000:
        raise ValueError(f"--steps must be in 1..1000, got {args.steps}")
    family.check_args(args, args.run)
    if args.steps is not None and args.sampler not in ("ddim", "v"):
        raise ValueError(f"--steps applies to --sampler ddim or v (fast and ddpm have fixed "
                         f"steps)")
    if args.eta < 0:
        raise ValueError(f"--eta must be >= 0, got {args.eta}")
    if args.from_audio is not None and not 0 < args.strength <= 1:
        raise ValueError(f"--strength must be in (0, 1], got {args.strength}")
    if (args.mask_start or args.mask_end) and args.from_audio is None:
        raise ValueError("--mask-start/--mask-end keep parts of --from-audio: give --from-audio")
    if args.mask_start < 0 or args.mask_end < 0:
        raise ValueError(f"--mask-start/--mask-end must be >= 0 seconds, got "
                         f"{args.mask_start}/{args.mask_end}")
    if (args.encode or args.slerp) and (args.from_audio is None or args.sampler != "ddim"):
        raise ValueError("--encode/--slerp invert --from-audio with DDIM: give --from-audio and "
                         "--sampler ddim")
    if args.noise and (args.from_audio or args.slerp):
        raise ValueError("--noise is a starting x_T: drop --from-audio/--slerp")
    if not 0 <= args.alpha <= 1:
        raise ValueError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.loop < 0:
        raise ValueError(f"--loop must be >= 0, got {args.loop}")
    if args.chunk_seconds < 0:
        raise ValueError(f"--chunk-seconds must be >= 0, got {args.chunk_seconds}")
    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    family.check_conditioning(args, args.run)


def finite(audio, path):
    """`audio`, or a ValueError when it holds NaN or infinite samples (a damaged file)."""
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"{path}: holds NaN or infinite samples")
    return audio


def read_inputs(args, family, model, rate):
    """(cond, shape of x_T, seconds asked, init x₀ or None, --slerp's x₀ or None, --noise x_T
    or None) from the options; ValueError / AudioError / OSError on bad input."""
    from data.features import read_mono
    seconds, init, other, noise = args.seconds, None, None, None
    source = None if args.from_audio is None else finite(read_mono(args.from_audio, rate),
                                                         args.from_audio)
    cond = family.condition(args, model, source)
    shape = family.sample_shape(args.num, args.seconds, cond)
    if family.reconstructs:                 # a DiffAE: encode → decode from pure noise
        seconds = len(source) / rate
    elif source is not None:
        init = family.from_audio(source, args.num)
        shape = list(init.shape)
    if args.slerp is not None:
        other = family.from_audio(finite(read_mono(args.slerp, rate), args.slerp), args.num)
        if other.shape != init.shape:
            raise ValueError(f"{args.slerp}: gives x₀ {other.shape}, --from-audio gives "
                             f"{init.shape}")
    if args.noise is not None:
        noise = np.load(args.noise).astype(np.float32)
        if list(noise.shape) != list(shape):
            raise ValueError(f"{args.noise}: x_T must be {list(shape)} (--num, --seconds), "
                             f"got {list(noise.shape)}")
    return cond, shape, seconds, init, other, noise


def progress_bar(sampler):
    """progress(i, total) drawing a bar on a terminal's stderr (nothing otherwise)."""
    def progress(i, total):
        if not sys.stderr.isatty():
            return
        bar = "#" * (20 * i // total)
        print(f"\r{sampler} [{bar:<20s}] step {i}/{total}", end="", file=sys.stderr,
              flush=True)
    return progress


def write_clips(args, audio, images, rate, titles=None) -> list:
    """OUT/<run>_<sampler>_seed<S>_<i>.wav and .png (waveform + log-mel, data/figures.py) each,
    and a mel-UNet's generated image as _image.png; returns the [(wav, png)] paths."""
    import soundfile as sf
    import tensorflow as tf
    from data.figures import save_clip_figure
    stem = os.path.basename(os.path.normpath(args.run))
    paths = []
    for i, clip in enumerate(audio):
        name = f"{stem}_{args.sampler}_seed{args.seed}_{i}"
        base = os.path.join(args.out, name)
        sf.write(base + ".wav", clip, rate, subtype="PCM_16")
        save_clip_figure(base + ".png", clip, rate, titles[i] if titles else name)
        if images is not None:
            with open(base + "_image.png", "wb") as f:
                f.write(tf.io.encode_png(images[i][..., None]).numpy())
        paths.append((base + ".wav", base + ".png"))
    return paths


@dataclasses.dataclass
class Generated:
    """What one generation made: audio [N, T] at `rate`, the images (mel-UNet) or None, the
    denoising steps run, the wall time, and the family's line about the conditioning."""
    audio: np.ndarray
    images: object
    rate: int
    steps: int
    elapsed: float
    line: str | None


def load(args, load_run=None):
    """(params, family, model, vocoder or None) for parsed `args`, everything checked before any
    work; RunError / ValueError / OSError with a one-line message (a vocoder's prefixed).
    `load_run(run_dir, use_ema)`: registry.load_run, or a caching wrapper of it (app.py)."""
    from diffusion.families.mel.vocoder import load_vocoder
    from diffusion.families.registry import RunError
    if load_run is None:
        from diffusion.families.registry import load_run
    params, family, model = load_run(args.run, use_ema=args.ema)
    check_args(args, params, family)
    family.load_frozen()                        # e.g. a diffgen's DiffAE, loaded and checked
    vocoder = None
    if args.vocoder is not None:
        try:
            vocoder = load_vocoder(args.vocoder, params, family, load_run)
        except (RunError, ValueError) as e:
            raise ValueError(f"--vocoder {e}") from None
    return params, family, model, vocoder


def generate(args, params, family, model, vocoder=None, progress=None) -> Generated:
    """The clips of `args` (generate.py's and app.py's one path): conditioning, sampling with
    `progress(i, total)` after each step (it may raise to cancel), to_audio, vocoder, loop.
    AudioError / ValueError / OSError on bad input, with a one-line message."""
    from diffusion.core.sampling import chunked, edge_mask, encode, slerp
    from diffusion.families.base import Request
    from diffusion.families.mel.vocoder import run_vocoder
    scheduler = family.scheduler(args.sampler, args.steps, args.eta)
    rate = params.data.sample_rate
    cond, shape, seconds, init, other, noise = read_inputs(args, family, model, rate)
    denoise = family.denoiser(model, cond)
    chunk = int(args.chunk_seconds * rate)
    if chunk and hasattr(model, "receptive_field") and shape[1] > 2 * chunk and "mel" not in cond:
        denoise = chunked(denoise, chunk, (model.receptive_field - 1) // 2)
    start = time.perf_counter()
    known = None
    if args.mask_start or args.mask_end:      # keep those seconds of the input at every step
        fps = family.frames_per_second()
        known = (init, edge_mask(shape, family.time_axis, round(args.mask_start * fps),
                                 round(args.mask_end * fps)))
    if args.encode or args.slerp:             # DDIM inversion (image → x_T), then decode
        noise = encode(denoise, scheduler, init).numpy()
        if args.encode:
            np.save(args.encode, noise)
        if args.slerp:
            noise = slerp(noise, encode(denoise, scheduler, other).numpy(), args.alpha)
        init = None
    x = family.sample(model, scheduler, shape, cond, seed=args.seed, denoise=denoise,
                      progress=progress, init=init, strength=args.strength,
                      noise=noise, known=known).numpy()
    request = Request(args.num, seconds, args.seed, args.decode_steps)
    audio, images = family.to_audio(x, request)  # Griffin-Lim for mel images; DiffAE decoding
    if vocoder is not None:                     # neural vocoder instead of Griffin-Lim
        audio = run_vocoder(vocoder, images, family.mel, args.vocoder_gain_db, args.seed)
        rate = vocoder[0].data.sample_rate
    if args.loop:                               # whole bars at the tracked beat, tiled
        from data.beats import make_loop
        try:
            audio = np.stack([make_loop(clip, rate, args.loop) for clip in audio])
        except ValueError as e:
            raise ValueError(f"--loop: {e}") from None
    steps = scheduler.start_index(args.strength) + 1 if init is not None \
        else scheduler.num_inference_steps
    return Generated(audio, images, rate, steps, time.perf_counter() - start,
                     family.describe(args, cond, shape))


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()
    from data.audio_io import AudioError
    from diffusion.families.registry import RunError
    try:
        params, family, model, vocoder = load(args)
        os.makedirs(args.out, exist_ok=True)
        result = generate(args, params, family, model, vocoder, progress_bar(args.sampler))
    except (RunError, AudioError, ValueError, OSError) as e:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        print(f"error: {e}", file=sys.stderr)
        return 2
    if sys.stderr.isatty():
        print(file=sys.stderr)
    write_clips(args, result.audio, result.images, result.rate)
    length = result.audio.shape[1]
    seconds = args.num * length / result.rate
    if result.line:
        print(result.line)
    print(f"wrote {args.num} clip(s) of {length / result.rate:.2f} s to {args.out} "
          f"({args.sampler}, {result.steps} steps, {result.elapsed:.1f} s, "
          f"real-time factor {seconds / result.elapsed:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
