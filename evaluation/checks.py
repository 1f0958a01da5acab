"""The metric checks printed with every report, and the refusal to compare figures at unequal n.

    compare_figures(a, b)          # ComparisonError unless both FADs were made at one n
    checks = report_checks(report) # [{"ok": True | False, "text": "…"}]
    lines = format_checks(checks)  # "✓ …" / "✗ …"

FAD is biased upwards at small n (the finite-sample bias falls roughly as 1/n, and at n < d
the covariance is rank-deficient), so two FADs compare only at the same n of windows of the
scored set and of the reference. A figure is also read only with its calibration: did the
embedding pass the ordering check (evaluation/ordering.py) on this domain, does real audio
score below noise at this very n, is n large enough, is the digit classifier accurate.
"""
from __future__ import annotations

MIN_WINDOWS = 100          # the n of the ordering check; below it FAD is read with care
MIN_CLASSIFIER_ACCURACY = 0.9


class ComparisonError(ValueError):
    """Two figures that cannot be compared (different n, embedding or segment)."""


def compare_figures(a: dict, b: dict, names=("a", "b")) -> float:
    """b's FAD − a's FAD, or ComparisonError when they were computed at different n (of the
    scored windows or of the reference's), on different embeddings or with other segments.
    Figures are dicts with "fad", "n" and optionally "n_reference", "embedding", "segment"."""
    for key, what in (("n", "n"), ("n_reference", "reference n"),
                      ("embedding", "embedding"), ("segment", "segment length")):
        if a.get(key) != b.get(key):
            raise ComparisonError(
                f"refusing to compare FAD({names[0]}) and FAD({names[1]}): {what} "
                f"{a.get(key)} vs {b.get(key)} (FAD is biased by n; compare at equal n "
                f"on one embedding)")
    return float(b["fad"]) - float(a["fad"])


def figure(report: dict, name: str) -> dict:
    """One scored set of a report.json as a comparable figure."""
    s = report["sets"][name]
    return {"fad": s["fad"], "n": s["windows"], "n_reference": s.get("n_reference"),
            "embedding": report["embedding"]["id"], "segment": report["segment_seconds"],
            "low": s.get("low"), "high": s.get("high")}


def compare_reports(a: dict, b: dict, name: str = "generated") -> str:
    """One line comparing the `name` set of two report.json dicts (ComparisonError at unequal
    n)."""
    fa, fb = figure(a, name), figure(b, name)
    delta = compare_figures(fa, fb, (f"{name} of {a['generated']}", f"{name} of {b['generated']}"))
    return (f"FAD({name}) {fa['fad']:.3f} [{fa['low']:.3f}, {fa['high']:.3f}] → "
            f"{fb['fad']:.3f} [{fb['low']:.3f}, {fb['high']:.3f}] ({delta:+.3f}) at n = "
            f"{fa['n']} (reference {fa['n_reference']})")


def _check(ok, text):
    return {"ok": bool(ok), "text": text}


def report_checks(report: dict) -> list:
    """The checks of one report (see the module doc); `report` is evaluate()'s dict."""
    emb, domain = report["embedding"], report["domain"]
    checks = [_check(domain in emb["checked_domains"],
                     f"embedding {emb['name']} passed the FAD ordering check on {domain} "
                     f"(held-out real < noise, monotone in SNR 30/20/10/0 dB at n >= "
                     f"{MIN_WINDOWS}); passed on: {', '.join(emb['checked_domains']) or 'none'}")]
    sets = report["sets"]
    real, noise = figure(report, "real"), figure(report, "noise")
    try:
        compare_figures(real, noise, ("real", "noise"))
        checks.append(_check(real["fad"] < noise["fad"],
                             f"FAD(real, half B) {real['fad']:.3f} < FAD(noise) "
                             f"{noise['fad']:.3f} at this n = {real['n']}"))
        checks.append(_check(real["high"] < noise["low"],
                             f"the real and noise intervals are apart ([{real['low']:.3f}, "
                             f"{real['high']:.3f}] vs [{noise['low']:.3f}, {noise['high']:.3f}])"))
    except ComparisonError as e:
        checks.append(_check(False, str(e)))
    for other in ("real", "noise"):
        try:
            compare_figures(figure(report, "generated"), figure(report, other),
                            ("generated", other))
        except ComparisonError as e:
            checks.append(_check(False, str(e)))
    n = sets["generated"]["windows"]
    checks.append(_check(n >= MIN_WINDOWS, f"n = {n} >= {MIN_WINDOWS} windows" if
                         n >= MIN_WINDOWS else f"n = {n} < {MIN_WINDOWS}: FAD is biased "
                         f"upwards and its interval wide; compare only at n = {n}"))
    classifier = report.get("digit_classifier")
    if classifier:
        acc = classifier.get("heldout_accuracy")
        checks.append(_check(acc is not None and acc >= MIN_CLASSIFIER_ACCURACY,
                             f"digit classifier: held-out accuracy {100 * (acc or 0):.1f} % "
                             f"({classifier.get('heldout_count')} clips, "
                             f"{classifier.get('split')})"))
        engine = classifier.get("heldout_engine_accuracy")
        if engine is not None:
            each = classifier.get("heldout_engine_accuracies") or {}
            checks.append(_check(engine >= MIN_CLASSIFIER_ACCURACY,
                                 f"digit classifier: held-out-engine accuracy "
                                 f"{100 * engine:.1f} % (the worst engine" +
                                 ("".join(f"; {k} {100 * v:.1f} %" for k, v in each.items())
                                  if each else "") + ")"))
        else:
            checks.append(_check(False, "digit classifier: no held-out-engine accuracy in its "
                                        "config (heldout_engine_accuracy): its accuracy on "
                                        "an unseen voice is unknown"))
    head = report.get("digit_head_loeo")           # evaluation/digits/head.py's folds
    if head:
        checks.append(_check(min(head.values()) >= MIN_CLASSIFIER_ACCURACY,
                             f"digit head: held-out-engine accuracy {100 * min(head.values()):.1f}"
                             f" % (the worst engine; " + "; ".join(
                                 f"{k} {100 * v:.1f} %" for k, v in head.items()) +
                             "; folds used to choose its recipe: the selection-free figure is "
                             "the Kokoro voices', in pretrained/digit-head/README.md)"))
    return checks


def format_checks(checks) -> list:
    return [("✓ " if c["ok"] else "✗ ") + c["text"] for c in checks]
