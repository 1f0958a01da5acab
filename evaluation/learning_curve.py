"""The learning curve of a mel vocoder run: every checkpoint's vocoder alone on validation clips.

    python -m evaluation.learning_curve --run RUN --data VALID.jsonl [--max-clips 40]
        [--every N] [--seed 0] [--figure PATH]

For each checkpoint RUN/checkpoints/ckpt-N (or a packaged weights-N.npz) its EMA weights
sample the log-mels of at most --max-clips validation clips, each cut to MAX_SECONDS, on the
fast schedule with no consistency and no refinement (the "vocoder" row of evaluation/vocoder.py:
what training alone bought). One JSON line per step is appended to RUN/curve.jsonl — mean
log-mel L1 (dB), spectral convergence, and the digit head's accuracy on the labelled clips
(evaluation/scorers.py, pretrained/digit-head) — steps already there are skipped, so it can be
re-run while training goes on (a run keeps only its last train.keep_checkpoints). RUN/curve.png
draws log-mel L1 and accuracy against step (--figure: a copy elsewhere).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

if __name__ == "__main__":             # the CLI: no TF start-up chatter (set before importing TF)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

MAX_SECONDS = 1.5                      # clips are cut to this: a curve point stays cheap
CURVE, FIGURE = "curve.jsonl", "curve.png"


def checkpoints(run) -> list:
    """[(step, path)] of a run's checkpoints, oldest first."""
    import glob

    from diffusion.training.checkpoints import checkpoint_step
    directory = glob.escape(os.path.join(str(run), "checkpoints"))
    paths = [p[:-len(".index")] for p in glob.glob(os.path.join(directory, "ckpt-*.index"))]
    paths += glob.glob(os.path.join(directory, "weights-*.npz"))
    return sorted((checkpoint_step(p), p) for p in paths)


def load_checkpoint(model, ema, path) -> None:
    """A checkpoint's EMA weights (a packaged one holds them alone) into `model`."""
    import tensorflow as tf

    from diffusion.families.registry import RunError
    from diffusion.training.checkpoints import is_packaged, load_packaged, restore
    what = "cannot restore into the run's model"
    if is_packaged(path):
        load_packaged(model, path, error=RunError, what=what)
        return
    restore(tf.train.Checkpoint(model=model, ema=ema), path, partial=True, error=RunError,
            what=what)
    ema.copy_to(model)


def read_curve(path) -> list:
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def point(family, model, clips, head, seed: int) -> dict:
    """Mean log-mel L1 (dB), spectral convergence and the head's accuracy of the vocoder alone."""
    from diffusion.core.consistency import Consistency
    from evaluation.vocoder import clip_metrics, conditioning_mel, correct, vocode
    rate, n = family.params.data.sample_rate, family.params.network
    batches, metrics, right = {}, [], []
    for _, audio, label in clips:                              # one batch per clip length
        batches.setdefault(len(audio), []).append((audio, label))
    for batch in batches.values():
        real = np.stack([a for a, _ in batch])
        made = vocode(family, model, conditioning_mel(family, real), seed, Consistency())
        metrics += [clip_metrics(r, y, rate, n) for r, y in zip(real, made)]
        labelled = [i for i, (_, label) in enumerate(batch) if label >= 0]
        if labelled and head is not None:
            right += list(correct(head, [(made[i], rate) for i in labelled],
                                  [batch[i][1] for i in labelled]))
    return {"log_mel_l1_db": float(np.mean([m["log_mel_l1_db"] for m in metrics])),
            "spectral_convergence": float(np.mean([m["spectral_convergence"]
                                                   for m in metrics])),
            "head_accuracy": float(np.mean(right)) if right else None,
            "labelled": len(right)}


