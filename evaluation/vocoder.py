"""How well a mel-conditioned DiffWave run inverts log-mels of clips it never saw, next to
Griffin-Lim from the same log-mel (the baseline it must beat) and the real clips.

    pipe = diffusion.Pipeline.from_pretrained("pretrained/vocoder")    # built by the caller
    report = vocoder_report(pipe, "dataset/splits/heldout.jsonl",
                            classifier=DigitClassifier.load("pretrained/digit-classifier"),
                            scorers=load_scorers())
    text = vocoder_writer.markdown({**report, "run": "pretrained/vocoder"})

Per group of held-out clips (labelled "digits", unlabelled "music", and with the vocoder
corpus's rows, dataset/build_vocoder_corpus.py, unlabelled "speech"), for real / Griffin-Lim /
vocoder audio: the vocoder as it samples alone ("vocoder"), and steered toward the log-mel and
refined on it ("consistent", diffusion/core/consistency.py: the run's settings, or CONSISTENT).
Its control is "griffin-lim-refined": the Griffin-Lim audio refined by the very same refinement
(loss, steps, rate), so what the refinement alone buys is seen apart from the network.
  log-mel L1 (dB): mean |log_mel(y) − log_mel(x)| of DiffWave's log-mel (data/features.py,
      80 bands, floor −100 dB re the log-mel's 20 dB offset), ×100 to read in dB;
  spectral convergence: ‖|STFT(y)| − |STFT(x)|‖_F / ‖|STFT(x)|‖_F (Arık et al. 2019);
  digit accuracy (labelled clips): each digit scorer on y against the labels.
Every figure is kept per clip (report["clips"]); differences between versions get paired
bootstrap intervals (evaluation/bootstrap.py) and a verdict: beats / tie / loses. Rows that
carry "source" and "voice" are also summed up per source (held-out voices apart).
Clips are levelled as the run's training audio was (data.normalize), so the log-mel the
vocoder sees matches training; each clip is cut to whole mel frames. The report is written out
(Markdown, WAV sets) by evaluation/vocoder_writer.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf

from data.features import log_mel, read_mono
from data.mel_convert import log_mel_to_audio
from data.pipeline import normalize
from data.sources import find_sources
from diffusion.core.consistency import Consistency, refine
from evaluation.bootstrap import RESAMPLES, compare

GRIFFIN_LIM_ITERATIONS = 32        # teticio / diffusers Mel default
# The refined control sits beside the consistent row it controls for.
VERSIONS = ("real", "griffin-lim", "vocoder", "griffin-lim-refined", "consistent")
LABELS = {"griffin-lim-refined": "griffin-lim + refinement",
          "consistent": "vocoder + consistency"}
MUSIC_SOURCES = ("sonic-pi", "chorales")       # the corpus's unlabelled rows that are not speech

# The "consistent" row of a run whose params sample without consistency (a mel run's defaults)
CONSISTENT = Consistency(scale=0.3, steps=10, refine_steps=100, refine_rate=1e-3)

# (a, b): a − b, per group; then per metric: (title, higher is better, what it shares with the
# refinement's loss, the log-mel L1 to the conditioning mel).
FEW = 10                     # clips below which a bootstrap interval is flagged as too narrow
COMPARISONS = (("vocoder", "griffin-lim"), ("consistent", "griffin-lim-refined"),
               ("consistent", "griffin-lim"))
SPECTRAL = {"log_mel_l1_db": ("log-mel L1 (dB)", False, "directly: it is the loss"),
            "spectral_convergence": ("spectral convergence", False,
                                     "partly: the STFT magnitudes the log-mel is made of")}
ACCURACIES = {"digit_accuracy": ("digit classifier", True,
                                  "mel-type: 40-band log-mel cepstra"),
              "sphinx_accuracy": ("PocketSphinx", True, "mel-type: MFCCs"),
              "head_accuracy": ("digit head", True, "mel-type: 32 mel bands into the embedding")}
METRICS = {**SPECTRAL, **ACCURACIES}


def spectral_convergence(reference, estimate, n_fft: int = 1024, hop: int = 256) -> float:
    """‖|STFT(estimate)| − |STFT(reference)|‖_F / ‖|STFT(reference)|‖_F over the common length."""
    n = min(len(reference), len(estimate))
    ref = tf.abs(tf.signal.stft(np.asarray(reference[:n], np.float32), n_fft, hop))
    est = tf.abs(tf.signal.stft(np.asarray(estimate[:n], np.float32), n_fft, hop))
    return float(tf.norm(est - ref) / tf.maximum(tf.norm(ref), 1e-12))


def log_mel_l1_db(reference, estimate, sample_rate: int, hop: int, n_mels: int) -> float:
    """Mean |Δ| of DiffWave's log-mel in dB over the common whole frames."""
    n = min(len(reference), len(estimate)) // hop * hop
    pair = np.stack([np.asarray(reference[:n], np.float32), np.asarray(estimate[:n], np.float32)])
    mels = log_mel(pair, sample_rate, hop, n_mels).numpy()
    return float(np.abs(mels[0] - mels[1]).mean() * 100.0)


