"""The evaluation of evaluate.py: embedding sets, the scored sets, the report (JSON + Markdown).

    report, out = evaluate(args)      # args: evaluate.py's parsed options (see its docstring)

Three sets are scored against half A of the reference in one run: the generated clips, real
clips (half B) and white noise at B's levels; reference statistics are cached under the cache
root (data/cache.py) in fad/.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from evaluation.scorers import SCORERS, load_scorers, score_groups, summary
from evaluation.sets import NOISE_SEED, embed_clips, mono, rms, white_noise  # noqa: F401

EVAL_ROOT = "runs/eval"     # reports of a run go here, never inside it (pretrained/ stays put)
CACHE_VERSION = 2          # 2: half A's embeddings are stored (the bootstrap resamples them)
GENERATION_BATCH = 16
RESAMPLES = 200


# ---- embedding sets ------------------------------------------------------------------------

def describe(embeddings, logits, reference, labels=None, seed=0):
    """FAD against reference half A (with n and a bootstrap interval), IS-style score and top
    classes of one set."""
    from evaluation.birdnet import top_classes
    from evaluation.metrics import bootstrap_fad, inception_score, normalized_sigmoid
    fad = bootstrap_fad(embeddings, reference["a_embeddings"], RESAMPLES, seed)
    result = {"windows": fad["n"], "fad": fad["fad"], "low": fad["low"], "high": fad["high"],
              "n_reference": fad["n_reference"], "resamples": fad["resamples"]}
    if logits is not None:
        result["is"] = inception_score(normalized_sigmoid(logits))
        result["top_classes"] = top_classes(logits, labels)
    return result


def fingerprint(sources, embedder, segment):
    files = []
    for s in sources:
        stat = os.stat(s.path)
        files.append([os.path.abspath(s.path), stat.st_size, stat.st_mtime_ns, s.label])
    return {"version": CACHE_VERSION, "model": embedder.id, "segment_seconds": segment,
            "split": "alternate files: A even, B odd", "files": files}


def cache_path(cache_dir, origin, embedder, segment):
    from data.cache import cache_root
    root = Path(cache_dir) if cache_dir else cache_root() / "fad"     # --cache: that directory
    key = hashlib.sha1(f"{os.path.abspath(origin)}|{embedder.id}|{segment}".encode())
    return root / f"reference-{key.hexdigest()[:16]}.npz"


def reference_stats(report, embedder, segment, cache_dir=None, log=print):
    """Statistics of the reference halves (A: μ, Σ; B: embeddings, IS, top classes, clip
    RMS), from the cache when its fingerprint matches, else computed and cached."""
    from data.audio_io import read
    from evaluation.birdnet import top_classes
    from evaluation.metrics import inception_score, normalized_sigmoid
    sources = report.sources
    key = fingerprint(sources, embedder, segment)
    path = cache_path(cache_dir, report.origin, embedder, segment)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                cached = {k: f[k] for k in f.files}
            old = json.loads(str(cached.pop("fingerprint")))
            if old == key:
                log(f"reference: cache hit {path}")
                return {**cached, "b_top": json.loads(str(cached["b_top"]))}
            if old.get("version") != CACHE_VERSION:
                log(f"reference: cache of format {old.get('version')} (now {CACHE_VERSION}) — "
                    f"recomputing")
            else:
                before = {f[0]: f[1:] for f in old["files"]}
                now = {f[0]: f[1:] for f in key["files"]}
                changed = sum(before.get(p) != now.get(p) for p in set(before) | set(now))
                log(f"reference: cache stale ({changed} file(s) changed, added or removed) — "
                    f"recomputing")
        except (OSError, ValueError, KeyError) as e:
            log(f"reference: unreadable cache {path} ({e.__class__.__name__}) — recomputing")
    if len(sources) < 2:
        raise ValueError(f"{report.origin}: need at least 2 reference clips (split in halves)")
    start = time.perf_counter()
    halves = {}
    for name, part in (("a", sources[0::2]), ("b", sources[1::2])):
        clips = []
        for s in part:
            audio, rate = read(s.path)
            clips.append((mono(audio), rate))
        halves[name] = (clips, *embed_clips(clips, embedder, segment))
        if len(halves[name][1]) < 2:
            raise ValueError(f"{report.origin}: half {name.upper()} of the reference has "
                             f"{len(halves[name][1])} window(s); need at least 2")
    b_clips, b_embeddings, b_logits = halves["b"]
    stats = {"a_embeddings": halves["a"][1].astype(np.float32),
             "a_windows": len(halves["a"][1]),
             "a_files": len(halves["a"][0]), "b_files": len(b_clips),
             "b_embeddings": b_embeddings.astype(np.float32),
             "b_rms": np.array([rms(a) for a, _ in b_clips]),
             "b_seconds": np.array([len(a) / r for a, r in b_clips]),
             "b_is": inception_score(normalized_sigmoid(b_logits)) if b_logits is not None
             else np.nan,
             "b_top": top_classes(b_logits, embedder.labels) if b_logits is not None else []}
    log(f"reference: embedded {len(sources)} clips in {time.perf_counter() - start:.1f} s")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, fingerprint=json.dumps(key),
                 **{**stats, "b_top": json.dumps(stats["b_top"])})
        os.replace(temporary, path)
    except OSError as e:
        log(f"reference: cannot write the cache {path} ({e.strerror}); continuing without")
    return stats


# ---- the sets that are scored --------------------------------------------------------------

def batches(pipe, num, seconds, seed, **options):
    """The arguments of each pipe call: GENERATION_BATCH clips, batch i from seed + i, balanced
    labels 0, 1, …, 0, 1, … for a class-conditional model; `options` that are not None."""
    classes, options = pipe.accepts.num_classes, {k: v for k, v in options.items() if v is not None}
    for i, first in enumerate(range(0, num, GENERATION_BATCH)):
        n = min(GENERATION_BATCH, num - first)
        label = {"label": [(first + k) % classes for k in range(n)]} if classes else {}
        yield {"num": n, "seconds": seconds, "seed": seed + i, **label, **options}


def generate(pipe, num, seconds, seed, **options):
    """num clips of `seconds` from a Pipeline (diffusion/pipeline.py, the model's default
    sampler) in `batches`: ([(audio, rate)], labels or None). `options`: vocoder (a mel-UNet's
    images through it instead of Griffin-Lim, its Pipeline or path), guidance."""
    clips, labels = [], []
    for arguments in batches(pipe, num, seconds, seed, **options):
        out = pipe(**arguments)
        clips += [(a, out.sample_rate) for a in np.clip(out.audio, -1.0, 1.0)]
        labels += arguments.get("label", [])
    return clips, (np.array(labels) if labels else None)


def read_generated(directory):
    from data.audio_io import read
    from data.sources import find_sources
    sources = find_sources(directory).sources
    clips = []
    for s in sources:
        audio, rate = read(s.path)
        clips.append((mono(audio), rate))
    labels = np.array([s.label for s in sources])
    return clips, (labels if np.all(labels >= 0) else None)


def write_samples(directory, clips, labels):
    import soundfile as sf
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "metadata.jsonl"), "w") as f:
        for i, (audio, rate) in enumerate(clips):
            name = f"sample_{i:04d}.wav"
            sf.write(os.path.join(directory, name), audio, rate, subtype="PCM_16")
            row = {"path": name} if labels is None else {"path": name, "label": int(labels[i])}
            f.write(json.dumps(row) + "\n")


# ---- report ---------------------------------------------------------------------------------

def fad_cell(s) -> str:
    return f"{s['fad']:.3f} [{s['low']:.3f}, {s['high']:.3f}]"


def markdown(report) -> str:
    ref, sets, emb = report["reference"], report["sets"], report["embedding"]
    lines = [f"# Evaluation of {report['generated']}", "",
             f"Reference `{ref['origin']}` ({report['domain']}): {ref['files']} clips; FAD "
             f"against half A ({ref['a_files']} clips, n = {ref['a_windows']} windows), with "
             f"a {RESAMPLES}-resample bootstrap 95 % interval. Embedding {emb['name']} "
             f"(`{emb['id']}`), segments of {report['segment_seconds']:g} s. FAD is biased by "
             f"n: compare figures only at the same n.", "", "## Metric checks", "",
             *[f"- {line}" for line in report["check_lines"]], "",
             "## Figures", "",
             "| set | n | FAD ↓ [95 % interval] | IS-style ↑ | digit accuracy | "
             + "".join(f"{title} | " for title, _ in SCORERS.values()) + "top classes |",
             "| --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(SCORERS) + " --- |"]
    for name, title in (("generated", "generated"), ("real", "real (reference half B)"),
                        ("noise", "white noise, matched RMS")):
        s = sets[name]
        score = f"{s['is']:.3f}" if s.get("is") is not None else "–"
        acc = s.get("digit_accuracy")
        acc = f"{100 * acc['overall']:.1f} %{acc.get('note', '')}" if acc else "–"
        others = "".join(f"{100 * s[key]['overall']:.1f} % | " if s.get(key) else "– | "
                         for key in SCORERS)
        top = ", ".join(f"{n} {p:.3f}" for n, p in s.get("top_classes", []))
        lines.append(f"| {title} | {s['windows']} | {fad_cell(s)} | {score} | {acc} | {others}"
                     f"{top} |")
    rows = [(what, (sets["generated"].get(key) or {}).get("per_class"))
            for what, key in (("digit classifier", "digit_accuracy"),
                              *((title, key) for key, (title, _) in SCORERS.items()))]
    rows = [(what, per_class) for what, per_class in rows if per_class]
    if rows:
        classes = list(rows[0][1])
        lines += ["", "| generated, per digit | " + " | ".join(map(str, classes)) + " |",
                  "| --- |" + " ---: |" * len(classes)]
        lines += [f"| {what} | " + " | ".join(f"{100 * per_class.get(c, 0):.0f} %"
                                             for c in classes) + " |"
                  for what, per_class in rows]
    used = [(title, what) for key, (title, what) in SCORERS.items()
            if any(key in sets[name] for name in sets)]
    if used:
        lines += ["", "; ".join(f"{title}: {what}" for title, what in used)
                  + ". Their real row is the reference's half B."]
    if report.get("guidance") not in (None, 1.0):
        lines += ["", f"Sampled with classifier-free guidance {report['guidance']:g}."]
    for note in report["notes"]:
        lines += ["", note]
    lines += ["", f"Wall time {report['seconds']:.1f} s."]
    return "\n".join(lines) + "\n"


def real_set(reference, n, seed=0):
    """Half B's figures at the generated set's n: windows evenly spaced over B."""
    from evaluation.metrics import bootstrap_fad
    real = reference["b_embeddings"]
    real = real[np.unique(np.linspace(0, len(real) - 1, n).round().astype(int))]
    fad = bootstrap_fad(real, reference["a_embeddings"], RESAMPLES, seed)
    result = {"windows": fad["n"], "fad": fad["fad"], "low": fad["low"], "high": fad["high"],
              "n_reference": fad["n_reference"], "resamples": fad["resamples"]}
    if not np.isnan(reference["b_is"]):
        result.update({"is": float(reference["b_is"]), "top_classes": reference["b_top"]})
    return result


def score(clips, labels, reference, embedder, segment, classifier, log=print, scorers=None,
          real=None):
    """The three sets' figures ({"generated", "real", "noise"}) and notes for the report;
    `classifier` is a loaded DigitClassifier (or an error message) for labelled clips,
    `scorers` ({key: scorer or error message}, evaluation/scorers.py) score them, the noise
    and `real` ([(audio, rate)], labels: the reference's half B) in other ways."""
    noise = white_noise(clips, reference["b_rms"])
    sets, t = {}, time.perf_counter()
    for name, group in (("generated", clips), ("noise", noise)):
        sets[name] = describe(*embed_clips(group, embedder, segment), reference, embedder.labels)
    log(f"embedded {sets['generated']['windows'] + sets['noise']['windows']} windows in "
        f"{time.perf_counter() - t:.1f} s")
    sets["real"] = real_set(reference, sets["generated"]["windows"])
    notes = []
    if "is" in sets["real"]:
        notes.append(f"IS-style score of the real set over all of half B "
                     f"({reference['b_files']} clips).")
    if sets["real"]["windows"] < sets["generated"]["windows"]:
        notes.append("Half B has fewer windows than the generated set: its FAD is at a "
                     "smaller n and is not compared.")
    if labels is None:
        return sets, notes
    notes += score_groups(scorers or {}, sets, [("generated", clips, labels),
                                                ("noise", noise, labels),
                                                *((("real", *real),) if real else ())], log)
    if isinstance(classifier, str):
        notes.append(f"Digit accuracy: n/a — {classifier}; train one with "
                     f"`python evaluate.py --train-digit-classifier`.")
        log(f"warning: no digit accuracy: {classifier}")
        return sets, notes
    sets["generated"]["digit_accuracy"] = classifier.accuracy_on_clips(clips, labels)
    sets["noise"]["digit_accuracy"] = classifier.accuracy_on_clips(noise, labels)
    sets["real"]["digit_accuracy"] = {"overall": classifier.heldout_accuracy,
                                      "count": classifier.config["heldout_count"],
                                      "note": " (classifier's held-out)"}
    return sets, notes


def labelled_half_b(ref_sources):
    """([(audio, rate)], labels) of the reference's half B when every clip has a label."""
    from data.audio_io import read
    part = ref_sources.sources[1::2]
    if not part or any(s.label < 0 for s in part):
        return None
    clips = [(mono(a), r) for a, r in (read(s.path) for s in part)]
    return clips, np.array([s.label for s in part])


def reference_domain(ref_sources, domain="auto"):
    """(domain, why): `domain` if given; auto: speech when every reference clip has a label
    (the spoken digits), else music."""
    if domain != "auto":
        return domain, "--domain"
    labelled = all(s.label >= 0 for s in ref_sources.sources)
    return ("speech", "auto: labelled reference") if labelled else \
        ("music", "auto: unlabelled reference")


def choose_embedder(args, domain):
    """The embedder of --embedding ("auto": the built-in that passed on `domain`), refused
    (EmbeddingError) unless it passed the ordering check on `domain`."""
    from evaluation.embeddings import DECLARED, checked_domains, load_embedder, require_checked
    name = args.embedding
    if name == "auto":
        name = next(n for n, domains in DECLARED.items() if domain in domains)
    embedder = load_embedder(name, args.embedding_rate, args.embedding_window,
                             args.embedding_output, args.digit_classifier)
    require_checked(embedder, domain, args.cache)
    return embedder, sorted(checked_domains(embedder, args.cache))


def load_classifier(directory):
    """A DigitClassifier from `directory` (or the default places), or the reason there is none."""
    from evaluation.birdnet import EmbeddingError
    from evaluation.digits.classifier import DigitClassifier
    from evaluation.embeddings import find_classifier
    try:
        return DigitClassifier.load(str(find_classifier(directory)))
    except (ValueError, EmbeddingError) as e:
        return str(e)


def classifier_summary(classifier) -> dict:
    """What the checks read from a classifier's config (held-out accuracies, split)."""
    config = classifier.config
    # Leave-one-engine-out folds (evaluation/digit_crossval.py): each fold's accuracy over the
    # held-out engine's corpus clips; the check reads the worst engine.
    per_engine = {}
    for name, fold in config.get("folds", {}).items():
        if name.startswith("loeo:") and fold.get("corpus"):
            rows = fold["corpus"].values()
            count = sum(r["count"] for r in rows)
            per_engine[name[5:]] = sum(r["accuracy"] * r["count"] for r in rows) / count
    engine = min(per_engine.values()) if per_engine else \
        next((v for k, v in config.items() if "engine" in k and "accuracy" in k
              and isinstance(v, (int, float))), None)
    return {"heldout_accuracy": config.get("heldout_accuracy"),
            "heldout_count": config.get("heldout_count"), "split": config.get("split"),
            "heldout_engine_accuracy": engine, "heldout_engine_accuracies": per_engine}


def default_out(run) -> str:
    """runs/eval/<run name>: the default report directory of `run`."""
    return os.path.join(EVAL_ROOT, os.path.basename(os.path.normpath(str(run))))


def check_request(args, pipe, guidance=None):
    """The guidance the clips are sampled with (None: none), once the first batch's request is
    checked (a ValueError naming the argument, before any work)."""
    if pipe.accepts.kind == "vocoder":              # its outputs only
        if args.generated is None or guidance is not None:
            raise ValueError(f"run: {args.run} is a mel vocoder: evaluate its outputs with "
                             f"--generated DIR (no --guidance)")
        return None
    if pipe.accepts.num_classes is None:
        raise ValueError(f"run: {args.run} is an exported class-conditional model (no class "
                         f"count): evaluate its run directory")
    first = next(batches(pipe, args.num, args.seconds or 1.0, args.seed, guidance=guidance))
    return getattr(pipe.request(**first), "guidance", None)


def evaluate(args, log=print, pipe=None):
    """(report, its directory) of evaluate.py's parsed `args`; `pipe`: the Pipeline of
    args.run (diffusion/pipeline.py, loaded by the caller), which the clips are sampled from."""
    from data.sources import find_sources
    from evaluation.checks import format_checks, report_checks
    start = time.perf_counter()
    ref_sources = find_sources(args.reference)
    domain, why = reference_domain(ref_sources, getattr(args, "domain", "auto"))
    vocoder, guidance = None, getattr(args, "guidance", None)
    if args.run is not None:                         # a bad request fails before any work
        if pipe is None:
            raise TypeError("evaluate() of a run samples from its Pipeline: pass pipe=")
        try:
            guidance = check_request(args, pipe, guidance)
            if getattr(args, "vocoder", None) is not None:
                vocoder = pipe.check_vocoder(args.vocoder)
        except ValueError as e:                      # "guidance: …" → "--guidance: …"
            raise ValueError(f"--{e}") from None
    segment = args.seconds or 1.0
    if args.generated is not None:
        clips, labels = read_generated(args.generated)
        if len(clips) < 2:
            raise ValueError(f"{args.generated}: need at least 2 generated clips")
        segment = args.seconds or float(np.median([len(a) / r for a, r in clips]))
    embedder, passed = choose_embedder(args, domain)     # refused before any work
    segment = min(segment, embedder.window / embedder.sample_rate)
    reference = reference_stats(ref_sources, embedder, segment, args.cache, log)
    out = args.out or (default_out(args.run) if args.generated is None else "out/eval")
    if args.generated is None:
        t = time.perf_counter()
        clips, labels = generate(pipe, args.num, segment, args.seed, vocoder=vocoder,
                                 guidance=guidance)
        log(f"generated {len(clips)} clips of {segment:g} s in {time.perf_counter() - t:.1f} s")
        write_samples(os.path.join(out, "samples"), clips, labels)
    classifier = load_classifier(args.digit_classifier) if labels is not None else None
    scorers, real = (load_scorers(), labelled_half_b(ref_sources)) \
        if labels is not None else (None, None)
    sets, notes = score(clips, labels, reference, embedder, segment, classifier, log,
                        scorers, real)
    if pipe is not None and pipe.accepts.num_classes != 0 and labels is None:
        notes.append(f"{args.run} is class-conditional but {args.generated} has no labels "
                     f"(metadata.jsonl): no digit accuracy.")
    report = {"generated": args.generated or args.run, "run": args.run, "num": len(clips),
              "vocoder": getattr(args, "vocoder", None),
              "guidance": (guidance or 1.0) if pipe is not None else None,
              "segment_seconds": segment, "domain": domain, "domain_from": why,
              "reference": {"origin": ref_sources.origin, "files": len(ref_sources.sources),
                            "a_files": int(reference["a_files"]),
                            "a_windows": int(reference["a_windows"]),
                            "b_files": int(reference["b_files"])},
              "embedding": {"id": embedder.id, "name": getattr(embedder, "name", embedder.id),
                            "sample_rate": embedder.sample_rate, "window": embedder.window,
                            "checked_domains": passed},
              "sets": sets, "notes": notes}
    if classifier is not None and not isinstance(classifier, str):
        report["digit_classifier"] = classifier_summary(classifier)
    head_loeo = summary(scorers and scorers["head_accuracy"])
    if head_loeo:
        report["digit_head_loeo"] = head_loeo
    report["checks"] = report_checks(report)
    report["check_lines"] = format_checks(report["checks"])
    report["seconds"] = time.perf_counter() - start
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(markdown(report))
    return report, out
