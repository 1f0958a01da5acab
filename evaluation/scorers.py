"""The digit scorers a labelled report adds beside the project's CNN classifier, each trained
on real speech somewhere (issue #18: metrics that hold on voices they never heard):

    sphinx_accuracy  PocketSphinx's US-English acoustic model + a digit grammar
                     (evaluation/digits/sphinx.py; never heard any voice of the project)
    head_accuracy    our digit head on Google's frozen speech embedding
                     (evaluation/digits/head.py; the head is trained on the synthetic corpus)

Each has accuracy_on_clips([(audio, rate)], labels) → {"overall", "per_class", "count"}, like
DigitClassifier. A scorer that cannot run here is reported by its one-line reason, never fatal.
"""
from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAD_DIR = ROOT / "pretrained" / "digit-head"
# key in the report's sets → (column title, what it is, for the note under the table)
SCORERS = {
    "sphinx_accuracy": ("PocketSphinx", "CMU's US-English acoustic model (trained on real "
                        "people, never on this project's voices) with a digit grammar"),
    "head_accuracy": ("digit head", "a head trained on the synthetic corpus over Google's "
                      "speech embedding (trained on real speech; pretrained/digit-head)"),
}


def load_sphinx():
    from evaluation.digits.sphinx import SphinxDigits, unavailable
    return unavailable() or SphinxDigits()


def load_head(directory=HEAD_DIR):
    from evaluation.digits.head import DigitHead
    from evaluation.speech_embedding import unavailable
    why = unavailable()
    if why:
        return why
    try:
        return DigitHead.load(str(directory))
    except ValueError as e:
        return str(e)


def load_scorers() -> dict:
    """{key: scorer, or the one-line reason it cannot run here}."""
    return {"sphinx_accuracy": load_sphinx(), "head_accuracy": load_head()}


def score_groups(scorers: dict, sets: dict, groups, log=print) -> list:
    """Adds each scorer's accuracy to sets[name][key] for (name, clips, labels) in `groups`;
    returns the notes of scorers that could not run."""
    notes = []
    for key, scorer in scorers.items():
        title = SCORERS[key][0]
        if isinstance(scorer, str):
            notes.append(f"{title} accuracy: n/a — {scorer}.")
            continue
        start, count = time.perf_counter(), 0
        for name, clips, labels in groups:
            sets[name][key] = scorer.accuracy_on_clips(clips, labels)
            count += len(clips)
        log(f"{title}: {count} clips in {time.perf_counter() - start:.1f} s")
    return notes


def summary(head) -> dict | None:
    """The head's leave-one-engine-out accuracy per engine (its config's folds), or None."""
    if head is None or isinstance(head, str):
        return None
    folds = head.config.get("folds", {})
    return {name[5:]: fold["corpus"]["all"]["accuracy"] for name, fold in folds.items()
            if name.startswith("loeo:")}
