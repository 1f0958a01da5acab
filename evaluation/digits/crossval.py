"""Leave-one-engine-out and leave-voices-out accuracy of the digit classifier, and the committed
model's recipe (issue #18): `make digit-classifier`, or

    python -m evaluation.digits.crossval [--corpus dataset/cache/voices] [--epochs 20]
        [--out pretrained/digit-classifier] [--only loeo,final,lovo] [--work runs/digit_crossval]
        [--revoice 0.3]       (the LPC re-voicing augmentation on that share of clips; off)
    python -m evaluation.digits.crossval --corpus dataset/cache/voices-kokoro --only score:kokoro
    python -m evaluation.digits.crossval --corpus dataset/cache/voices-kokoro --only score:flite \
        --scorer sphinx                     # PocketSphinx (evaluation/digits/sphinx.py)
        (the committed classifier on Kokoro's neural voices, which it never heard)

The corpus is dataset/build_voices.py's (espeak-ng, flite, festival, Kokoro; tagged by engine,
voice and speaker). LOEO: a fold per engine, each trained on the others and tested on every
clip of the held-out one. LOVO: LOVO_FOLDS, each holding out whole speakers (a CMU speaker with every engine
that uses their recordings, e.g. slt in flite and festival, plus espeak-ng accents) from
training. Every fold model is also scored on the bundled dataset/digits clips of what it held
out. The final classifier trains on the whole corpus (the bundled clips stay unseen) and is
scored on them clean, through a telephone band, in a reverberant room and at 10 dB SNR.
Fold results are cached in WORK/folds.json (keyed by fold and settings), so a re-run only
trains what is missing; the table and the model card go into OUT/config.json and OUT/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from evaluation.digits.augment import AUGMENT_PROBS

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ("espeak-ng", "flite", "festival", "kokoro")   # those in the corpus are folds
# Held-out speakers per LOVO fold: every CMU speaker once (kal = flite kal/kal16 + festival kal,
# slt = flite + festival slt), and four espeak-ng accents.
LOVO_FOLDS = (("awb", "ked", "en-gb-scotland"), ("slt", "rms", "en-029"),
              ("kal", "en-us-nyc", "en-gb-x-gbclan"))


def load_corpus(directory) -> dict:
    """voices.npz as {"audio": float32 [N, 16000], "label", "engine", "voice", "speaker"}."""
    path = Path(directory) / "voices.npz"
    if not path.is_file():
        raise ValueError(f"{path} not found; build it with: python dataset/build_voices.py")
    with np.load(path) as data:
        corpus = {k: data[k] for k in ("label", "engine", "voice", "speaker", "source")}
        corpus["audio"] = data["audio"].astype(np.float32) / 32767.0
    return corpus


def leave_out(groups, held) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): test = every item whose group is in `held`, train = the rest."""
    groups = np.asarray(groups)
    held = [held] if isinstance(held, str) else list(held)
    missing = set(held) - set(groups.tolist())
    if missing:
        raise ValueError(f"no clips of {sorted(missing)} to hold out")
    test = np.isin(groups, held)
    return np.flatnonzero(~test), np.flatnonzero(test)


def bundled(synths=None):
    """The bundled dataset/digits (audio, labels, engine per clip), optionally only `synths`."""
    from evaluation.digits.classifier import load_labelled
    directory = ROOT / "dataset" / "digits"
    audio, labels, paths = load_labelled(directory)
    rows = {json.loads(line)["path"]: json.loads(line)["synth"]
            for line in open(directory / "metadata.jsonl")}
    engine = np.array([rows[Path(p).name] for p in paths])
    keep = np.ones(len(labels), bool) if synths is None else np.isin(engine, list(synths))
    return audio[keep], labels[keep], engine[keep]


def by_group(classifier, audio, labels, groups) -> dict:
    """{group: {"accuracy", "count", "wrong_as": {true→predicted counts}}} plus "all"."""
    return predictions_by_group(classifier.predict(audio), labels, groups)


