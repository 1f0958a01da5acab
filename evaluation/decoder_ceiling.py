"""The decoder's ceiling for a mel-UNet run's FAD: the real clips of half B of a reference, each
through the run's 8-bit mel image (as the model sees its data) and back by Griffin-Lim, written
as WAVs. Scored like generated audio, they give the FAD no sampler can beat with this decoder:

    python -m evaluation.decoder_ceiling --run pretrained/chorales \
        --reference dataset/splits/train-chorales.jsonl --out runs/pretrained-eval/chorales-ceiling
    python evaluate.py --generated runs/pretrained-eval/chorales-ceiling --seconds 1 \
        --reference dataset/splits/train-chorales.jsonl
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def write_ceiling(run, reference, out) -> int:
    """Half B of `reference` (the odd clips, evaluate.py's real set) through the run's Mel and
    Griffin-Lim into OUT/*.wav; returns the number of clips."""
    import numpy as np
    import soundfile as sf

    from data.features import read_mono
    from data.mel import Mel
    from data.sources import find_sources
    from params import Params
    params = Params.load(os.path.join(run, "params.json"))
    if params.model != "mel-unet":
        raise ValueError(f"{run}: a {params.model} run; the ceiling is for mel-unet runs")
    n, rate = params.network, params.data.sample_rate
    os.makedirs(out, exist_ok=True)
    half_b = find_sources(str(reference)).sources[1::2]
    for source in half_b:
        audio = np.asarray(read_mono(source.path, rate))
        frames = max(1, len(audio) // n.hop_length)            # the whole clip as one image
        mel = Mel(frames, n.y_res, rate, n.n_fft, n.hop_length, n.top_db, n.n_iter)
        mel.load_audio(raw_audio=audio)
        sf.write(os.path.join(out, Path(source.path).stem + ".wav"),
                 mel.image_to_audio(mel.audio_slice_to_image(0)), rate)
    return len(half_b)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a mel-unet run directory")
    p.add_argument("--reference", required=True, help="the reference evaluate.py is given")
    p.add_argument("--out", required=True, help="directory for the WAVs")
    args = p.parse_args(argv)
    try:
        count = write_ceiling(args.run, args.reference, args.out)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{count} clips of half B through the mel image and Griffin-Lim → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
