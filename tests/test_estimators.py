"""Estimators against closed forms: Gaussian entropy, correlated-Gaussian MI, invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import digamma

import ibkit
from ibkit.estimators import KSG, DegenerateDataWarning, make_estimator, wkl_weights


def gaussian_entropy(cov: np.ndarray) -> float:
    d = cov.shape[0]
    return 0.5 * (d * math.log(2 * math.pi * math.e) + np.linalg.slogdet(cov)[1])


def random_covariance(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((d, d))
    return a @ a.T + 0.5 * np.eye(d)


def gaussian_samples(cov: np.ndarray, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).multivariate_normal(np.zeros(cov.shape[0]), cov, size=n)


def correlated_pair(n: int, mi: float, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rho = math.sqrt(1 - math.exp(-2 * mi / d))
    x = rng.standard_normal((n, d))
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((n, d))
    return x, y


@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("method,params,tol", [("kl", {"k": 1, "correction": None}, 0.05),
                                               ("wkl", {"k": 5, "correction": None}, 0.05),
                                               ("wkl", {}, 0.03), ("kde-ml", {}, 0.08)])
def test_entropy_of_correlated_gaussian_low_dim(d, method, params, tol):
    cov = random_covariance(d, seed=d)
    x = gaussian_samples(cov, 10_000, seed=10 + d)
    est = ibkit.entropy(x, method=method, **params)
    assert abs(float(est) - gaussian_entropy(cov)) < tol
    assert 0 < est.stderr < 0.05


@pytest.mark.parametrize("d", [8, 20])
def test_corrected_entropy_in_high_dimension(d):
    cov = random_covariance(d, seed=d)
    x = gaussian_samples(cov, 5_000, seed=18)
    assert abs(float(ibkit.entropy(x)) - gaussian_entropy(cov)) < 0.06
    if d == 20:  # uncorrected, the k-NN entropy of a 20-d Gaussian at N = 5k is off by about 2 nats
        assert float(ibkit.entropy(x, method="kl", correction=None)) - gaussian_entropy(cov) > 1.0


def test_kde_lse_entropy_of_gaussian():
    cov = random_covariance(2, seed=2)
    est = ibkit.entropy(gaussian_samples(cov, 4_000, seed=3), method="kde-lse")
    assert abs(float(est) - gaussian_entropy(cov)) < 0.08


def test_wkl_weights_satisfy_bias_constraints_and_stay_bounded():
    from scipy.special import gammaln

    from ibkit.estimators.knn import WKL_MAX_WEIGHT

    for d, k, cancelled in [(4, 5, 1), (8, 20, 2), (8, 80, 2), (10, 40, 2), (12, 80, 1)]:
        w = wkl_weights(k, d)
        j = np.arange(1, k + 1)
        assert w.sum() == pytest.approx(1.0, abs=1e-10)
        for power in range(1, cancelled + 1):
            assert np.dot(w, np.exp(gammaln(j + 2 * power / d) - gammaln(j))) == pytest.approx(0.0, abs=1e-8)
    for d in (16, 25, 50):  # the paper's weights reach 1e4..1e11 here; these stay bounded
        for k in (5, 20, 80):
            assert np.abs(wkl_weights(k, d)).sum() <= WKL_MAX_WEIGHT
    assert np.allclose(wkl_weights(5, 1), [0, 0, 0, 0, 1])  # d <= 3: the k-th neighbour (plain KL)
    assert np.allclose(wkl_weights(5, 3), [0, 0, 0, 0, 1])


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("mi", [0.0, 1.0, 3.0])
def test_default_mutual_information_of_correlated_gaussians(d, mi):
    x, y = correlated_pair(5_000, mi, d, seed=int(10 * mi) + d)
    est = ibkit.mutual_information(x, y)
    assert abs(float(est) - mi) < max(0.1, 3 * est.stderr)


def plain_ksg(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Kraskov et al. algorithm 1, written directly from the paper with brute-force distances."""
    n = len(x)
    dx = np.abs(x[:, None, :] - x[None, :, :]).max(-1)
    dy = np.abs(y[:, None, :] - y[None, :, :]).max(-1)
    dz = np.maximum(dx, dy)
    np.fill_diagonal(dz, np.inf)
    eps = np.sort(dz, axis=1)[:, k - 1]
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dy, np.inf)
    nx = (dx < eps[:, None]).sum(1)
    ny = (dy < eps[:, None]).sum(1)
    return float(digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1)))


@pytest.mark.parametrize("d", [1, 3])
def test_ksg_matches_plain_algorithm(d):
    x, y = correlated_pair(1_500, 1.0, d, seed=d)
    ours = KSG(k=4, preprocess="none").estimate(x, y)
    assert ours == pytest.approx(plain_ksg(x, y, 4), abs=1e-6)


