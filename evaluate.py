"""Evaluate generated audio against real audio: FAD, an IS-style score, digit accuracy.

    python evaluate.py --run RUN --reference DIR [--num 64] [--seconds 1] [--seed 0] [--out DIR]
    python evaluate.py [--run RUN] --generated DIR --reference DIR [--out DIR]
    python evaluate.py --train-digit-classifier [--data dataset/digits] [--out DIR] [--seed 0]
    python evaluate.py --check-embedding [--embedding NAME] [--domain speech|music|all]
    python evaluate.py --compare REPORT.json REPORT.json
    python evaluate.py --run VOCODER_RUN [--reference dataset/splits/heldout.jsonl] [--out DIR]
    python evaluate.py --run MEL_UNET_RUN --vocoder VOCODER_RUN --reference DIR [--num 1000]
    options: --embedding auto | birdnet | digit-classifier | SAVEDMODEL_DIR
             [--embedding-rate HZ --embedding-window S --embedding-output KEY] ·
             --domain auto | speech | music · --cache DIR · --digit-classifier DIR

The work is in evaluation/report.py. Embeddings (evaluation/embeddings.py): BirdNET V2.4
(evaluation/birdnet.py), the digit classifier's penultimate features, or a SavedModel; every
clip is cut into segments of --seconds (≤ the model's window) zero-padded to the window. An
embedding reports FAD only on a domain where it passed the ordering check
(evaluation/ordering.py: held-out real < noise, monotone in added noise at SNR 30/20/10/0 dB,
n ≥ 100); "auto" picks the one that passed on the reference's domain (speech: a labelled
reference, else music), and any other choice that has not passed is refused.
--check-embedding runs that check on the bundled digits / chorales, prints its figures and
caches the result under the embedding's id (how a SavedModel or a classifier other than the
committed one gets to report). Every report lists which metric checks hold
(evaluation/checks.py). FAD comes with its n and a bootstrap 95 % interval; --compare refuses
two reports whose figures were made at different n.

The reference is split into halves by alternating file (A: even positions, B: odd); A's
statistics are what every set is compared with. Three sets are scored in the same run so the figures can be read: the generated clips, real clips
(B's windows, evenly spaced, as many as the generated ones) and white noise at the RMS levels
of B's clips. FAD is biased upwards at small n, so only figures at the same n compare.
Sampling: the fast schedule with EMA weights, --num clips of --seconds (default 1 s), balanced
labels for a class-conditional run; with --generated the clips (and labels, from its
metadata.jsonl) are read instead.
IS-style score (BirdNET only): exp(E_x KL(p(y|x) ‖ p(y))) over BirdNET's 6522 sigmoid outputs
normalised to sum to 1 per window. Digit accuracy (class-conditional runs, or a --generated
dir with labels): --digit-classifier (default pretrained/digit-classifier, evaluation/digits/classifier.py;
`make digit-classifier` remakes it, --train-digit-classifier fine-tunes it) on the generated
clips against their labels, and beside it two scorers built on real speech
(evaluation/scorers.py): PocketSphinx and the digit head on Google's speech embedding
(pretrained/digit-head), on the generated, real and noise sets. Writes OUT/report.json, OUT/report.md and OUT/samples/ (WAVs +
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
    p.add_argument("--vocoder", default=None, metavar="DIFFWAVE_RUN",
                   help="mel-unet runs: turn the images into audio with this mel-conditioned "
                        "DiffWave run instead of Griffin-Lim")
    p.add_argument("--guidance", type=float, default=None,
                   help="class runs trained with network.cfg_drop: classifier-free guidance "
                        "scale (default the run's network.guidance; 1 = none)")
    p.add_argument("--seconds", type=float, default=None,
                   help="generated length and embedding segment (default 1 s for a run, "
                        "else the median generated clip, at most 3 s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="report directory (default runs/eval/<run "
                   "name>, never inside the run; out/eval for --generated) or the classifier "
                   "directory (default runs/digit_classifier)")
    p.add_argument("--cache", default=None, help="reference statistics cache directory")
    p.add_argument("--embedding", default="auto",
                   help="auto, birdnet, digit-classifier or a SavedModel directory")
    p.add_argument("--domain", default="auto", choices=("auto", "speech", "music", "all"),
                   help="the reference's audio domain (auto: speech if labelled, else music); "
                        "all: both, for --check-embedding")
    p.add_argument("--check-embedding", action="store_true",
                   help="run the FAD ordering check of --embedding on the bundled data")
    p.add_argument("--compare", nargs=2, metavar="REPORT", default=None,
                   help="compare two report.json files (refused at different n)")
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
    if args.compare or args.check_embedding:
        return
    if args.domain == "all":
        raise ValueError("--domain all is for --check-embedding; give speech, music or auto")
    if args.reference is None and args.run is None:     # a vocoder run has its own default
        raise ValueError("give --reference DIR (real audio to compare with)")
    if args.run is None and args.generated is None:
        raise ValueError("give --run RUN (to sample from) or --generated DIR")
    if args.vocoder is not None and (args.run is None or args.generated is not None):
        raise ValueError("--vocoder goes with --run MEL_UNET_RUN (it decodes the sampled images)")
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
            from evaluation.digits.classifier import DigitClassifier
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
        if args.compare:
            return compare(args.compare)
        if args.check_embedding:
            return check_embedding(args)
        pipe = None
        if args.run is not None:                  # a missing or broken run fails first
            from diffusion import Pipeline
            pipe = Pipeline.from_pretrained(args.run)
            if args.generated is None and pipe.accepts.kind == "vocoder":
                return evaluate_vocoder(args, pipe)
        if args.reference is None:
            raise ValueError("give --reference DIR (real audio to compare with)")
        from evaluation.report import evaluate
        report, out = evaluate(args, pipe=pipe)
    except (RunError, DataError, AudioError, EmbeddingError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    s = report["sets"]
    print("metric checks:\n" + "\n".join("  " + line for line in report["check_lines"]))
    print(f"FAD ({report['embedding']['name']}, {report['domain']}, n = "
          f"{s['generated']['windows']}, reference n = {s['generated']['n_reference']}): "
          + ", ".join(f"{name} {s[name]['fad']:.3f} [{s[name]['low']:.3f}, "
                      f"{s[name]['high']:.3f}]" for name in ("generated", "real", "noise"))
          + f"; report in {out}/report.md ({report['seconds']:.1f} s)")
    return 0


def evaluate_vocoder(args, pipe) -> int:
    """--run of a mel vocoder: real / Griffin-Lim / vocoder / Griffin-Lim + refinement /
    vocoder + consistency from the log-mels of held-out clips (--reference, default
    dataset/splits/heldout.jsonl): digit accuracies, log-mel L1, spectral convergence, their
    paired bootstrap comparisons, and each version's FAD against the same kind of training
    clips, with the real-vs-real and noise baselines of that FAD (evaluation/vocoder.py).
    Written to --out, default runs/eval/<run name>; `pipe`: the run's Pipeline."""
    import copy
    import json

    from data.sources import find_sources
    from evaluation import vocoder, vocoder_writer
    from evaluation.report import default_out, evaluate, load_classifier
    from evaluation.scorers import load_scorers
    out = args.out or default_out(args.run)
    if os.path.isdir(out) and os.listdir(out):
        raise ValueError(f"{out} exists and is not empty; choose a new --out")
    reference = args.reference or str(ROOT / vocoder.HELDOUT)
    labelled = any(s.label >= 0 for s in find_sources(reference).sources)
    report = vocoder.vocoder_report(pipe, reference,
                                    load_classifier(args.digit_classifier) if labelled else None,
                                    args.seed, keep_audio=True,
                                    scorers=load_scorers() if labelled else None)
    notes = report["notes"]
    for (group, version), directory in vocoder_writer.write_sets(report, out).items():
        if group not in vocoder.FAD_REFERENCES:          # the corpus's speech: none named
            if version == "real":
                notes.append(f"{group}: no FAD (no training reference of that kind).")
            continue
        fad_args = copy.copy(args)
        fad_args.run, fad_args.generated, fad_args.out = None, directory, directory + "-fad"
        fad_args.reference = str(ROOT / vocoder.FAD_REFERENCES[group])
        fad_args.seconds = args.seconds or 0.99          # whole mel frames of a 1 s digit
        try:
            fad, _ = evaluate(fad_args, log=lambda *a: None)
        except ValueError as e:                          # e.g. no embedding passed here
            notes.append(f"{group} {version}: no FAD ({e})")
            continue
        s = fad["sets"]
        report["groups"][group][version]["fad"] = {
            **{k: s["generated"][k] for k in ("fad", "low", "high", "windows")},
            "real": s["real"]["fad"], "noise": s["noise"]["fad"],
            "embedding": fad["embedding"]["name"]}
        if version == "vocoder":
            notes += [f"{group} FAD ({fad['embedding']['name']}): {line}"
                      for line in fad["check_lines"]]
    del report["audio"]
    report.update(run=args.run, notes=notes)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    text = vocoder_writer.markdown(report)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text)
    print(text + f"report in {out}/report.md ({report['seconds']:.0f} s of vocoding)")
    return 0