def predictions_by_group(predicted, labels, groups) -> dict:
    """by_group() of given predictions."""
    out = {}
    for g in [*sorted(set(groups.tolist())), "all"]:
        mask = np.ones(len(labels), bool) if g == "all" else groups == g
        wrong = {}
        for t, p in zip(labels[mask], predicted[mask]):
            if t != p:
                wrong[f"{t}->{p}"] = wrong.get(f"{t}->{p}", 0) + 1
        out[g] = {"accuracy": float(np.mean(predicted[mask] == labels[mask])),
                  "count": int(mask.sum()), "wrong_as": dict(sorted(wrong.items()))}
    return out


def run_fold(corpus, name, column, held, epochs, seed, network=None, probs=None,
             log=print) -> dict:
    from evaluation.digits.classifier import DigitClassifier
    train, test = leave_out(corpus[column], held)
    log(f"{name}: train {len(train)} clips, test {len(test)} ({column} {', '.join(held)})")
    clf = DigitClassifier.fit(corpus["audio"][train], corpus["label"][train], epochs, seed,
                              log=log, network=network, probs=probs)
    result = {"held_out": list(held), "train_count": len(train),
              "train_seconds": clf.config["train_seconds"],
              "corpus": by_group(clf, corpus["audio"][test], corpus["label"][test],
                                 corpus["voice"][test])}
    audio, labels, engine = bundled(held)
    if column == "engine" and len(labels):  # the bundled clips of the held-out engine too
        result["bundled"] = by_group(clf, audio, labels, engine)
    log(f"{name}: {100 * result['corpus']['all']['accuracy']:.1f} % on held-out clips "
        f"({clf.config['train_seconds']:.0f} s)")
    return result


def robustness(classifier, seed: int = 0) -> dict:
    """Accuracy per engine on the bundled clips: clean and under three augmentations."""
    from evaluation.digits import augment as aug
    audio, labels, engine = bundled()
    rng = np.random.default_rng(seed)
    variants = {"clean": audio, "telephone 300-3400 Hz": aug.telephone(audio),
                "reverb RT60 0.3-0.6 s": aug.reverb(audio, rng, rt60=(0.3, 0.6)),
                "white noise 10 dB SNR": aug.add_noise(audio, rng.standard_normal(audio.shape),
                                                        10.0)}
    return {k: {g: r["accuracy"] for g, r in by_group(classifier, x, labels, engine).items()}
            for k, x in variants.items()}


def relative(path) -> str:
    """`path` relative to the repository when inside it (configs are committed)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        name = platform.processor() or "unknown CPU"
    return f"{name}, {os.cpu_count()} cores"


def train_final(corpus, args, network, probs, settings) -> None:
    from evaluation.digits.classifier import DigitClassifier
    print(f"final: train {len(corpus['label'])} clips")
    clf = DigitClassifier.fit(corpus["audio"], corpus["label"], args.epochs, args.seed,
                              network=network, probs=probs, settings=settings, cpu=cpu_model(),
                              data=f"{relative(args.corpus)}/voices.npz (dataset/build_voices.py)")
    robust = robustness(clf, args.seed)
    clf.config.update(heldout_accuracy=robust["clean"]["all"],
                      heldout_count=int(len(bundled()[1])), robustness=robust,
                      split="trained on the whole voice corpus; held out: the bundled "
                            "dataset/digits clips")
    clf.save(args.out)
    print(f"final: {100 * robust['clean']['all']:.1f} % on the bundled digits; saved to "
          f"{args.out}")


def score_engine(corpus, engine: str, out, scorer: str = "classifier") -> str:
    """The committed classifier (OUT), or PocketSphinx (scorer "sphinx"), on every corpus clip
    of `engine`, per voice: for voices it never heard (Kokoro's, when OUT was trained without
    them; every voice, for PocketSphinx)."""
    from evaluation.digits.card import confusions, pct
    from evaluation.digits.classifier import DigitClassifier
    from evaluation.digits.sphinx import SphinxDigits
    keep = corpus["engine"] == engine
    if not keep.any():
        raise ValueError(f"the corpus has no {engine} clips")
    model = SphinxDigits() if scorer == "sphinx" else DigitClassifier.load(str(out))
    name = "PocketSphinx" if scorer == "sphinx" else relative(out)
    result = by_group(model, corpus["audio"][keep], corpus["label"][keep], corpus["voice"][keep])
    lines = [f"| {name} on {engine} voices | clips | accuracy | most common confusions |",
             "|---|---:|---:|---|"]
    lines += [f"| {voice} | {r['count']} | {pct(r['accuracy'])} | {confusions(r)} |"
              for voice, r in result.items()]
    return "\n".join(lines)


def write_folds(out, folds: dict, settings: str) -> None:
    """Puts the fold results into OUT's config.json and model card (same settings only)."""
    from evaluation.digits.card import write_card
    path = Path(out) / "config.json"
    if not path.exists():
        return
    config = json.loads(path.read_text())
    if config.get("settings") != settings:
        print(f"note: {out} was trained with other settings; its card is left as it is")
        return
    config["folds"] = folds
    path.write_text(json.dumps(config, indent=2))
    write_card(out, config)


