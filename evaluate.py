"""Evaluate generated audio against real audio: FAD, an IS-style score, digit accuracy.

    python evaluate.py --run RUN --reference DIR [--num 64] [--seconds 1] [--seed 0] [--out DIR]
    python evaluate.py [--run RUN] --generated DIR --reference DIR [--out DIR]
    python evaluate.py --train-digit-classifier [--data dataset/digits] [--out DIR] [--seed 0]
    options: --embedding birdnet | SAVEDMODEL_DIR [--embedding-rate HZ --embedding-window S
             --embedding-output KEY] · --cache DIR · --digit-classifier DIR

The work is in evaluation/report.py. Embeddings: BirdNET V2.4 (evaluation/birdnet.py), every clip cut into segments of --seconds
(≤ 3 s) zero-padded to the model's window. The reference is split into halves by alternating
file (A: even positions, B: odd); A's statistics are what every set is compared with. Three
sets are scored in the same run so the figures can be read: the generated clips, real clips
(B's windows, evenly spaced, as many as the generated ones) and white noise at the RMS levels
of B's clips. FAD is biased upwards at small n, so only figures at the same n compare.
Sampling: the fast schedule with EMA weights, --num clips of --seconds (default 1 s), balanced
labels for a class-conditional run; with --generated the clips (and labels, from its
metadata.jsonl) are read instead.
IS-style score: exp(E_x KL(p(y|x) ‖ p(y))) over BirdNET's 6522 sigmoid outputs normalised to
sum to 1 per window. Digit accuracy (class-conditional runs, or a --generated dir with labels):
the classifier of `--train-digit-classifier` (evaluation/digit_classifier.py) on the generated
clips against their labels. Writes OUT/report.json, OUT/report.md and OUT/samples/ (WAVs +
metadata.jsonl, re-usable with --generated). Reference statistics are cached
(dataset/cache/fad, or --cache / $AUDIO_DIFFUSION_CACHE/fad) under a fingerprint of every
file's path, size and mtime, the embedding model and the segment length.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from params import quiet_tensorflow  # noqa: E402

ROOT = Path(__file__).resolve().parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", help="a run directory made by train.py (samples are generated)")
    p.add_argument("--generated", help="a directory of generated audio (instead of sampling)")
    p.add_argument("--reference", help="real audio: a directory or metadata.jsonl")
    p.add_argument("--num", type=int, default=64, help="clips to generate (>= 2)")
    p.add_argument("--seconds", type=float, default=None,
                   help="generated length and embedding segment (default 1 s for a run, "
                        "else the median generated clip, at most 3 s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="report directory (default RUN/eval, out/eval) "
                   "or the classifier directory (default runs/digit_classifier)")
    p.add_argument("--cache", default=None, help="reference statistics cache directory")
    p.add_argument("--embedding", default="birdnet", help="birdnet or a SavedModel directory")
    p.add_argument("--embedding-rate", type=int, default=None, help="SavedModel sample rate")
    p.add_argument("--embedding-window", type=float, default=None,
                   help="SavedModel window in seconds")
    p.add_argument("--embedding-output", default=None, help="SavedModel output key or index")
    p.add_argument("--digit-classifier", default=str(ROOT / "pretrained" / "digit-classifier"),
                   help="classifier directory used to score labelled samples and the start of "
                        "--train-digit-classifier ('none': from scratch) (default: the committed "
                        "one, made by make digit-classifier)")
    p.add_argument("--train-digit-classifier", action="store_true",
                   help="train the digit classifier on --data and save it to --out")
    p.add_argument("--data", default=str(ROOT / "dataset" / "digits"),
                   help="labelled digits to train the classifier on")
    p.add_argument("--epochs", type=int, default=40, help="classifier training epochs")
    return p.parse_args(argv)


def check_args(args):
    if args.train_digit_classifier:
        if args.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
        return
    if args.reference is None:
        raise ValueError("give --reference DIR (real audio to compare with)")
    if args.run is None and args.generated is None:
        raise ValueError("give --run RUN (to sample from) or --generated DIR")
    if args.num < 2:
        raise ValueError(f"--num must be >= 2 (a covariance needs two clips), got {args.num}")
    if args.seconds is not None and not args.seconds > 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()
    from data.audio_io import AudioError
    from data.sources import DataError
    from diffusion.families.registry import RunError
    from evaluation.birdnet import EmbeddingError
    try:
        check_args(args)
        if args.train_digit_classifier:
            from evaluation.digit_classifier import DigitClassifier
            out = args.out or "runs/digit_classifier"
            # Fine-tunes --digit-classifier (the committed one by default; "none": from scratch).
            init = (None if args.digit_classifier == "none"
                    else DigitClassifier.load(args.digit_classifier))
            clf = DigitClassifier.train(args.data, out, epochs=args.epochs, seed=args.seed,
                                        init=init)
            print(f"digit classifier: held-out accuracy {100 * clf.heldout_accuracy:.1f} % "
                  f"({clf.config['heldout_count']} clips, {clf.config['split']}); "
                  f"trained in {clf.config['train_seconds']:.0f} s; saved to {out}")
            return 0
        from evaluation.report import evaluate
        report, out = evaluate(args)
    except (RunError, DataError, AudioError, EmbeddingError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    s = report["sets"]
    print(f"FAD: generated {s['generated']['fad']:.3f}, real {s['real']['fad']:.3f}, "
          f"noise {s['noise']['fad']:.3f}; report in {out}/report.md "
          f"({report['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
