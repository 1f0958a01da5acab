"""Leave-one-engine-out and leave-voices-out accuracy of the digit head on the speech embedding
(evaluation/digits/head.py), and the committed head's recipe (issue #18): `make digit-head`, or

    python -m evaluation.digits.head_crossval [--corpus dataset/cache/voices] [--renders 4]
        [--warps 4] [--members 3] [--epochs 40] [--out pretrained/digit-head]
        [--only loeo,lovo,final] [--work runs/digit_head]
    python -m evaluation.digits.head_crossval --corpus dataset/cache/voices-kokoro \\
        --only score:kokoro      # the committed head on Kokoro's neural voices, never heard

The same folds as evaluation/digits/crossval.py (the CNN classifier's), so the two tables
compare. The embedding is frozen, so every clip is embedded once, cached in
WORK/embeddings-*.npz: clean, in RENDERS augmented renders (augment's chain on the clip
centred in 2 s), in WARPS renders whose mel input is frequency-warped (VTLP, up to ×WARP), and
at the head's test-time speeds. A fold then trains only the heads on its training clips'
clean, augmented and warped embeddings (seconds each) and is scored on the held-out clips'
clean and sped-up views, as DigitHead.predict scores.

    python -m evaluation.digits.head_crossval --only card   # OUT's card again from its
        config.json (no training), and the table of what each figure was used for

The recipe (warps, 3 members, speeds 0.9/1.1, 128 hidden units, 40 epochs) was chosen on the
folds in CHOSEN_ON: the espeak-ng fold (from 85.9 % with one head and audio renders only; the
search, whose scripts are not in the repository, stopped at the first recipe over 90 %) and
the three leave-voices-out folds. The flite and festival folds were not used to choose, but
their voices are held out in those LOVO folds. An engine scored with score:ENGINE
--write-card (Kokoro's voices) was never used for any choice: the card gives it, with a Wilson
95 % interval like every figure there, as the selection-free estimate.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from evaluation.digits.crossval import (
    ENGINES,
    LOVO_FOLDS,
    ROOT,
    bundled,
    cpu_model,
    leave_out,
    load_corpus,
    predictions_by_group,
    relative,
    robustness,
)

CHUNK = 256                                    # clips augmented and embedded at a time
# The folds the committed recipe was chosen on (docs/evaluation.md, "The digit head").
CHOSEN_ON = ("loeo:espeak-ng", *(f"lovo:{'+'.join(held)}" for held in LOVO_FOLDS))
WARP = 1.15                                    # the mel warp's largest factor (and 1/WARP)


def warped(embed, mels, seed: int) -> np.ndarray:
    """Window embeddings of `mels` [N, F, 32] with each clip's bands warped by a random
    factor in [1/WARP, WARP] (features.FrequencyWarp, the CNN's VTLP)."""
    from evaluation.digits.features import FrequencyWarp
    warp = FrequencyWarp(WARP, seed=seed)
    return embed.from_mels(np.asarray(warp(mels[..., None], training=True))[..., 0])


def corpus_embeddings(corpus, corpus_dir, renders: int, warps: int, seed: int, work) -> dict:
    """{"clean" [N, K, 96], "augmented" [N, renders + warps, K, 96], "views" [N, speeds, K,
    96]}, cached under WORK by the corpus file's size and time, the embedding's model files,
    renders, warps, speeds and seed."""
    from evaluation.digits.augment import augment
    from evaluation.digits.head import SPEEDS, views
    from evaluation.speech_embedding import SpeechEmbedding, centred, model_files
    stat = (Path(corpus_dir) / "voices.npz").stat()
    models = " ".join(f"{Path(p).name}:{Path(p).stat().st_size}" for p in model_files())
    key = hashlib.sha1(f"{stat.st_size} {stat.st_mtime_ns} {models} {renders} {warps} "
                       f"{WARP} {SPEEDS} {seed}".encode())
    path = Path(work) / f"embeddings-{key.hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as cached:
            return dict(cached)
    embed, audio = SpeechEmbedding(), corpus["audio"]
    start = time.perf_counter()
    mels = embed.mels(audio)
    clean = embed.from_mels(mels)
    augmented = []
    for r in range(renders):
        rng = np.random.default_rng([seed, r])
        augmented.append(np.concatenate([embed(augment(centred(audio[i:i + CHUNK]), rng))
                                         for i in range(0, len(audio), CHUNK)]))
        print(f"render {r + 1}/{renders} embedded ({time.perf_counter() - start:.0f} s)",
              flush=True)
    augmented += [warped(embed, mels, seed * 1000 + w) for w in range(warps)]
    sped = [embed(view) for view in views(audio)[1:]]
    print(f"{warps} warped renders and {len(sped)} test-time views embedded "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    cached = {"clean": clean, "augmented": np.stack(augmented, 1), "views": np.stack(sped, 1)}
    Path(work).mkdir(parents=True, exist_ok=True)
    np.savez(path, **cached)
    return cached


def training_set(embeddings, index):
    """[n, 1 + renders + warps, K, 96]: each training clip clean and in its renders."""
    return np.concatenate([embeddings["clean"][index][:, None],
                           embeddings["augmented"][index]], 1)


def scored_views(embeddings, index) -> list:
    """The clips' clean embeddings and their test-time views, as DigitHead.logits_of takes."""
    return [embeddings["clean"][index]] + list(embeddings["views"][index].transpose(1, 0, 2, 3))


def run_fold(corpus, embeddings, name, column, held, args, bundled_embed) -> dict:
    from evaluation.digits.head import DigitHead
    train, test = leave_out(corpus[column], held)
    head = DigitHead.fit(training_set(embeddings, train), corpus["label"][train], args.epochs,
                         args.seed, args.members)
    predicted = head.logits_of(*scored_views(embeddings, test)).argmax(1)
    result = {"held_out": list(held), "train_count": len(train),
              "train_seconds": head.config["train_seconds"],
              "corpus": predictions_by_group(predicted, corpus["label"][test],
                                             corpus["voice"][test])}
    if column == "engine":                   # the bundled clips of the held-out engine too
        emb, labels, engine = bundled_embed
        keep = np.isin(engine, held)
        if keep.any():
            scores = head.logits_of(*(view[keep] for view in emb))
            result["bundled"] = predictions_by_group(scores.argmax(1), labels[keep],
                                                     engine[keep])
    print(f"{name}: {100 * result['corpus']['all']['accuracy']:.1f} % on {len(test)} "
          f"held-out clips (trained on {len(train)}, {head.config['train_seconds']:.0f} s)",
          flush=True)
    return result


def train_final(corpus, embeddings, args, folds) -> None:
    from evaluation.digits.head import DigitHead
    head = DigitHead.fit(training_set(embeddings, np.arange(len(corpus["label"]))),
                         corpus["label"], args.epochs, args.seed, args.members,
                         warps=args.warps, warp=WARP, cpu=cpu_model(),
                         data=f"{relative(args.corpus)}/voices.npz (dataset/build_voices.py)",
                         engines=sorted(set(corpus["engine"].tolist())))
    robust = robustness(head, args.seed)
    head.config.update(heldout_accuracy=robust["clean"]["all"],
                       heldout_count=int(len(bundled()[1])), robustness=robust, folds=folds)
    head.save(args.out)
    write_card(args.out, head.config)
    print(f"final: {100 * robust['clean']['all']:.1f} % on the bundled digits; saved to "
          f"{args.out}")


def score_engine(corpus, engine: str, out, write_card_too: bool = False) -> str:
    """The committed head (OUT) on every corpus clip of `engine`, per voice; with
    write_card_too, an engine it was not trained on goes into OUT's config and card ("never
    heard")."""
    from evaluation.digits.head import DigitHead
    keep = corpus["engine"] == engine
    if not keep.any():
        raise ValueError(f"the corpus has no {engine} clips")
    head = DigitHead.load(str(out))
    result = predictions_by_group(head.predict(corpus["audio"][keep]), corpus["label"][keep],
                                  corpus["voice"][keep])
    if write_card_too and engine not in head.config.get("engines", [engine]):
        head.config.setdefault("never_heard", {})[engine] = result
        head.save(out)
        write_card(out, head.config)
    return engine_table(f"{relative(out)} on {engine} voices", result)


def engine_table(title: str, result: dict) -> str:
    from evaluation.digits.card import cell, confusions
    lines = [f"| {title} | clips | accuracy (95 % interval) | most common confusions |",
             "|---|---:|---:|---|"]
    lines += [f"| {voice} | {r['count']} | {cell(r, True)} | {confusions(r)} |"
              for voice, r in result.items()]
    return "\n".join(lines)


def selection_free(config: dict) -> str:
    """The card's sentence on the selection-free estimate: each never-heard engine's accuracy
    with its interval, against issue #18's 90 %."""
    from evaluation.bootstrap import wilson_interval
    from evaluation.digits.card import interval, pct
    never = config.get("never_heard", {})
    if not never:
        return ("No engine the head never heard has been scored yet (`--only score:ENGINE "
                "--write-card` adds one).")
    out = []
    for engine, result in never.items():
        r, voices = result["all"], [v["accuracy"] for k, v in result.items() if k != "all"]
        low = wilson_interval(round(r["accuracy"] * r["count"]), r["count"])[0]
        out.append(f"The selection-free estimate is {engine}'s: {pct(r['accuracy'])} "
                   f"({interval(r)}) of {r['count']} clips of {len(voices)} voices, from "
                   f"{pct(min(voices))} to {pct(max(voices))} per voice (the interval counts "
                   f"clips as independent; clips of one voice are not). "
                   + ("Issue #18's ≥ 90 % on voices it never heard is therefore not "
                      "established." if low < 0.9 else ""))
    return "\n\n".join(out)


def write_card(directory, config: dict) -> None:
    from evaluation.digits.card import fold_table, robustness_table, selection_table
    never = "".join(f"\n\n## Voices of an engine it never heard: {engine}\n\n"
                    f"`python -m evaluation.digits.head_crossval --corpus CORPUS --only "
                    f"score:{engine} --write-card` (a corpus with them: `dataset/build_voices.py "
                    f"--kokoro`)\n\n" + engine_table(engine, result)
                    for engine, result in config.get("never_heard", {}).items())
    folds = config.get("folds", {})
    counts = {name[5:]: fold["bundled"]["all"]["count"] for name, fold in folds.items()
              if name.startswith("loeo:") and "all" in fold.get("bundled", {})}
    counts["all"] = config["heldout_count"]
    engines = [g for g in config["robustness"]["clean"] if g != "all"]
    Path(directory, "README.md").write_text(CARD.format(**{
        **config, "folds": fold_table(folds, intervals=True, goal=False),
        "robust": robustness_table(config["robustness"],
                                   counts if set(engines) <= set(counts) else None),
        "never_heard": never, "selection": selection_table(config, CHOSEN_ON),
        "selection_free": selection_free(config),
        "augmented": config["renders"] - 1 - config["warps"],
        "speeds": " and ".join(f"×{v:g}" for v in config["speeds"]),
        "engines": ", ".join(config["engines"])}))


CARD = """# Spoken-digit head on Google's speech embedding (issue #18)

Our own weights (`members.npz`, float16, {architecture}: {members} heads of {hidden} hidden
units, dropout {dropout}), made by `make digit-head` (`evaluation/digits/head_crossval.py`). They sit on a frozen
speech embedding trained on real speech (Lin et al. 2020; the TFLite files of the
`{embedding}` wheel, installed by `make venv`, not committed; openwakeword labels its bundled
models CC BY-NC-SA 4.0, so non-commercial use). Scores digits in `evaluate.py` beside the
project's CNN classifier and PocketSphinx.

**Data**: {train_count} one-second clips of "zero".."nine" from `dataset/build_voices.py`
(engines: {engines}; built at set-up, not committed), each clean, in {augmented}
augmented renders (evaluation/digits/augment.py: speed, shift, reverb, noise at 0–30 dB SNR, EQ,
telephone band, level and clipping, μ-law, codecs) and in {warps} renders whose mel input is
frequency-warped by up to ×{warp} (VTLP). No recording of a real person is in it;
the bundled `dataset/digits` clips were not trained on.

**Input / network**: 1 s at 16 kHz (of a longer clip the loudest second), centred in 2 s →
32 mel bands every 10 ms → the embedding of every 0.775 s window, every 80 ms ([{windows}, 96])
→ flatten → dense {hidden} + ReLU → dense 10, for each of the {members} heads. A clip's score
is the mean softmax over the heads and over three views of it: as it is and at tape speeds
{speeds}.

**Training**: {epochs} epochs per head, Adam 1e-3, batch 64, seeds {seed}…; {train_seconds:.0f} s on
{cpu} (embedding the corpus once takes longer: ~75 s per audio render here).

## What was chosen on which data

The recipe (frequency-warped renders, {members} heads averaged, the speed views, {hidden} hidden
units, {epochs} epochs) was chosen by comparing variants on the espeak-ng fold and the three
leave-voices-out folds (`CHOSEN_ON` in the script). The search stopped at the first recipe
over 90 % on the espeak-ng fold, and its scripts are not in the repository, so those folds'
figures are optimistic. The flite and festival folds were not used to choose, but their voices
are held out in the leave-voices-out folds that were. Every figure has its Wilson 95 %
interval (`evaluation/bootstrap.py`); `python -m evaluation.digits.head_crossval --only card`
writes this card again from config.json and prints the table.

{selection}

{selection_free}

## Leave-one-engine-out and leave-voices-out accuracy

Each fold is a separate set of heads of the same recipe that never heard the held-out engine or
speakers; "bundled clips" are the held-out engine's clips of dataset/digits.

{folds}

## The final head on the bundled clips (not trained on)

{robust}{never_heard}

Held-out synthetic voices are not real people: accuracy on real recordings is for whoever
tries it to report (issue #18 asks for ≥ 9/10 on unseen voices).
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=str(ROOT / "dataset" / "cache" / "voices"))
    p.add_argument("--out", default=str(ROOT / "pretrained" / "digit-head"))
    p.add_argument("--work", default=str(ROOT / "runs" / "digit_head"))
    p.add_argument("--renders", type=int, default=4, help="augmented renders per clip")
    p.add_argument("--warps", type=int, default=4, help="mel-warped renders per clip")
    p.add_argument("--members", type=int, default=3, help="heads averaged (seeds seed, …)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="loeo,lovo,final",
                   help="comma list of loeo, lovo, final, score:ENGINE (OUT on that engine), "
                   "card (OUT's card again from its config.json, no training)")
    p.add_argument("--write-card", action="store_true",
                   help="score:ENGINE: put a never-heard engine's figures into OUT's card")
    args = p.parse_args(argv)
    parts = args.only.split(",")
    unknown = set(parts) - {"loeo", "lovo", "final", "card", *(f"score:{e}" for e in ENGINES)}
    if unknown:
        p.error(f"--only: unknown parts {sorted(unknown)}")
    if "card" in parts:                     # no corpus, no training: OUT's config as it is
        config = Path(args.out) / "config.json"
        if not config.is_file():
            print(f"error: {config} not found (a digit head's directory; make digit-head)",
                  file=sys.stderr)
            return 2
        config = json.loads(config.read_text())
        write_card(args.out, config)
        from evaluation.digits.card import selection_table
        print(f"{selection_table(config, CHOSEN_ON)}\n\n{selection_free(config)}")
        parts = [part for part in parts if part != "card"]
        if not parts:
            return 0
    try:
        from evaluation.speech_embedding import model_files
        model_files()
        corpus = load_corpus(args.corpus)
        for part in parts:
            if part.startswith("score:"):
                print(score_engine(corpus, part.split(":", 1)[1], args.out, args.write_card))
    except (ValueError, OSError) as e:                  # incl. SpeechEmbeddingError
        print(f"error: {e}", file=sys.stderr)
        return 2
    folds_wanted = [p for p in parts if p in ("loeo", "lovo", "final")]
    if not folds_wanted:
        return 0
    embeddings = corpus_embeddings(corpus, args.corpus, args.renders, args.warps, args.seed,
                                   args.work)
    from evaluation.digits.classifier import LENGTH, fit_length
    from evaluation.digits.head import views
    from evaluation.speech_embedding import SpeechEmbedding
    audio, labels, engine = bundled()
    embed = SpeechEmbedding()
    bundled_embed = ([embed(v) for v in views(fit_length(audio, LENGTH))], labels, engine)
    plan = [(f"loeo:{e}", "engine", (e,)) for e in ENGINES if "loeo" in parts
            and e in set(corpus["engine"].tolist())]
    plan += [(f"lovo:{'+'.join(h)}", "speaker", h) for h in LOVO_FOLDS if "lovo" in parts]
    folds = {name: run_fold(corpus, embeddings, name, column, held, args, bundled_embed)
             for name, column, held in plan}
    Path(args.work).mkdir(parents=True, exist_ok=True)
    (Path(args.work) / "folds.json").write_text(json.dumps(folds, indent=1))
    if "final" in parts:
        train_final(corpus, embeddings, args, folds)
    from evaluation.digits.card import fold_table
    print(fold_table(folds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
