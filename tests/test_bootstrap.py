"""evaluation/bootstrap.py: the paired interval, the beats / tie / loses rule, Wilson's interval."""
import numpy as np
import pytest

from evaluation.bootstrap import compare, paired_difference, verdict, wilson_interval


def test_a_known_difference_beats_and_loses_by_direction():
    rng = np.random.default_rng(1)
    b = rng.normal(5.0, 1.0, 40)
    a = b - 1.0 + rng.normal(0.0, 0.1, 40)              # a is 1 lower on every clip
    lower = compare(a, b, higher_is_better=False)
    assert lower["verdict"] == "beats" and lower["high"] < 0
    assert abs(lower["difference"] + 1.0) < 0.05
    assert lower["low"] < lower["difference"] < lower["high"]
    assert compare(a, b, higher_is_better=True)["verdict"] == "loses"
    assert compare(b, a, higher_is_better=False)["verdict"] == "loses"


def test_zero_difference_is_a_tie():
    clips = np.random.default_rng(2).normal(size=30)
    same = compare(clips, clips, higher_is_better=False)
    assert same["verdict"] == "tie" and same["low"] == same["high"] == 0.0
    noise = np.random.default_rng(3).normal(size=30)             # mean ≈ 0, spread ≈ 1
    assert compare(noise, np.zeros(30), higher_is_better=True)["verdict"] == "tie"


def test_accuracies_are_per_clip_zero_one():
    # 30 clips: a right on 25, b on 10, the same clips → +50 points, interval away from 0.
    a = np.r_[np.ones(25), np.zeros(5)]
    b = np.r_[np.ones(10), np.zeros(20)]
    c = compare(a, b, higher_is_better=True)
    assert c["verdict"] == "beats" and c["difference"] == pytest.approx(0.5)
    one_clip_apart = np.r_[np.ones(1), np.zeros(29)]
    assert compare(one_clip_apart, np.zeros(30), True)["verdict"] == "tie"


def test_seeded_and_reproducible():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=25), rng.normal(size=25)
    first, again = paired_difference(a, b, seed=7), paired_difference(a, b, seed=7)
    assert first == again and first["resamples"] == 2000 and first["level"] == 0.95
    assert paired_difference(a, b, seed=8) != first            # another seed, other resamples
    # The interval is the 2.5 / 97.5 % percentiles of the resampled means.
    means = (a - b)[np.random.default_rng(7).integers(0, 25, (2000, 25))].mean(axis=1)
    assert first["low"] == pytest.approx(np.quantile(means, 0.025))
    assert first["high"] == pytest.approx(np.quantile(means, 0.975))


def test_verdict_rule_and_bad_input():
    assert verdict({"low": 0.1, "high": 0.3}, higher_is_better=True) == "beats"
    assert verdict({"low": -0.1, "high": 0.3}, higher_is_better=True) == "tie"
    assert verdict({"low": -0.3, "high": -0.1}, higher_is_better=False) == "beats"
    with pytest.raises(ValueError, match=">= 2 clips"):
        paired_difference([1.0], [2.0])
    with pytest.raises(ValueError, match=">= 2 clips"):
        paired_difference([1.0, 2.0], [2.0, 3.0, 4.0])


def test_wilson_interval_matches_newcombes_worked_examples():
    # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (95 %, no correction)
    for (k, n), expected in {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605),
                             (0, 20): (0.0, 0.1611), (1, 29): (0.0061, 0.1718)}.items():
        np.testing.assert_allclose(wilson_interval(k, n), expected, atol=5e-5)
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and 0.83 < low < 0.84                  # inside [0, 1] at the edges
    narrow, wide = wilson_interval(900, 1000), wilson_interval(90, 100)
    assert wide[0] < narrow[0] < 0.9 < narrow[1] < wide[1]     # n × 10: about √10 narrower
    assert wilson_interval(9, 10, level=0.99)[0] < wilson_interval(9, 10)[0]
    for bad in [(11, 10), (-1, 10), (0, 0)]:
        with pytest.raises(ValueError, match="Wilson"):
            wilson_interval(*bad)
