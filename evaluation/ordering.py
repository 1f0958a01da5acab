"""The FAD ordering check of an embedding on one audio domain (issue #18).

    result = ordering_check(embedder, "speech" | "music")     # {"passed", "splits": […]}
    print(ordering_table([result, …]))                          # Markdown, a row per split

A metric that ranks a real voice below white noise measures nothing. So, on real audio the
reference does not contain, at n >= 100 windows, an embedding must give

    FAD(held-out real) < FAD(+noise at 30 dB SNR) < … 20 … 10 … < FAD(0 dB) < FAD(noise)

where noise is white noise at each clip's RMS and "+noise at s dB" is the held-out clip with
white noise s dB below its RMS. Each figure carries a bootstrap interval (metrics.bootstrap_fad).

Domains and their splits (bundled data; windows of 1 s, one per second of audio, no overlap);
a domain passes when every split does:
- speech: dataset/digits, leave one engine out: held out = every flite clip (100 windows),
  reference = the espeak-ng + festival clips (230); and held out = every espeak-ng clip (170),
  reference = flite + festival (160). Festival alone has 60 clips (< 100): not a split.
- music: dataset/chorales; reference = the even-numbered chorales, held out = the odd ones
  (21 × 6 s each: 126 windows; other pieces, ensembles and keys).
"""
from __future__ import annotations

import json
from pathlib import Path

from evaluation.sets import add_noise, embed_clips, mono, rms, white_noise

ROOT = Path(__file__).resolve().parent.parent
SNRS_DB = (30, 20, 10, 0)
MIN_WINDOWS = 100
SEGMENT_SECONDS = 1.0
SPLITS = {"speech": ("flite", "espeak-ng"), "music": ("odd chorales",)}


def _read_rows(directory: Path):
    from data.audio_io import read
    path = directory / "metadata.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: missing (the bundled data set is needed for the check)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(row, (mono(read(str(directory / row["path"]))[0]), row["sample_rate"]))
            for row in rows]


def domain_split(domain: str, split: str, root: Path = ROOT):
    """(reference clips, held-out clips, how the split was made) of one split of a domain."""
    if split not in SPLITS.get(domain, ()):
        raise ValueError(f"unknown split {domain}/{split!r} "
                         f"({', '.join(f'{d}/{s}' for d in SPLITS for s in SPLITS[d])})")
    if domain == "speech":
        rows = _read_rows(root / "dataset" / "digits")
        reference = [clip for row, clip in rows if row["synth"] != split]
        held_out = [clip for row, clip in rows if row["synth"] == split]
        return reference, held_out, (f"dataset/digits: held out = every {split} clip, reference "
                                     f"= the other engines' clips; one 1 s window per clip")
    rows = _read_rows(root / "dataset" / "chorales")
    reference = [clip for i, (_, clip) in enumerate(rows) if i % 2 == 0]
    held_out = [clip for i, (_, clip) in enumerate(rows) if i % 2 == 1]
    return reference, held_out, ("dataset/chorales: held out = odd-numbered chorales, "
                                 "reference = even-numbered; consecutive 1 s windows")


def ordering_sets(held_out, seed: int = 0):
    """[(name, clips)]: the held-out clips, each SNR of added noise, matched-RMS noise."""
    sets = [("held-out real", held_out)]
    sets += [(f"{snr} dB SNR", add_noise(held_out, snr, seed + 1 + i))
             for i, snr in enumerate(SNRS_DB)]
    sets.append(("noise", white_noise(held_out, [rms(a) for a, _ in held_out], seed)))
    return sets


def ordering_failures(figures) -> list:
    """The broken links of the chain held-out < 30 dB < … < 0 dB < noise, as text."""
    names = list(figures)
    return [f"FAD({a}) {figures[a]['fad']:.3g} >= FAD({b}) {figures[b]['fad']:.3g}"
            for a, b in zip(names, names[1:]) if not figures[a]["fad"] < figures[b]["fad"]]


def check_split(embedder, domain: str, split: str, root: Path = ROOT, resamples: int = 200,
                seed: int = 0, log=print) -> dict:
    """One split: {"split", "how", "n", "n_reference", "figures", "passed", "failures"};
    figures maps each set (in ladder order) to metrics.bootstrap_fad's dict."""
    from evaluation.metrics import bootstrap_fad
    reference, held_out, how = domain_split(domain, split, root)
    ref_embeddings, _ = embed_clips(reference, embedder, SEGMENT_SECONDS)
    figures = {}
    for name, clips in ordering_sets(held_out, seed):
        embeddings, _ = embed_clips(clips, embedder, SEGMENT_SECONDS)
        figures[name] = bootstrap_fad(embeddings, ref_embeddings, resamples, seed)
        f = figures[name]
        if log:
            log(f"{domain}/{split} {name}: FAD {f['fad']:.3f} [{f['low']:.3f}, {f['high']:.3f}] "
                f"n {f['n']}")
    n = figures["held-out real"]["n"]
    failures = ordering_failures(figures)
    if n < MIN_WINDOWS:
        failures.append(f"n = {n} < {MIN_WINDOWS} windows")
    return {"split": split, "how": how, "n": n, "n_reference": len(ref_embeddings),
            "figures": figures, "passed": not failures, "failures": failures}


def ordering_check(embedder, domain: str, splits=None, root: Path = ROOT, resamples: int = 200,
                   seed: int = 0, log=print) -> dict:
    """The check on `domain` (every split of SPLITS, or the given ones): {"embedding", "name",
    "domain", "splits": [check_split(…)], "passed"}. Passing needs every split of the domain."""
    if domain not in SPLITS:
        raise ValueError(f"unknown domain {domain!r} ({', '.join(SPLITS)})")
    chosen = tuple(splits or SPLITS[domain])
    results = [check_split(embedder, domain, s, root, resamples, seed, log) for s in chosen]
    return {"embedding": embedder.id, "name": getattr(embedder, "name", embedder.id),
            "domain": domain, "splits": results,
            "passed": set(chosen) == set(SPLITS[domain]) and all(r["passed"] for r in results)}


def ordering_table(results) -> str:
    """Markdown: embedding × domain × FAD(held-out), each SNR, FAD(noise), n, verdict."""
    names = ["held-out real", *(f"{s} dB SNR" for s in SNRS_DB), "noise"]
    head = ["embedding", "domain / split", "n (ref)", "FAD held-out real",
            *(f"{s} dB" for s in SNRS_DB), "FAD noise", "ordering"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * 3 + " ---: |" * 6 + " --- |"]
    for result in results:
        for r in result["splits"]:
            cells = [f"{r['figures'][k]['fad']:.2f} [{r['figures'][k]['low']:.2f}, "
                     f"{r['figures'][k]['high']:.2f}]" for k in names]
            verdict = "✓" if r["passed"] else "✗ " + "; ".join(r["failures"])
            lines.append(f"| {result['name']} | {result['domain']}: held out {r['split']} | "
                         f"{r['n']} ({r['n_reference']}) | " + " | ".join(cells)
                         + f" | {verdict} |")
    return "\n".join(lines)