def main(argv=None) -> int:
    from evaluation.digits.card import fold_table
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=str(ROOT / "dataset" / "cache" / "voices"))
    p.add_argument("--out", default=str(ROOT / "pretrained" / "digit-classifier"))
    p.add_argument("--work", default=str(ROOT / "runs" / "digit_crossval"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warp", type=float, default=1.0, help="frequency-warp factor (1: off)")
    p.add_argument("--cepstra", type=int, default=20,
                   help="lifter the log-mel to this many cepstral coefficients (0: off)")
    p.add_argument("--band-norm", action=argparse.BooleanOptionalAction, default=False,
                   help="per-band mean normalisation of the log-mel")
    p.add_argument("--revoice", type=float, default=AUGMENT_PROBS["revoice"],
                   help="share of clips re-voiced per epoch (LPC envelope, new source)")
    p.add_argument("--only", default="loeo,final,lovo",
                   help="comma list of loeo, final, lovo (or one fold: loeo:flite, lovo:0), "
                        "score:ENGINE (OUT's classifier on that engine's clips), in that order")
    p.add_argument("--scorer", choices=("classifier", "sphinx"), default="classifier",
                   help="score:ENGINE with OUT's classifier or with PocketSphinx")
    p.add_argument("--write-card", action="store_true",
                   help="put the fold table into OUT's config.json and model card")
    args = p.parse_args(argv)
    plan = {"loeo": [(f"loeo:{e}", "engine", (e,)) for e in ENGINES],
            "lovo": [(f"lovo:{'+'.join(h)}", "speaker", h) for h in LOVO_FOLDS]}
    plan |= {f"loeo:{e}": [f] for e, f in zip(ENGINES, plan["loeo"])}     # single folds too
    plan |= {f"lovo:{i}": [f] for i, f in enumerate(plan["lovo"])}
    plan |= {f"score:{e}": [] for e in ENGINES}
    parts = args.only.split(",")
    if set(parts) - {*plan, "final"}:
        p.error(f"--only: unknown parts {sorted(set(parts) - {*plan, 'final'})}")
    try:
        corpus = load_corpus(args.corpus)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    network = {"band_norm": args.band_norm, "cepstra": args.cepstra, "warp": args.warp}
    probs = {"revoice": args.revoice}
    settings = (f"epochs={args.epochs} seed={args.seed} clips={len(corpus['label'])} "
                f"network={json.dumps(network, sort_keys=True)}")
    if args.revoice:              # (the key of the runs before re-voicing had no such part)
        settings += f" revoice={args.revoice:g}"
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cache_path = work / "folds.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    for part in parts:
        if part == "final":
            train_final(corpus, args, network, probs, settings)
        if part.startswith("score:"):
            try:
                print(score_engine(corpus, part.split(":", 1)[1], args.out, args.scorer))
            except (ValueError, OSError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
        for name, column, held in plan.get(part, []):
            if column == "engine" and held[0] not in set(corpus["engine"].tolist()):
                print(f"skipped {name}: the corpus has no {held[0]} clips")
                continue
            if f"{name} {settings}" not in cache:
                result = run_fold(corpus, name, column, held, args.epochs, args.seed, network,
                                  probs)
                # re-read first: another process may be running other folds into the same file
                cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
                cache[f"{name} {settings}"] = result
                cache_path.write_text(json.dumps(cache, indent=1))
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    folds = {k.split(" ")[0]: v for k, v in cache.items() if k.endswith(f" {settings}")}
    if args.write_card:               # nothing writes into pretrained/ unless asked
        write_folds(args.out, folds, settings)
    print(fold_table(folds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
