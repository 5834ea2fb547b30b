"""Tests of ibkit.evaluation: the Henze–Zirkler test against a direct evaluation of its formula and
its null law, subsampled normality/uniformity p-values, probes and clustering scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ibkit.evaluation import (
    clustering_scores,
    evaluate_embedding,
    henze_zirkler,
    henze_zirkler_null_moments,
    normality_pvalues,
    probe_accuracies,
    uniformity_pvalues,
)


def direct_henze_zirkler(x: np.ndarray) -> float:
    """The Henze–Zirkler statistic by the defining double sum, with an explicit inverse covariance."""
    n, d = x.shape
    mean = x.mean(axis=0)
    inverse = np.linalg.inv(np.atleast_2d(np.cov(x, rowvar=False, bias=True)))
    beta = ((2 * d + 1) * n / 4) ** (1 / (d + 4)) / math.sqrt(2)
    pair_term = 0.0
    for i in range(n):
        for j in range(n):
            diff = x[i] - x[j]
            pair_term += math.exp(-beta**2 / 2 * diff @ inverse @ diff)
    centre_term = sum(math.exp(-beta**2 / (2 * (1 + beta**2)) * (xi - mean) @ inverse @ (xi - mean)) for xi in x)
    return pair_term / n - 2 * (1 + beta**2) ** (-d / 2) * centre_term + n * (1 + 2 * beta**2) ** (-d / 2)


@pytest.mark.parametrize("n, d", [(30, 1), (40, 3)])
def test_henze_zirkler_statistic_matches_direct_double_sum(n, d):
    x = np.random.default_rng(n + d).standard_t(df=4, size=(n, d))
    assert henze_zirkler(x).statistic == pytest.approx(direct_henze_zirkler(x), rel=1e-10)


def test_henze_zirkler_batch_and_torch_inputs_agree_with_single_calls():
    x = np.random.default_rng(1).standard_normal((5, 50, 2))
    batch = henze_zirkler(torch.as_tensor(x))
    for i in range(5):
        single = henze_zirkler(x[i])
        assert batch.statistic[i] == pytest.approx(single.statistic, rel=1e-12)
        assert batch.p_value[i] == pytest.approx(single.p_value, rel=1e-12)


def test_henze_zirkler_is_affine_invariant():
    x = np.random.default_rng(2).exponential(size=(60, 3))
    transform = np.array([[2.0, 0.3, 0.0], [0.0, 0.5, -1.0], [0.4, 0.0, 3.0]])
    assert henze_zirkler(x @ transform + 7.0).statistic == pytest.approx(henze_zirkler(x).statistic, rel=1e-9)


@pytest.mark.parametrize("n, d", [(64, 2), (80, 4)])
def test_henze_zirkler_null_law_matches_monte_carlo(n, d):
    """Under normality the statistic's mean/variance match the published moments and p-values are ~U(0, 1)."""
    result = henze_zirkler(np.random.default_rng(d).standard_normal((3000, n, d)))
    mean, variance = henze_zirkler_null_moments(n, d)
    assert result.statistic.mean() == pytest.approx(mean, rel=0.03)
    assert result.statistic.var() == pytest.approx(variance, rel=0.15)
    assert 0.03 < (result.p_value < 0.05).mean() < 0.075
    assert result.p_value.mean() == pytest.approx(0.5, abs=0.03)


def test_henze_zirkler_rejects_clearly_non_gaussian_and_singular_samples():
    rng = np.random.default_rng(3)
    assert henze_zirkler(rng.exponential(size=(200, 2))).p_value < 1e-3
    degenerate = np.repeat(rng.standard_normal((50, 1)), 2, axis=1)       # rank-1 covariance
    result = henze_zirkler(degenerate)
    assert result.statistic == 4 * 50 and result.p_value < 1e-6


def test_normality_pvalues_high_for_gaussian_low_for_non_gaussian():
    rng = np.random.default_rng(4)
    gaussian = normality_pvalues(rng.standard_normal((3000, 2)) @ np.array([[3.0, 1.0], [0.0, 0.2]]), 512)
    skewed = normality_pvalues(rng.exponential(size=(3000, 2)), 512)
    for test in gaussian:
        assert 0.4 < gaussian[test] < 0.6, (test, gaussian[test])
        assert skewed[test] < 0.05, (test, skewed[test])