def compare(paths) -> int:
    """Prints the generated, real and noise FADs of two reports side by side; a ComparisonError
    (a ValueError: one line, exit 2) when they were made at different n."""
    import json

    from evaluation.checks import compare_reports
    reports = []
    for path in paths:
        try:
            with open(path) as f:
                reports.append(json.load(f))
        except ValueError as e:
            raise ValueError(f"{path}: not a report.json ({e.__class__.__name__})") from None
    for name in ("generated", "real", "noise"):
        print(compare_reports(*reports, name))
    return 0


def check_embedding(args) -> int:
    """The FAD ordering check of --embedding (auto: both built-ins) on --domain (all, auto:
    speech and music); prints the table, caches each result under the embedding's id; exit 1
    if a check fails."""
    from evaluation.embeddings import DOMAINS, load_embedder, save_check
    from evaluation.ordering import ordering_check, ordering_table
    names = ("birdnet", "digit-classifier") if args.embedding == "auto" else (args.embedding,)
    domains = DOMAINS if args.domain in ("all", "auto") else (args.domain,)
    embedders = [load_embedder(name, args.embedding_rate, args.embedding_window,
                               args.embedding_output, args.digit_classifier)
                 for name in names]                   # all found before any work
    results = []
    for embedder in embedders:
        for domain in domains:
            results.append(ordering_check(embedder, domain, seed=args.seed))
            save_check(results[-1], args.cache)
    print(ordering_table(results))
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
