"""evaluation/metrics.py: the Fréchet distance against closed forms, the IS-style score's
bounds."""
import numpy as np
import pytest

from evaluation import metrics
from evaluation.metrics import (
    frechet_distance,
    gaussian_stats,
    inception_score,
    normalized_sigmoid,
    softmax,
)


def closed_form_diagonal(mu1, a, mu2, b):
    # Diagonal covariances commute: Tr √(Σ₁Σ₂) = Σᵢ √(aᵢ bᵢ).
    return np.sum((mu1 - mu2) ** 2) + a.sum() + b.sum() - 2 * np.sqrt(a * b).sum()


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_diagonal_gaussians_match_the_closed_form(method):
    rng = np.random.default_rng(0)
    for d in (1, 5, 64):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
        got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method)
        assert got == pytest.approx(closed_form_diagonal(mu1, a, mu2, b), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_rotated_gaussians_and_scalar_case(method):
    # Same spectra in a common rotated basis: the distance is basis-independent.
    rng = np.random.default_rng(1)
    d = 8
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    got = frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T,
                           method=method)
    assert got == pytest.approx(closed_form_diagonal(mu1, a, mu2, b), rel=1e-8)
    # 1-D: (μ₁ − μ₂)² + (σ₁ − σ₂)²
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]], method=method) == pytest.approx(5.0)


def test_same_set_is_zero_and_noise_increases_it():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    mu, sigma = gaussian_stats(x)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(mu, sigma, mu, sigma, method="sqrtm") == pytest.approx(0.0, abs=1e-6)
    previous = 0.0
    for scale in (0.1, 0.5, 2.0):
        m, s = gaussian_stats(x + scale * rng.normal(size=x.shape))
        distance = frechet_distance(mu, sigma, m, s)
        assert distance > previous
        previous = distance


def test_singular_covariances_use_the_regularised_fallback(monkeypatch):
    # Fewer samples than dimensions: rank-deficient Σ, singular Σ₁Σ₂.
    rng = np.random.default_rng(3)
    mu1, s1 = gaussian_stats(rng.normal(size=(6, 40)))
    mu2, s2 = gaussian_stats(rng.normal(size=(7, 40)) + 0.5)
    assert np.linalg.matrix_rank(s1 @ s2) < 40
    reference = frechet_distance(mu1, s1, mu2, s2, method="eigh")
    assert np.isfinite(reference) and reference > 0
    calls = []
    real_sqrtm = metrics._sqrtm_product

    def first_fails(a, b):              # as sqrtm does on some singular products
        calls.append(np.trace(a))
        return None if len(calls) == 1 else real_sqrtm(a, b)

    monkeypatch.setattr(metrics, "_sqrtm_product", first_fails)
    regularised = frechet_distance(mu1, s1, mu2, s2, method="sqrtm", eps=1e-6)
    assert len(calls) == 2 and calls[1] == pytest.approx(calls[0] + 40 * 1e-6)
    assert regularised == pytest.approx(reference, rel=1e-4)
    monkeypatch.setattr(metrics, "_sqrtm_product", lambda a, b: None)
    with pytest.raises(ValueError, match="not finite and real"):
        frechet_distance(mu1, s1, mu2, s2, method="sqrtm")


def test_shape_and_value_errors():
    mu, sigma = np.zeros(3), np.eye(3)
    with pytest.raises(ValueError, match="means must be vectors of one length"):
        frechet_distance(mu, sigma, np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"sigma2 must be \[3, 3\]"):
        frechet_distance(mu, sigma, mu, np.eye(2))
    with pytest.raises(ValueError, match="sigma1 contains NaN"):
        frechet_distance(mu, np.full((3, 3), np.nan), mu, sigma)
    with pytest.raises(ValueError, match="unknown method"):
        frechet_distance(mu, sigma, mu, sigma, method="svd")
    with pytest.raises(ValueError, match=r"must be \[n, d\]"):
        gaussian_stats(np.zeros(5))
    with pytest.raises(ValueError, match="at least 2 embeddings"):
        gaussian_stats(np.zeros((1, 5)))


def test_inception_score_bounds():
    assert inception_score(np.eye(10)) == pytest.approx(10.0)          # confident, spread
    assert inception_score(np.tile(np.eye(10)[3], (7, 1))) == pytest.approx(1.0)  # one class
    assert inception_score(np.full((5, 10), 0.1)) == pytest.approx(1.0)            # unsure
    mixed = inception_score(softmax(np.random.default_rng(4).normal(size=(50, 10)) * 3))
    assert 1.0 < mixed < 10.0
    p = normalized_sigmoid(np.array([[0.0, 0.0], [10.0, -10.0]]))
    assert np.allclose(p.sum(axis=1), 1.0) and np.allclose(p[0], 0.5)
    with pytest.raises(ValueError):
        inception_score(np.zeros(3))