def test_normality_pvalues_are_reproducible_with_a_seed():
    x = np.random.default_rng(5).standard_normal((500, 3))
    assert normality_pvalues(x, 64, seed=7) == normality_pvalues(torch.as_tensor(x), 64, seed=7)
    assert normality_pvalues(x, 64, seed=7) != normality_pvalues(x, 64, seed=8)


def test_uniformity_pvalues_high_for_uniform_low_for_gaussian():
    rng = np.random.default_rng(6)
    assert 0.4 < uniformity_pvalues(rng.random((3000, 2)), 256)["kolmogorov_smirnov"] < 0.6
    squashed = 1 / (1 + np.exp(-rng.standard_normal((3000, 2))))           # in (0, 1) but not uniform
    assert uniformity_pvalues(squashed, 256)["kolmogorov_smirnov"] < 0.05


@pytest.mark.parametrize("call, message", [
    (lambda: henze_zirkler(np.ones((3, 3))), "more samples than dimensions"),
    (lambda: henze_zirkler(np.full((10, 2), np.nan)), "NaN"),
    (lambda: normality_pvalues(np.random.default_rng(0).standard_normal((30, 2)), subsample_size=64), "exceeds"),
    (lambda: normality_pvalues(np.random.default_rng(0).standard_normal((100, 2)), subsample_size=10), ">= 20"),
    (lambda: normality_pvalues(np.random.default_rng(0).standard_normal((100, 2)), tests=("lilliefors",)), "unknown"),
    (lambda: uniformity_pvalues(np.random.default_rng(0).random((100, 2)), combine="max"), "unknown"),
])
def test_bad_inputs_raise_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def blobs(n_per_class: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = np.repeat(np.arange(3), n_per_class)
    return centres[labels] + spread * rng.standard_normal((labels.size, 2)), labels


def test_probes_separate_blobs_and_stay_at_chance_on_random_labels():
    train_x, train_y = blobs(100, 1.0, seed=0)
    test_x, test_y = blobs(50, 1.0, seed=1)
    accuracies = probe_accuracies(train_x, train_y, torch.as_tensor(test_x), torch.as_tensor(test_y))
    assert set(accuracies) == {"logistic", "knn", "mlp"} and min(accuracies.values()) > 0.97
    rng = np.random.default_rng(2)
    chance = probe_accuracies(train_x, rng.integers(0, 3, 300), test_x, rng.integers(0, 3, 150), probes=("logistic",))
    assert chance["logistic"] < 0.5


def test_clustering_scores_order_tight_and_loose_blobs():
    tight, loose = clustering_scores(*blobs(60, 0.5, 0)), clustering_scores(*blobs(60, 5.0, 0))
    assert tight["silhouette"] > 0.8 > loose["silhouette"]
    assert tight["davies_bouldin"] < loose["davies_bouldin"]
    assert tight["calinski_harabasz"] > loose["calinski_harabasz"]


def test_evaluate_embedding_keys_per_prior():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((400, 2)), rng.integers(0, 2, 400)
    gaussian = evaluate_embedding(x[:300], y[:300], x[300:], y[300:], prior="gaussian", n_subsamples=32)
    assert {"pvalue_henze_zirkler", "pvalue_shapiro_wilk", "pvalue_dagostino_pearson", "accuracy_mlp",
            "silhouette"} <= set(gaussian)
    uniform = evaluate_embedding(rng.random((300, 2)), y[:300], rng.random((100, 2)), y[300:], prior="uniform",
                                 n_subsamples=32, probes=("knn",))
    assert set(uniform) == {"pvalue_kolmogorov_smirnov", "accuracy_knn", "silhouette", "davies_bouldin",
                            "calinski_harabasz"}
    with pytest.raises(ValueError, match="unknown prior"):
        evaluate_embedding(x, y, x, y, prior="laplace")
    with pytest.raises(ValueError, match="unknown probe"):
        probe_accuracies(x, y, x, y, probes=("svm",))