def _spaced(items, k):
    if k <= 0:
        return []
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, k).round().astype(int))]


def pick(sources, max_clips):
    """At most max_clips sources, evenly spaced over the labelled and over the unlabelled
    ones (half the cap each where both have enough), in their file order."""
    if max_clips is None or len(sources) <= max_clips:
        return list(sources)
    labelled = [s for s in sources if s.label >= 0]
    other = [s for s in sources if s.label < 0]
    k = min(len(labelled), max(max_clips // 2, max_clips - len(other)))
    chosen = {id(s) for s in _spaced(labelled, k) + _spaced(other, max_clips - k)}
    return [s for s in sources if id(s) in chosen]


def heldout_clips(data, params, max_clips=None, max_seconds=None):
    """[(name, audio [T], label)] of `data` (a directory or metadata.jsonl), levelled as the
    run's training data and cut to whole mel frames (and to max_seconds; max_clips: pick)."""
    rate, hop = params.data.sample_rate, params.network.hop_length
    clips = []
    for source in pick(find_sources(data).sources, max_clips):
        audio = np.asarray(normalize(read_mono(source.path, rate), params.data))
        if max_seconds is not None:
            audio = audio[:int(max_seconds * rate)]
        clips.append((source.path, audio[:len(audio) // hop * hop], source.label))
    if not clips:
        raise ValueError(f"{data}: no readable audio to evaluate the vocoder on")
    return clips


def clip_fields(data) -> dict:
    """{absolute path: {"source", "voice"}} of the rows of a metadata .jsonl that carry both
    (the vocoder corpus; data/sources.py keeps only label and caption)."""
    path = os.path.join(data, "metadata.jsonl") if os.path.isdir(data) else str(data)
    if not path.endswith(".jsonl") or not os.path.isfile(path):
        return {}
    fields = {}
    with open(path) as f:
        for line in f:
            row = json.loads(line) if line.strip() else {}
            if isinstance(row, dict) and "source" in row and "voice" in row:
                where = os.path.abspath(os.path.join(os.path.dirname(path), row["path"]))
                fields[where] = {"source": str(row["source"]), "voice": str(row["voice"])}
    return fields


def group_of(label: int, fields: dict) -> str:
    """digits (labelled), speech (an unlabelled corpus voice), else music."""
    if label >= 0:
        return "digits"
    return "speech" if fields and fields["source"] not in MUSIC_SOURCES else "music"


def vocode(family, model, mels, seed: int = 0, consistency=None) -> np.ndarray:
    """DiffWave audio [N, frames·hop] for log-mels [N, frames, n_mels] (the fast schedule);
    `consistency` (diffusion/core/consistency.py) defaults to the run's params. One batch of
    N different mels with a whole Consistency: a Pipeline call takes one mel (and overrides
    only the scale and refine steps), so this stays the family's own sampling."""
    hop = family.params.network.hop_length
    shape = [len(mels), mels.shape[1] * hop, 1]
    scheduler = family.scheduler(family.default_sampler)
    return family.sample(model, scheduler, shape, {"mel": tf.constant(mels)}, seed,
                         consistency=consistency).numpy()[..., 0]


def conditioning_mel(family, audio) -> np.ndarray:
    """The log-mel [N, frames, n_mels] a vocoder run is conditioned on, of clips [N, T]."""
    n = family.params.network
    return log_mel(audio, family.params.data.sample_rate, n.hop_length, n.n_mels).numpy()


def consistent_settings(params):
    """The run's consistency settings, or CONSISTENT where the run samples without them."""
    own = Consistency.from_params(params.network)
    return CONSISTENT if own.off else own


def refined(family, audio, mel) -> np.ndarray:
    """`audio` [N, T] after the consistent row's refinement: the same loss (the log-mel L1 to
    the conditioning mel, DiffWaveFamily._mel_distance), refine_steps and refine_rate."""
    settings = consistent_settings(family.params)
    target = tf.constant(mel)
    x = refine(audio[..., None], lambda x0: family._mel_distance(x0, target),
               settings.refine_steps, settings.refine_rate)
    return np.asarray(x)[..., 0]                  # refine_steps 0: x as it came


def vocoded_versions(pipe, audio, seed, versions=VERSIONS):
    """{version: array [N, frames·hop]} for equal-length clips [N, T] by the vocoder Pipeline
    `pipe` (diffusion/pipeline.py); "vocoder" is the network's own sampling, "consistent" the
    same steered toward the log-mel and refined, "griffin-lim-refined" Griffin-Lim refined the
    same way."""
    family, model = pipe.family, pipe.model
    n = family.params.network
    rate = family.params.data.sample_rate
    mel = conditioning_mel(family, audio)
    made = {}

    def griffin_lim():
        if "griffin-lim" not in made:
            griffin = log_mel_to_audio(mel, rate, n.hop_length, GRIFFIN_LIM_ITERATIONS, seed)
            made["griffin-lim"] = np.pad(griffin, ((0, 0), (0, audio.shape[1] - griffin.shape[1])))
        return made["griffin-lim"]

    make = {"real": lambda: audio, "griffin-lim": griffin_lim,
            "griffin-lim-refined": lambda: refined(family, griffin_lim(), mel),
            "vocoder": lambda: vocode(family, model, mel, seed, Consistency()),
            "consistent": lambda: vocode(family, model, mel, seed,
                                         consistent_settings(family.params))}
    return {version: make[version]() for version in versions}


def correct(scorer, clips, labels) -> np.ndarray:
    """Per-clip 0/1 correctness of a digit scorer on [(audio [T], rate)] (its accuracy_on_clips
    is the mean of this)."""
    from evaluation.digits.classifier import clips_array
    if hasattr(scorer, "recognise"):                       # PocketSphinx: one clip at a time
        predicted = [scorer.recognise(a, r) for a, r in clips]
    else:
        predicted = scorer.predict(clips_array(clips, scorer.sample_rate, scorer.length))
    return (np.asarray(predicted) == np.asarray(labels)).astype(np.float64)


def clip_metrics(real, audio, rate: int, network) -> dict:
    return {"log_mel_l1_db": log_mel_l1_db(real, audio, rate, network.hop_length,
                                           network.n_mels),
            "spectral_convergence": spectral_convergence(real, audio)}


def summarise(rows, versions=VERSIONS) -> dict:
    """{version: {"clips", metric: mean over rows}} of per-clip rows."""
    out = {}
    for version in versions:
        keys = [k for k in METRICS if all(k in r["metrics"][version] for r in rows)]
        out[version] = {"clips": len(rows), **{k: float(np.mean([r["metrics"][version][k]
                                                                 for r in rows])) for k in keys}}
    return out


def comparisons(rows, group: str, seed: int = 0, metrics=METRICS) -> list:
    """Paired bootstrap comparisons (COMPARISONS × metrics every row has) within `rows`."""
    found = []
    for a, b in COMPARISONS:
        for key, (_, higher, _) in metrics.items():
            if len(rows) < 2 or not all(key in r["metrics"][a] for r in rows):
                continue
            c = compare([r["metrics"][a][key] for r in rows],
                        [r["metrics"][b][key] for r in rows], higher, RESAMPLES, seed)
            found.append({"group": group, "a": a, "b": b, "metric": key, **c})
    return found


def vocoder_report(pipe, data, classifier=None, seed: int = 0, keep_audio: bool = False,
                   log=print, scorers=None, max_seconds=None) -> dict:
    """Of the vocoder Pipeline `pipe` (a mel-conditioned DiffWave run, diffusion/pipeline.py):
    {"groups": {group: {version: mean metrics}}, "clips": per-clip metrics, "comparisons",
    "sources" (corpus rows), "seconds": wall time, …}; with keep_audio also
    {"audio": {name: {version: array, "label", "group"}}}. `classifier` scores as
    "digit_accuracy", `scorers` ({key: scorer or the reason it cannot run}) as their keys;
    max_seconds cuts every clip (equal lengths vocode in one batch)."""
    params, family = pipe.params, pipe.family
    if params is None:
        raise ValueError(f"{pipe.path}: an exported SavedModel; give the vocoder's run "
                         f"directory")
    if params.network.conditioning != "mel":
        raise ValueError(f"{params.model} run with conditioning "
                         f"{params.network.conditioning!r}: not a mel vocoder")
    start = time.perf_counter()
    rate, n = params.data.sample_rate, params.network
    digit_scorers = {"digit_accuracy": classifier, **(scorers or {})}
    notes = [f"{METRICS[k][0]}: n/a — {s}." for k, s in digit_scorers.items()
             if isinstance(s, str)]
    digit_scorers = {k: s for k, s in digit_scorers.items() if s is not None
                     and not isinstance(s, str)}
    fields = clip_fields(data)
    rows, kept, batches = [], {}, {}
    for name, audio, label in heldout_clips(data, params, max_seconds=max_seconds):
        batches.setdefault(len(audio), []).append((name, audio, label))  # one per length
    for batch in batches.values():
        versions = vocoded_versions(pipe, np.stack([a for _, a, _ in batch]), seed)
        new = []
        for i, (name, audio, label) in enumerate(batch):
            extra = fields.get(os.path.abspath(name), {})
            new.append({"path": name, "group": group_of(label, extra), "label": int(label),
                        **extra, "metrics": {v: clip_metrics(audio, x[i], rate, n)
                                             for v, x in versions.items()}})
            if keep_audio:
                kept[name] = {**{v: x[i] for v, x in versions.items()}, "label": label,
                              "group": new[-1]["group"]}
        digits = [i for i, r in enumerate(new) if r["group"] == "digits"]
        for key, scorer in digit_scorers.items() if digits else ():
            for version, x in versions.items():
                right = correct(scorer, [(x[i], rate) for i in digits],
                                [new[i]["label"] for i in digits])
                for i, ok in zip(digits, right):
                    new[i]["metrics"][version][key] = float(ok)
        rows += new
    groups, found = {}, []
    for group in ("digits", "speech", "music"):
        members = [r for r in rows if r["group"] == group]
        if members:
            groups[group] = summarise(members)
            found += comparisons(members, group, seed)
            if log:
                log(f"{group}: " + "; ".join(
                    f"{v} " + ", ".join(f"{k} {x:.3g}" for k, x in m.items() if k != "clips")
                    for v, m in groups[group].items()))
    sources, voices, by_source = {}, {}, []
    for source in sorted({r["source"] for r in rows if "source" in r}):
        members = [r for r in rows if r.get("source") == source]
        sources[source] = summarise(members)
        voices[source] = sorted({r["voice"] for r in members})
        by_source += comparisons(members, source, seed, SPECTRAL)
    report = {"data": str(data), "seed": seed, "griffin_lim_iterations": GRIFFIN_LIM_ITERATIONS,
              "sample_rate": rate, "sampler": family.default_sampler, "groups": groups,
              "max_seconds": max_seconds,
              "comparisons": found, "resamples": RESAMPLES,
              "consistency": dataclasses.asdict(consistent_settings(params)),
              "clips": rows, "notes": notes, "seconds": round(time.perf_counter() - start, 1)}
    if sources:
        report.update(sources=sources, voices=voices, source_comparisons=by_source)
    if keep_audio:
        report["audio"] = kept
    return report


# ---- evaluate.py --run VOCODER ----------------------------------------------------------------

HELDOUT = "dataset/splits/heldout.jsonl"
FAD_REFERENCES = {"digits": "dataset/splits/train-digits.jsonl",      # real clips of the same
                  "music": "dataset/splits/train-chorales.jsonl"}     # kind, not held out
