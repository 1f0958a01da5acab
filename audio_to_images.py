"""Turn a directory of audio into a stored dataset of mel-spectrogram images (teticio's
audio_to_images), which `train.py --model mel-unet --data IMAGE_DIR` reads without recomputing.

    python audio_to_images.py --data dataset/chorales --out dataset/chorale-images \
        --resolution 64 --hop-length 512 [--sample-rate 22050] [--n-fft 2048] [--top-db 80]

--resolution is "N" (N×N) or "WxH" (x_res frames × y_res mel bands). Audio is decoded, mixed to
mono and resampled with the project's own pipeline (data/pipeline.py, data/filters.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from params import DataParams, quiet_tensorflow  # noqa: E402


def parse_resolution(text: str):
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) <= 0:
        raise ValueError(f"--resolution must be N or WxH (positive integers), got {text!r}")
    return (values[0], values[0]) if len(values) == 1 else tuple(values)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="audio directory (recursive) or metadata.jsonl")
    p.add_argument("--out", required=True, help="new output directory")
    p.add_argument("--resolution", default="256", help="N or WxH (default 256)")
    p.add_argument("--hop-length", type=int, default=512)
    p.add_argument("--sample-rate", type=int, default=22050)
    p.add_argument("--n-fft", type=int, default=2048)
    p.add_argument("--top-db", type=float, default=80.0)
    args = p.parse_args(argv)
    quiet_tensorflow()
    from data.mel import Mel
    from data.mel_images import build_images
    from data.sources import DataError
    try:
        x_res, y_res = parse_resolution(args.resolution)
        mel = Mel(x_res, y_res, args.sample_rate, args.n_fft, args.hop_length, args.top_db)
        start = time.perf_counter()
        count = build_images(args.data, args.out, mel, DataParams())
    except (ValueError, DataError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {count} images of {y_res}×{x_res} to {args.out} "
          f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