def test_ksg_brute_force_path_matches_tree_path(monkeypatch):
    import ibkit.neighbors as nb

    x, y = correlated_pair(2_000, 2.0, 2, seed=5)
    tree = KSG(k=5).estimate(x, y)
    monkeypatch.setattr(nb, "KD_TREE_MAX_DIM", 0)
    assert KSG(k=5).estimate(x, y) == pytest.approx(tree, abs=1e-9)


@pytest.mark.parametrize("mi", [0.0, 1.0, 3.0])
def test_ksg_accurate_in_one_dimension(mi):
    x, y = correlated_pair(10_000, mi, 1, seed=int(mi))
    assert abs(ibkit.mutual_information(x, y, method="ksg").value - mi) < 0.05


@pytest.mark.parametrize("method", ["ksg", "wkl", "kl"])
def test_mi_invariant_under_invertible_maps(method):
    from scipy.stats import norm

    x, y = correlated_pair(10_000, 1.5, 1, seed=7)
    base = ibkit.mutual_information(x, y, method=method)
    mapped = ibkit.mutual_information(norm.cdf(x), y**3 + y, method=method)
    # Normal scores see only ranks, so a per-coordinate monotone map changes nothing at all.
    assert mapped.value == pytest.approx(base.value, abs=1e-12)
    assert abs(base.value - 1.5) < 0.05


def test_discrete_labels_mi_matches_numerical_reference():
    # Class-conditional Gaussian mixture in 1-D: y uniform on 3 classes, x | y ~ N(2y, 1).
    means = np.array([0.0, 2.0, 4.0])
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 10_000)
    x = means[labels] + rng.standard_normal(10_000)
    grid = np.linspace(-8, 12, 200_001)
    conditional = np.exp(-0.5 * (grid[None] - means[:, None]) ** 2) / math.sqrt(2 * math.pi)
    mixture = conditional.mean(0)
    h_mixture = -np.trapezoid(mixture * np.log(mixture), grid)
    reference = h_mixture - 0.5 * math.log(2 * math.pi * math.e)
    for method in ("wkl", "kl", "ksg"):
        est = ibkit.mutual_information(x, labels, method=method, discrete_y=True)
        assert abs(est.value - reference) < 3 * est.stderr + 0.02, method
        swapped = ibkit.mutual_information(labels, x, method=method, discrete_x=True)
        assert swapped.value == pytest.approx(est.value)


def test_discrete_discrete_plugin():
    x = np.array([0, 0, 1, 1] * 250)
    assert ibkit.mutual_information(x, x, discrete_x=True, discrete_y=True).value == pytest.approx(math.log(2))
    y = np.array([0, 1, 0, 1] * 250)
    assert ibkit.mutual_information(x, y, discrete_x=True, discrete_y=True).value == pytest.approx(0.0, abs=1e-12)


def test_estimate_type_and_ci():
    x, y = correlated_pair(2_000, 1.0, 1, seed=1)
    est = ibkit.mutual_information(torch.from_numpy(x), torch.from_numpy(y))
    low, high = est.ci(0.95)
    assert low < float(est) < high
    assert high - low == pytest.approx(2 * 1.959964 * est.stderr, rel=1e-5)
    assert est.method == "wkl" and est.n == 2_000


def test_duplicates_give_finite_entropy_with_warning():
    x = np.random.default_rng(0).standard_normal((1_000, 2))
    x[500:] = x[:500]
    with pytest.warns(UserWarning, match="duplicated"):
        est = ibkit.entropy(x, method="kl", k=1)
    assert math.isfinite(est.value)
    assert math.isfinite(ibkit.mutual_information(x[:, :1], x[:, 1:], method="ksg").value)


