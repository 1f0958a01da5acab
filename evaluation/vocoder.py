"""How well a mel-conditioned DiffWave run inverts log-mels of clips it never saw, next to
Griffin-Lim from the same log-mel (the baseline it must beat) and the real clips.

    report = vocoder_report(params, family, model, "dataset/splits/heldout.jsonl",
                            classifier=DigitClassifier.load("pretrained/digit-classifier"))

Per group of held-out clips (labelled digits, unlabelled music), for real / Griffin-Lim /
vocoder audio, the vocoder both as it samples alone ("vocoder") and steered toward the log-mel
and refined on it ("consistent", diffusion/core/consistency.py: the run's settings, or
CONSISTENT). The refinement descends the very log-mel L1 reported, so that column favours
it; the digit scorers and FAD are the independent checks:
  log-mel L1 (dB): mean |log_mel(y) − log_mel(x)| of DiffWave's log-mel (data/features.py,
      80 bands, floor −100 dB re the log-mel's 20 dB offset), ×100 to read in dB;
  spectral convergence: ‖|STFT(y)| − |STFT(x)|‖_F / ‖|STFT(x)|‖_F (Arık et al. 2019);
  digit accuracy (labelled clips): the classifier on y against the labels.
Clips are levelled as the run's training audio was (data.normalize), so the log-mel the
vocoder sees matches training; each clip is cut to whole mel frames.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import tensorflow as tf

from data.features import log_mel, read_mono
from data.mel_convert import log_mel_to_audio
from data.pipeline import normalize
from data.sources import find_sources
from diffusion.core.consistency import Consistency
from evaluation.scorers import SCORERS

GRIFFIN_LIM_ITERATIONS = 32        # teticio / diffusers Mel default
VERSIONS = ("real", "griffin-lim", "vocoder", "consistent")
LABELS = {"consistent": "vocoder + consistency"}

# The "consistent" row of a run whose params sample without consistency (a mel run's defaults)
CONSISTENT = Consistency(scale=0.3, steps=10, refine_steps=100, refine_rate=1e-3)


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


def heldout_clips(data, params):
    """[(name, audio [T], label)] of `data` (a directory or metadata.jsonl), levelled as the
    run's training data and cut to whole mel frames."""
    rate, hop = params.data.sample_rate, params.network.hop_length
    clips = []
    for source in find_sources(data).sources:
        audio = np.asarray(normalize(read_mono(source.path, rate), params.data))
        clips.append((source.path, audio[:len(audio) // hop * hop], source.label))
    if not clips:
        raise ValueError(f"{data}: no readable audio to evaluate the vocoder on")
    return clips


def vocode(family, model, mels, seed: int = 0, consistency=None) -> np.ndarray:
    """DiffWave audio [N, frames·hop] for log-mels [N, frames, n_mels] (the fast schedule);
    `consistency` (diffusion/core/consistency.py) defaults to the run's params."""
    hop = family.params.network.hop_length
    shape = [len(mels), mels.shape[1] * hop, 1]
    scheduler = family.scheduler(family.default_sampler)
    return family.sample(model, scheduler, shape, {"mel": tf.constant(mels)}, seed,
                         consistency=consistency).numpy()[..., 0]


def consistent_settings(params):
    """The run's consistency settings, or CONSISTENT where the run samples without them."""
    own = Consistency.from_params(params.network)
    return CONSISTENT if own.off else own


def vocoded_versions(family, model, audio, seed, versions=VERSIONS):
    """{version: array [N, frames·hop]} for equal-length clips [N, T]; "vocoder" is the
    network's own sampling, "consistent" the same steered toward the log-mel and refined."""
    n = family.params.network
    rate = family.params.data.sample_rate
    mel = log_mel(audio, rate, n.hop_length, n.n_mels).numpy()

    def griffin_lim():
        griffin = log_mel_to_audio(mel, rate, n.hop_length, GRIFFIN_LIM_ITERATIONS, seed)
        return np.pad(griffin, ((0, 0), (0, audio.shape[1] - griffin.shape[1])))

    make = {"real": lambda: audio, "griffin-lim": griffin_lim,
            "vocoder": lambda: vocode(family, model, mel, seed, Consistency()),
            "consistent": lambda: vocode(family, model, mel, seed,
                                         consistent_settings(family.params))}
    return {version: make[version]() for version in versions}


def vocoder_report(params, family, model, data, classifier=None, seed: int = 0,
                   keep_audio: bool = False, log=print) -> dict:
    """{"groups": {"digits"|"music": {version: metrics}}, "seconds": wall time, …}; with
    keep_audio also {"audio": {name: {version: array}}}."""
    if params.network.conditioning != "mel":
        raise ValueError(f"{params.model} run with conditioning "
                         f"{params.network.conditioning!r}: not a mel vocoder")
    start = time.perf_counter()
    rate, n = params.data.sample_rate, params.network
    groups, kept, batches = {}, {}, {}
    for name, audio, label in heldout_clips(data, params):      # one batch per clip length
        batches.setdefault(len(audio), []).append((name, audio, label))
    for rows in batches.values():
        versions = vocoded_versions(family, model, np.stack([a for _, a, _ in rows]), seed)
        for i, (name, _, label) in enumerate(rows):
            clip = {v: x[i] for v, x in versions.items()}
            groups.setdefault("digits" if label >= 0 else "music", []).append((label, clip))
            if keep_audio:
                kept[name] = {**clip, "label": label}
    result = {}
    for group, rows in groups.items():
        result[group] = {}
        for version in VERSIONS:
            pairs = [(r["real"], r[version]) for _, r in rows]
            metrics = {"clips": len(rows),
                       "log_mel_l1_db": float(np.mean([log_mel_l1_db(a, b, rate, n.hop_length,
                                                                     n.n_mels)
                                                       for a, b in pairs])),
                       "spectral_convergence": float(np.mean([spectral_convergence(a, b)
                                                              for a, b in pairs]))}
            labels = [label for label, _ in rows]
            if classifier is not None and group == "digits":
                clips = [(r[version], rate) for _, r in rows]
                metrics["digit_accuracy"] = classifier.accuracy_on_clips(clips, labels)["overall"]
            result[group][version] = metrics
        if log:
            log(f"{group}: " + "; ".join(f"{v} " + ", ".join(f"{k} {x:.3g}" for k, x in m.items()
                                                              if k != "clips")
                                         for v, m in result[group].items()))
    report = {"data": str(data), "seed": seed, "griffin_lim_iterations": GRIFFIN_LIM_ITERATIONS,
              "sample_rate": rate,
              "sampler": family.default_sampler, "groups": result,
              "consistency": dataclasses.asdict(consistent_settings(params)),
              "seconds": round(time.perf_counter() - start, 1)}
    if keep_audio:
        report["audio"] = kept
    return report


# ---- evaluate.py --run VOCODER ----------------------------------------------------------------

HELDOUT = "dataset/splits/heldout.jsonl"
FAD_REFERENCES = {"digits": "dataset/splits/train-digits.jsonl",      # real clips of the same
                  "music": "dataset/splits/train-chorales.jsonl"}     # kind, not held out


def is_vocoder_run(run_dir) -> bool:
    """True when `run_dir`'s params.json is a mel-conditioned DiffWave (read, nothing built)."""
    import json
    import os
    try:
        with open(os.path.join(str(run_dir), "params.json")) as f:
            params = json.load(f)
    except (OSError, ValueError):
        return False
    return params.get("model") == "diffwave" and \
        params.get("network", {}).get("conditioning") == "mel"


def write_sets(report, out) -> dict:
    """OUT/<group>-<version>/ WAVs + metadata.jsonl (labels for digits; report.write_samples),
    re-usable with `evaluate.py --generated`; returns {(group, version): directory}."""
    import os

    from evaluation.report import write_samples
    sets = {}
    for clip in report["audio"].values():
        group = "digits" if clip["label"] >= 0 else "music"
        for version in VERSIONS:
            sets.setdefault((group, version), []).append((clip[version], clip["label"]))
    dirs = {}
    for (group, version), rows in sets.items():
        dirs[(group, version)] = os.path.join(out, f"{group}-{version}")
        labels = [label for _, label in rows] if group == "digits" else None
        write_samples(dirs[(group, version)], [(a, report["sample_rate"]) for a, _ in rows],
                      labels)
    return dirs


def _settings(c) -> str:
    return "–" if not c else (f"scale {c['scale']} × {c['steps']} moves per step, "
                              f"{c['refine_steps']} refinement steps at {c['refine_rate']:g}")


def markdown(report) -> str:
    """The report as a table: one row per group × version."""
    lines = [f"# Vocoder: {report['run']}", "",
             f"Held-out clips: {report['data']} · Griffin-Lim {report['griffin_lim_iterations']} "
             f"iterations · sampler {report['sampler']} · seed {report['seed']} · "
             f"consistency {_settings(report.get('consistency'))}", "",
             "| clips | version | digit accuracy | "
             + "".join(f"{title} | " for title, _ in SCORERS.values())
             + "log-mel L1 (dB) | spectral convergence | FAD (n) [95 %] | FAD real · noise |",
             "|---|---|---|" + "---|" * len(SCORERS) + "---|---|---|---|"]
    for group, versions in report["groups"].items():
        for version, m in versions.items():
            acc = " | ".join(f"{100 * m[k]:.1f} %" if k in m else "–"
                             for k in ("digit_accuracy", *SCORERS))
            fad = m.get("fad")
            fad_cell = (f"{fad['fad']:.2f} ({fad['windows']}) [{fad['low']:.2f}, "
                        f"{fad['high']:.2f}]" if fad else "–")
            base = f"{fad['real']:.2f} · {fad['noise']:.2f}" if fad else "–"
            lines.append(f"| {group} ({m['clips']}) | {LABELS.get(version, version)} | {acc} | "
                         f"{m['log_mel_l1_db']:.2f} | {m['spectral_convergence']:.3f} | "
                         f"{fad_cell} | {base} |")
    return "\n".join(lines + ["", *report.get("notes", [])]) + "\n"
