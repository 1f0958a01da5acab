"""Train a model on a directory of audio or a metadata.jsonl.

    python train.py --model diffwave --data dataset/digits --run runs/digits --preset tiny \
        [--set key=value ...] [--prepare-only]

The run directory is self-describing: params.json (the validated hyperparameters) is written
on the first run and must match on every later run with the same directory.
This version prepares the data (decode, resample, cache, skip report) and shows a batch; the
DiffWave training loop lands with the DiffWave issue.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from params import NETWORKS, PRESETS, Params, ParamsError, apply_overrides, get_preset  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="diffwave", choices=sorted(NETWORKS))
    p.add_argument("--data", required=True, help="audio directory (recursive) or metadata.jsonl")
    p.add_argument("--run", required=True, help="run directory (params.json, checkpoints, logs)")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="hyperparameter preset for a new run (default: base)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one hyperparameter, e.g. --set batch_size=8 (repeatable)")
    p.add_argument("--prepare-only", action="store_true",
                   help="decode and cache the data, print a summary and one batch, then stop")
    p.add_argument("--rebuild-cache", action="store_true", help="ignore an existing data cache")
    return p.parse_args(argv)


def resolve_params(args) -> Params:
    """New run: preset + overrides, saved. Existing run: its params.json, which must agree."""
    requested = apply_overrides(get_preset(args.preset or "base", args.model), args.overrides)
    path = os.path.join(args.run, "params.json")
    if not os.path.exists(path):
        requested.save(path)
        return requested
    saved = Params.load(path)
    if args.preset is None:          # resuming: the run's own params, plus any overrides
        requested = apply_overrides(saved, args.overrides)
    if requested != saved:
        new, old = requested.to_dict(), saved.to_dict()
        diffs = [f"{s}.{k}: {old[s][k]!r} → {new[s][k]!r}" for s in Params.SECTIONS
                 for k in new[s] if new[s][k] != old[s][k]]
        if new["model"] != old["model"]:
            diffs.insert(0, f"model: {old['model']!r} → {new['model']!r}")
        raise ParamsError(f"{path} holds other params ({'; '.join(diffs[:3])}); "
                          f"use a new --run directory or the run's own settings")
    return saved


def main(argv=None) -> int:
    args = parse_args(argv)
    from data.pipeline import make_dataset, prepare
    from data.sources import DataError
    try:
        params = resolve_params(args)
        start = time.perf_counter()
        prepared = prepare(args.data, params.data, rebuild=args.rebuild_cache)
    except (ParamsError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(prepared.report.summary())
    print(f"cache: {prepared.path} ({'reused' if prepared.from_cache else 'built'} in "
          f"{time.perf_counter() - start:.1f} s): {prepared.num_clips} clips, "
          f"{prepared.seconds:.1f} s at {params.data.sample_rate} Hz, {prepared.channels} ch")
    batch = next(iter(make_dataset(prepared, params.data, seed=params.train.seed)))
    audio = batch["audio"].numpy()
    print(f"batch: audio {list(audio.shape)}, peak {abs(audio).max():.3f}, "
          f"rms {float((audio ** 2).mean() ** 0.5):.3f}; first caption: "
          f"{batch['caption'].numpy()[0].decode() or '(none)'}")
    print(f"params: {os.path.join(args.run, 'params.json')}")
    if args.prepare_only:
        return 0
    print("error: the DiffWave training loop is not in this version yet; use --prepare-only",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
