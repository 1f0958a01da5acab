"""Writing a vocoder report (evaluation/vocoder.py's vocoder_report) out: its Markdown (the
group × version table, the paired comparisons, per source) and its per-version WAV sets, which
evaluate.py re-scores with --generated for each version's FAD.

    dirs = write_sets(report, "runs/eval/vocoder")     # {(group, version): directory}
    text = markdown(report)
"""
from __future__ import annotations

import os

from evaluation.scorers import SCORERS
from evaluation.vocoder import ACCURACIES, FEW, LABELS, METRICS, VERSIONS


def write_sets(report, out) -> dict:
    """OUT/<group>-<version>/ WAVs + metadata.jsonl (labels for digits; report.write_samples),
    re-usable with `evaluate.py --generated`; returns {(group, version): directory}."""
    from evaluation.report import write_samples
    sets = {}
    for clip in report["audio"].values():
        for version in VERSIONS:
            sets.setdefault((clip["group"], version), []).append((clip[version], clip["label"]))
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


def _comparison_rows(found, counts) -> list:
    rows = []
    for c in found:
        title, higher, shares = METRICS[c["metric"]]
        points = c["metric"] in ACCURACIES                         # 0/1 per clip → points
        cell = (lambda x: f"{100 * x:+.1f}") if points else (lambda x: f"{x:+.3g}")
        rows.append(f"| {c['group']} ({counts[c['group']]}) | {LABELS.get(c['a'], c['a'])} vs "
                    f"{LABELS.get(c['b'], c['b'])} | {title} {'↑' if higher else '↓'} | "
                    f"{cell(c['difference'])}{' pts' if points else ''} [{cell(c['low'])}, "
                    f"{cell(c['high'])}] | **{c['verdict']}** | {shares} |")
    return rows


COMPARISON_HEADER = ["| clips | A vs B | metric | A − B [95 %] | verdict | shares features with "
                     "the refinement's loss |", "|---|---|---|---|---|---|"]


def markdown(report) -> str:
    """The report as tables: group × version, the paired comparisons, and per source."""
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
    counts = {g: v["real"]["clips"] for g, v in report["groups"].items()}
    lines += ["", "## Comparisons", "",
              f"Paired bootstrap: {report['resamples']} resamples of the clips, 95 % percentile "
              f"interval of the mean per-clip difference A − B (accuracies: of the per-clip 0/1 "
              f"correctness, in points). **beats** / **loses**: the interval excludes zero on "
              f"A's better / worse side; otherwise **tie**.", "", *COMPARISON_HEADER,
              *_comparison_rows(report.get("comparisons", []), counts), "",
              "Griffin-Lim + refinement and vocoder + consistency both descend the log-mel L1 "
              "to the conditioning mel (the consistent row also steers each sampling step by "
              "it). So log-mel L1 is the optimised quantity itself and favours them by "
              "construction; spectral convergence reads the STFT magnitudes that log-mel is "
              "made of; every digit scorer reads mel-type features (the classifier: log-mel "
              "cepstra, the digit head: mel bands into Google's embedding, PocketSphinx: "
              "MFCCs). None is independent of the target: Griffin-Lim + refinement is the "
              "control that separates the network from the refinement.",
              *(["", f"Some groups have under {FEW} clips: a percentile interval is then too "
                 f"narrow to trust; read those verdicts as indications."]
                if min(counts.values(), default=FEW) < FEW else [])]
    if report.get("sources"):
        counts = {s: v["real"]["clips"] for s, v in report["sources"].items()}
        lines += ["", "## Per source", "",
                  "| source (clips) | voices | version | log-mel L1 (dB) | spectral convergence |",
                  "|---|---|---|---|---|"]
        for source, versions in report["sources"].items():
            for version, m in versions.items():
                lines.append(f"| {source} ({m['clips']}) | "
                             f"{', '.join(report['voices'][source])} | "
                             f"{LABELS.get(version, version)} | {m['log_mel_l1_db']:.2f} | "
                             f"{m['spectral_convergence']:.3f} |")
        lines += ["", *COMPARISON_HEADER,
                  *_comparison_rows(report.get("source_comparisons", []), counts)]
    return "\n".join(lines + ["", *report.get("notes", [])]) + "\n"
