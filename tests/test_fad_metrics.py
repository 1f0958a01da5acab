"""FAD from samples, its bootstrap interval, the refusal to compare at unequal n and the metric
checks of a report (evaluation/metrics.py, evaluation/checks.py): pure NumPy, no model."""
import numpy as np
import pytest

from evaluation.checks import (
    ComparisonError,
    compare_figures,
    compare_reports,
    format_checks,
    report_checks,
)
from evaluation.metrics import (
    bootstrap_fad,
    frechet_distance,
    frechet_distance_samples,
    gaussian_stats,
)


@pytest.mark.parametrize("n1,n2,d", [(30, 50, 64), (120, 80, 256), (300, 400, 16)])
def test_sample_space_fad_equals_the_d_space_formula(n1, n2, d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(n1, d)) * rng.uniform(0.2, 2.0, d)
    b = rng.normal(size=(n2, d)) @ rng.normal(size=(d, d)) / np.sqrt(d) + 0.3
    expected = frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    assert frechet_distance_samples(a, b) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance_samples(a, a) == pytest.approx(0.0, abs=1e-7)


def test_sample_fad_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"x1 must be \[n, d\]"):
        frechet_distance_samples(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="one embedding size, got 3 and 2"):
        frechet_distance_samples(np.zeros((5, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="x2: need at least 2"):
        frechet_distance_samples(np.zeros((5, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance_samples(np.full((5, 2), np.nan), np.zeros((5, 2)))


def gaussian_sets(n, d=32, shift=0.5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, d)) + shift


def test_bootstrap_interval_holds_the_estimate_shrinks_with_n_and_is_seeded():
    widths = []
    for n in (40, 160, 640):
        a, b = gaussian_sets(n)
        result = bootstrap_fad(a, b, resamples=100, seed=0)
        assert result["low"] <= result["fad"] <= result["high"], result
        assert (result["n"], result["n_reference"], result["resamples"]) == (n, n, 100)
        assert result["resampling_bias"] > 0      # repeated rows raise FAD: corrected for
        widths.append(result["high"] - result["low"])
    assert widths[0] > 1.5 * widths[1] > 1.5 * 1.5 * widths[2], widths   # ~1/√n
    a, b = gaussian_sets(40)
    assert bootstrap_fad(a, b, 50, seed=3) == bootstrap_fad(a, b, 50, seed=3)
    assert bootstrap_fad(a, b, 50, seed=3)["low"] != bootstrap_fad(a, b, 50, seed=4)["low"]
    with pytest.raises(ValueError, match="resamples must be >= 2"):
        bootstrap_fad(a, b, resamples=1)


def figure(fad, n, n_reference=200, embedding="e", segment=1.0):
    return {"fad": fad, "n": n, "n_reference": n_reference, "embedding": embedding,
            "segment": segment, "low": fad - 1, "high": fad + 1}


def test_comparing_figures_at_different_n_is_refused():
    assert compare_figures(figure(10.0, 100), figure(12.5, 100)) == pytest.approx(2.5)
    with pytest.raises(ComparisonError, match=r"refusing to compare FAD\(a\) and FAD\(b\): n "
                                              r"10 vs 100"):
        compare_figures(figure(50.8, 10), figure(46.3, 100))
    with pytest.raises(ComparisonError, match="reference n 200 vs 100"):
        compare_figures(figure(1.0, 100), figure(2.0, 100, n_reference=100))
    with pytest.raises(ComparisonError, match="embedding"):
        compare_figures(figure(1.0, 100), figure(2.0, 100, embedding="other"))
    with pytest.raises(ComparisonError, match="segment length"):
        compare_figures(figure(1.0, 100), figure(2.0, 100, segment=3.0))


def fake_report(n=100, real=10.0, noise=40.0, generated=30.0, passed=("speech",), n_real=None,
                classifier=None):
    def s(fad, windows):
        return {"fad": fad, "low": fad * 0.9, "high": fad * 1.1, "windows": windows,
                "n_reference": 230}
    report = {"generated": "gen", "domain": "speech", "segment_seconds": 1.0,
              "embedding": {"id": "digit-classifier:x", "name": "digit-classifier",
                            "checked_domains": list(passed)},
              "sets": {"generated": s(generated, n), "real": s(real, n_real or n),
                       "noise": s(noise, n)}}
    if classifier:
        report["digit_classifier"] = classifier
    return report


def test_report_checks_say_which_calibrations_hold():
    good = format_checks(report_checks(fake_report(classifier={
        "heldout_accuracy": 0.971, "heldout_count": 70, "split": "stratified",
        "heldout_engine_accuracy": 0.95})))
    assert all(line.startswith("✓") for line in good), good
    assert any("passed the FAD ordering check on speech" in line for line in good)
    assert any("FAD(real, half B) 10.000 < FAD(noise) 40.000 at this n = 100" in line
               for line in good)
    assert any("held-out accuracy 97.1 %" in line for line in good)

    bad = format_checks(report_checks(fake_report(n=10, real=50.8, noise=46.3, passed=())))
    assert "✗ n = 10 < 100: FAD is biased upwards and its interval wide; compare only at " \
           "n = 10" in bad
    assert any(line.startswith("✗ FAD(real, half B) 50.800 < FAD(noise)") for line in bad)
    assert any(line.startswith("✗ embedding digit-classifier passed") for line in bad)

    unequal = format_checks(report_checks(fake_report(n=120, n_real=90)))
    assert any(line.startswith("✗ refusing to compare FAD(real) and FAD(noise): n 90 vs 120")
               for line in unequal), unequal
    no_engine = format_checks(report_checks(fake_report(classifier={
        "heldout_accuracy": 0.97, "heldout_count": 70, "split": "s"})))
    assert "✗ digit classifier: no held-out-engine accuracy in its config " \
           "(heldout_engine_accuracy): its accuracy on an unseen voice is unknown" in no_engine


def test_compare_reports_refuses_unequal_n():
    a, b = fake_report(n=100, generated=30.0), fake_report(n=100, generated=25.0)
    line = compare_reports(a, b)
    assert "30.000" in line and "25.000" in line and "(-5.000)" in line and "n = 100" in line
    with pytest.raises(ComparisonError, match="n 100 vs 10"):
        compare_reports(a, fake_report(n=10))