def test_ties_in_separated_clusters_give_label_entropy():
    # Saturated softmax-like data: each class a tight cluster, half of it exact duplicates.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 3_000)
    centres = 5.0 * np.eye(3)[labels]
    spread = np.where(rng.random(3_000) < 0.5, 0.0, 1e-3)[:, None] * rng.standard_normal((3_000, 3))
    with pytest.warns(UserWarning, match="duplicated"):
        est = ibkit.mutual_information(centres + spread, labels, discrete_y=True, preprocess="whiten")
    assert abs(est.value - math.log(3)) < 0.05
    # Normal scores break the ties by rank; the clusters are reported, and the estimate holds.
    with pytest.warns(DegenerateDataWarning, match="x: its 3000 samples"):
        est = ibkit.mutual_information(centres + spread, labels, discrete_y=True)
    assert abs(est.value - math.log(3)) < 0.05


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ibkit.mutual_information(np.zeros((10, 2)) + np.arange(10)[:, None], np.ones(11)), "same number of samples"),
        (lambda: ibkit.entropy(np.array([[0.0], [np.nan], [1.0]])), "NaN or inf"),
        (lambda: ibkit.entropy(np.array([[0.0], [np.inf], [1.0]])), "NaN or inf"),
        (lambda: ibkit.entropy(np.random.default_rng(0).standard_normal((5, 2)), k=5), "N > k"),
        (lambda: ibkit.mutual_information(np.random.default_rng(0).standard_normal(50), np.linspace(0, 1, 50), discrete_y=True), "non-integer"),
        (lambda: ibkit.entropy(np.zeros((0, 3))), "0 samples"),
        (lambda: ibkit.mutual_information(np.zeros((0, 1)), np.zeros((0, 1))), "0 samples"),
        (lambda: ibkit.entropy(np.ones((100, 2))), "constant"),
        (lambda: ibkit.entropy(np.c_[np.arange(100.0), np.zeros(100)]), "zero variance"),
        (lambda: ibkit.entropy(np.random.default_rng(0).standard_normal(100), method="ksg"), "does not estimate entropy"),
        (lambda: ibkit.mutual_information(np.ones(3), np.ones(3), method="nope"), "valid methods are kl, wkl, ksg"),
        (lambda: ibkit.entropy(np.random.default_rng(0).standard_normal(100), k=0), "k must be an integer >= 1"),
        (lambda: ibkit.mutual_information(np.ones(3), np.ones(3), preprocess="rank"), "unknown preprocess"),
        (lambda: ibkit.mutual_information(np.ones(3), np.ones(3), method="ksg", correction="gaussian"),
         "'ksg' does not take correction; its parameters are k, preprocess, seed, device"),
        (lambda: ibkit.mutual_information(np.ones(3), np.ones(3), method="kde-ml", k=5), "does not take k"),
        (lambda: ibkit.mutual_information(np.ones(3), np.ones(3), method=KSG(), k=5), "estimator object"),
    ],
)
def test_bad_input_raises_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_small_class_is_reported():
    x = np.random.default_rng(0).standard_normal(100)
    labels = np.r_[np.zeros(97, int), np.ones(3, int)]
    with pytest.raises(ValueError, match="class 1"):
        ibkit.mutual_information(x, labels, discrete_y=True)


def test_chunked_brute_force_matches_tree(monkeypatch):
    import ibkit.neighbors as nb

    x = torch.from_numpy(np.random.default_rng(1).standard_normal((3_000, 3)))
    tree = nb.knn_distances(x, 5)
    monkeypatch.setattr(nb, "KD_TREE_MAX_DIM", 0)
    monkeypatch.setattr(nb, "CHUNK_BYTES", 8 * 3_000 * 7)  # 7 rows per chunk
    assert torch.allclose(nb.knn_distances(x, 5), tree, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["kl", "wkl", "ksg"])
def test_gpu_matches_cpu(method):
    x, y = correlated_pair(20_000, 2.0, 2, seed=3)
    cpu = ibkit.mutual_information(x, y, method=method)
    gpu = ibkit.mutual_information(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda(), method=method)
    assert gpu.value == pytest.approx(cpu.value, abs=1e-6)


@pytest.mark.parametrize("method", ["wkl", "ksg"])
def test_information_plane_estimator_matches_separate_calls(method):
    from ibkit.estimators.plane import InformationPlaneEstimator

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 2_000)
    x = rng.standard_normal((2_000, 3)) + labels[:, None]
    plane = InformationPlaneEstimator(x, labels, make_estimator(method))
    # Each call of the plane gives exactly what separate calls give.
    for scale in (0.5, 2.0):
        layer = torch.from_numpy(x[:, :2] + scale * rng.standard_normal((2_000, 2)))
        assert plane.i_xl(layer).value == pytest.approx(ibkit.mutual_information(x, layer, method=method).value, abs=1e-12)
        assert plane.i_yl(layer).value == pytest.approx(
            ibkit.mutual_information(layer, labels, method=method, discrete_y=True).value, abs=1e-12
        )
    with pytest.raises(ValueError, match="same number of samples"):
        plane.i_xl(torch.zeros(5, 2))


def test_brute_force_neighbours_keep_tiny_distances_exact(monkeypatch):
    # Exact duplicates are separated by break_ties' jitter of 1e-8 standard deviations, and
    # cdist's |a|² + |b|² − 2ab form would round such distances to 0 (log 0 = −inf): the
    # brute-force path (GPUs, high dimension) must give what the KD-trees give.
    import ibkit.neighbors as neighbors
    from ibkit.estimators import make_estimator

    generator = torch.Generator().manual_seed(0)
    base = 10 + torch.randn(2_000, 1, generator=generator, dtype=torch.float64)
    x = torch.cat([base, base[:300]])
    y = x + torch.randn(x.shape, generator=generator, dtype=torch.float64)
    estimator = make_estimator("kl", k=5, preprocess="none", stderr_method="terms", correction=None, fallback=None)
    with pytest.warns(UserWarning, match="duplicated"):
        with_trees = estimator.estimate(x, y)
    monkeypatch.setattr(neighbors, "KD_TREE_MAX_DIM", 0)
    with pytest.warns(UserWarning, match="duplicated"):
        brute_force = estimator.estimate(x, y)
    assert math.isfinite(brute_force) and brute_force == pytest.approx(with_trees, abs=1e-9)