def learning_curve(run, data, max_clips: int = 40, every: int = 1, seed: int = 0, head=None,
                   log=print) -> list:
    """Appends a line per new checkpoint step (a multiple of `every`) to RUN/curve.jsonl and
    returns all of the file's lines, by step. `head`: a digit scorer (None: no accuracy)."""
    from diffusion.families.registry import RunError, load_run
    from diffusion.training.ema import EMA
    from evaluation.vocoder import heldout_clips
    path = os.path.join(str(run), CURVE)
    lines = read_curve(path)
    settings = {"data": os.path.abspath(str(data)), "max_clips": max_clips, "seed": seed,
                "max_seconds": MAX_SECONDS}
    other = next((x for x in lines if {k: x.get(k) for k in settings} != settings), None)
    if other is not None:
        raise ValueError(f"{path} holds steps of other settings ({other.get('data')}, "
                         f"{other.get('max_clips')} clips, seed {other.get('seed')}); "
                         f"move it aside or use those")
    done = {x["step"] for x in lines}
    todo = [(s, p) for s, p in checkpoints(run) if s % every == 0 and s not in done]
    if todo:
        params, family, model = load_run(run)
        if params.network.conditioning != "mel":
            raise ValueError(f"{run}: not a mel vocoder run")
        ema = EMA(model, params.train.ema_decay)
        clips = heldout_clips(data, params, max_clips, MAX_SECONDS)
    for step, checkpoint in todo:
        start = time.perf_counter()
        try:
            load_checkpoint(model, ema, checkpoint)
        except RunError as e:                  # e.g. deleted by the training job meanwhile
            log(f"step {step}: skipped ({e})")
            continue
        line = {"step": step, **settings, "clips": len(clips),
                **point(family, model, clips, head, seed)}
        line["seconds"] = round(time.perf_counter() - start, 1)
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")
        lines.append(line)
        acc = "–" if line["head_accuracy"] is None else f"{100 * line['head_accuracy']:.1f} %"
        log(f"step {step}: log-mel L1 {line['log_mel_l1_db']:.2f} dB, spectral convergence "
            f"{line['spectral_convergence']:.3f}, digit head {acc} ({line['seconds']} s)")
    return sorted(lines, key=lambda x: x["step"])


def draw(lines, path, title: str = "") -> str:
    """A PNG of log-mel L1 (dB) and the digit head's accuracy against step (matplotlib's
    object API, as data/figures.py)."""
    from matplotlib.figure import Figure
    steps = [x["step"] for x in lines]
    fig = Figure(figsize=(7.0, 5.0), dpi=100)
    l1_ax, acc_ax = fig.subplots(2, 1, sharex=True)
    l1_ax.plot(steps, [x["log_mel_l1_db"] for x in lines], "o-", color="tab:blue")
    l1_ax.set_ylabel("log-mel L1 (dB)")
    scored = [(x["step"], 100 * x["head_accuracy"]) for x in lines
              if x.get("head_accuracy") is not None]
    if scored:
        acc_ax.plot(*zip(*scored), "o-", color="tab:green")
    acc_ax.set_ylim(-3, 103)
    acc_ax.set_ylabel(f"digit head accuracy (%, {lines[-1].get('labelled', 0)} clips)")
    acc_ax.set_xlabel("training step")
    for ax in (l1_ax, acc_ax):
        ax.grid(alpha=0.3)
    fig.suptitle(title or "vocoder alone (fast schedule, EMA weights)", fontsize=10)
    fig.savefig(path, format="png")
    return str(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a mel vocoder run directory (train.py)")
    p.add_argument("--data", required=True, help="validation clips: a metadata .jsonl or dir")
    p.add_argument("--max-clips", type=int, default=40, help="at most this many clips")
    p.add_argument("--every", type=int, default=1, help="only steps that are multiples of N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", default=None, help="also copy the figure to this path")
    args = p.parse_args(argv)
    from params import quiet_tensorflow
    quiet_tensorflow()
    from data.sources import DataError
    from diffusion.families.registry import RunError
    from evaluation.scorers import load_head
    try:
        if args.max_clips < 1 or args.every < 1:
            raise ValueError(f"--max-clips and --every must be >= 1, got {args.max_clips}, "
                             f"{args.every}")
        if not checkpoints(args.run):
            raise RunError(f"{args.run}: no checkpoint yet (train it first)")
        head = load_head()
        if isinstance(head, str):
            print(f"warning: no digit accuracy: {head}", file=sys.stderr)
            head = None
        lines = learning_curve(args.run, args.data, args.max_clips, args.every, args.seed,
                               head)
        if not lines:
            raise ValueError(f"{args.run}: no checkpoint at a multiple of {args.every}")
        figure = draw(lines, os.path.join(args.run, FIGURE),
                      f"{os.path.basename(os.path.normpath(args.run))}: vocoder alone on "
                      f"{lines[-1]['clips']} clips of {os.path.basename(args.data)}")
        if args.figure:
            shutil.copyfile(figure, args.figure)
    except (RunError, DataError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(lines)} steps in {os.path.join(args.run, CURVE)}; figure {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
