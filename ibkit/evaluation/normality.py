"""Distribution-matching tests for embeddings: Gaussianity and uniformity, averaged over subsamples.

A single test on all N embeddings rejects any real embedding once N is large, so, as in the
noise-injected Deep InfoMax evaluation, each test runs on many random subsamples (default 1024
subsamples of 64 points, drawn without replacement) and the **mean p-value** is reported:
about 0.5 for samples from the target law (p-values are uniform under the null), near 0 for
clearly different ones. Higher means closer to the prior.

* :func:`henze_zirkler`: the Henze–Zirkler (1990) multivariate normality test with the
  log-normal approximation of its null distribution, implemented here (vectorised over
  subsamples).
* :func:`normality_pvalues`: Henze–Zirkler, and Shapiro–Wilk and D'Agostino–Pearson (scipy) on
  a random 1-D projection per subsample (direction uniform on the sphere).
* :func:`uniformity_pvalues`: per-dimension Kolmogorov–Smirnov against ``U[0, 1]`` (scipy),
  combined across dimensions (Fisher by default; the dimensions need not be independent, so
  read the combined value as a score rather than an exact p-value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats

from ibkit.validation import as_samples, check_positive_int

NORMALITY_TESTS = ("henze_zirkler", "shapiro_wilk", "dagostino_pearson")


@dataclass(frozen=True)
class HenzeZirklerResult:
    """The Henze–Zirkler statistic and its p-value (arrays for batched calls)."""

    statistic: Any
    p_value: Any


def _as_numpy(x: Any, name: str = "x") -> np.ndarray:
    return as_samples(x, name, device="cpu").numpy()


def henze_zirkler_beta(n: int, d: int) -> float:
    """The Henze–Zirkler smoothing parameter ``β = ((2d+1)·n/4)^{1/(d+4)} / √2`` (optimal-kernel choice)."""
    return ((2 * d + 1) * n / 4.0) ** (1.0 / (d + 4)) / math.sqrt(2.0)


def henze_zirkler_null_moments(n: int, d: int) -> tuple[float, float]:
    """Mean and variance of the Henze–Zirkler statistic under normality (Henze & Zirkler 1990).

    With ``a = 1 + 2β²`` and ``w = (1 + β²)(1 + 3β²)``:

    * ``μ = 1 − a^{−d/2}·(1 + dβ²/a + d(d+2)β⁴/(2a²))``
    * ``σ² = 2(1 + 4β²)^{−d/2} + 2a^{−d}·(1 + 2dβ⁴/a² + 3d(d+2)β⁸/(4a⁴))
      − 4w^{−d/2}·(1 + 3dβ⁴/(2w) + d(d+2)β⁸/(2w²))``
    """
    b2 = henze_zirkler_beta(n, d) ** 2
    a = 1 + 2 * b2
    w = (1 + b2) * (1 + 3 * b2)
    mean = 1 - a ** (-d / 2) * (1 + d * b2 / a + d * (d + 2) * b2**2 / (2 * a**2))
    variance = (2 * (1 + 4 * b2) ** (-d / 2)
                + 2 * a ** (-d) * (1 + 2 * d * b2**2 / a**2 + 3 * d * (d + 2) * b2**4 / (4 * a**4))
                - 4 * w ** (-d / 2) * (1 + 3 * d * b2**2 / (2 * w) + d * (d + 2) * b2**4 / (2 * w**2)))
    return mean, variance


def henze_zirkler_pvalue(statistic: Any, n: int, d: int) -> np.ndarray:
    """Upper-tail p-value of the statistic under the log-normal approximation of its null law.

    The log-normal has the null mean ``μ`` and variance ``σ²`` of
    :func:`henze_zirkler_null_moments`: ``log T ~ N(m, s²)`` with ``s² = log(1 + σ²/μ²)``,
    ``m = log μ − s²/2``.
    """
    mean, variance = henze_zirkler_null_moments(n, d)
    s2 = math.log1p(variance / mean**2)
    m = math.log(mean) - s2 / 2
    return stats.lognorm.sf(np.asarray(statistic, dtype=np.float64), math.sqrt(s2), scale=math.exp(m))


def _henze_zirkler_statistic(x: np.ndarray) -> np.ndarray:
    """Statistics ``(M,)`` for a batch of samples ``x (M, n, d)`` (float64)."""
    m, n, d = x.shape
    centred = x - x.mean(axis=1, keepdims=True)
    covariance = centred.transpose(0, 2, 1) @ centred / n          # MLE covariance, divisor n
    eigenvalues = np.linalg.eigvalsh(covariance)
    singular = eigenvalues[:, 0] <= 1e-12 * np.maximum(eigenvalues[:, -1], np.finfo(float).tiny)
    statistic = np.full(m, 4.0 * n)                               # the statistic's value for singular S
    regular = ~singular
    if regular.any():
        chol = np.linalg.cholesky(covariance[regular])
        # Whitened points z_i = L^{-1} (x_i - mean): D_i = |z_i|², D_ij = |z_i - z_j|².
        z = centred[regular] @ np.linalg.inv(chol).transpose(0, 2, 1)
        sq = (z**2).sum(-1)                                         # (M', n)
        pair = np.maximum(sq[:, :, None] + sq[:, None, :] - 2 * z @ z.transpose(0, 2, 1), 0.0)
        b2 = henze_zirkler_beta(n, d) ** 2
        statistic[regular] = (np.exp(-b2 / 2 * pair).sum((1, 2)) / n
                              - 2 * (1 + b2) ** (-d / 2) * np.exp(-b2 / (2 * (1 + b2)) * sq).sum(1)
                              + n * (1 + 2 * b2) ** (-d / 2))
    return statistic


def henze_zirkler(x: Any) -> HenzeZirklerResult:
    """Henze–Zirkler test of multivariate normality.

    For ``n`` points ``x_i ∈ R^d`` with mean ``x̄`` and covariance ``S`` (divisor ``n``), Mahalanobis
    quantities ``D_ij = (x_i−x_j)ᵀS⁻¹(x_i−x_j)``, ``D_i = (x_i−x̄)ᵀS⁻¹(x_i−x̄)`` and ``β`` from
    :func:`henze_zirkler_beta`, the statistic is

        T = (1/n) Σ_ij exp(−β² D_ij / 2) − 2 (1+β²)^{−d/2} Σ_i exp(−β² D_i / (2(1+β²))) + n (1+2β²)^{−d/2}

    (``T = 4n`` when ``S`` is singular), and the p-value is its upper tail under the log-normal
    approximation (:func:`henze_zirkler_pvalue`). Affine invariant.

    Args:
        x: samples ``(n, d)`` (``(n,)`` is one feature) or a batch ``(M, n, d)`` of samples of
            equal size; numpy array or torch tensor.

    Returns:
        :class:`HenzeZirklerResult` with float statistic and p-value, or ``(M,)`` arrays for a batch.

    Raises:
        ValueError: NaN/inf, or ``n <= d`` (the covariance would be singular by construction).
    """
    batched = getattr(x, "ndim", None) == 3
    if batched:
        array = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
        if not np.isfinite(array).all():
            raise ValueError("x contains NaN or inf values")
    else:
        array = _as_numpy(x)[None]
    _, n, d = array.shape
    if n <= d:
        raise ValueError(f"the Henze–Zirkler test needs more samples than dimensions, got n={n}, d={d}")
    statistic = _henze_zirkler_statistic(array)
    p_value = henze_zirkler_pvalue(statistic, n, d)
    if batched:
        return HenzeZirklerResult(statistic, p_value)
    return HenzeZirklerResult(float(statistic[0]), float(p_value[0]))


def random_subsamples(n: int, size: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` random subsets of ``size`` distinct indices of ``range(n)``: an int array ``(count, size)``."""
    check_positive_int(size, "subsample_size")
    check_positive_int(count, "n_subsamples")
    if size > n:
        raise ValueError(f"subsample_size={size} exceeds the number of samples {n}")
    keys = np.random.default_rng(seed).random((count, n))
    if size == n:
        return np.argsort(keys, axis=1)
    return np.argpartition(keys, size, axis=1)[:, :size]


def random_directions(count: int, d: int, seed: int = 0) -> np.ndarray:
    """``count`` unit vectors uniform on the sphere in ``R^d``: ``(count, d)``."""
    directions = np.random.default_rng(seed).standard_normal((count, d))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def normality_pvalues(x: Any, n_subsamples: int = 1024, subsample_size: int = 64, seed: int = 0,
                      tests: tuple[str, ...] = NORMALITY_TESTS) -> dict[str, float]:
    """Mean p-values of normality tests over random subsamples of an embedding.

    Args:
        x: samples ``(N, d)`` (any mean and covariance: all three tests are affine invariant).
        n_subsamples: number of random subsamples ``M``.
        subsample_size: points per subsample (without replacement), ``>= 20`` (D'Agostino–Pearson
            needs 20) and ``> d``.
        seed: seeds the subsamples and the projection directions.
        tests: any of ``"henze_zirkler"`` (multivariate), ``"shapiro_wilk"`` and
            ``"dagostino_pearson"`` (on one random 1-D projection per subsample).

    Returns:
        ``{test name: mean p-value}``; about 0.5 for Gaussian data, near 0 for clearly non-Gaussian.
    """
    data = _as_numpy(x)
    unknown = [t for t in tests if t not in NORMALITY_TESTS]
    if unknown or not tests:
        raise ValueError(f"unknown normality test(s) {unknown or tests}; valid tests are {', '.join(NORMALITY_TESTS)}")
    check_positive_int(subsample_size, "subsample_size", minimum=20)
    n, d = data.shape
    if subsample_size <= d:
        raise ValueError(f"subsample_size must exceed the dimension d={d}, got {subsample_size}")
    subsets = data[random_subsamples(n, subsample_size, n_subsamples, seed)]        # (M, size, d)
    projected = np.einsum("msd,md->ms", subsets, random_directions(n_subsamples, d, seed + 1))
    results: dict[str, float] = {}
    for test in tests:
        if test == "henze_zirkler":
            p = henze_zirkler(subsets).p_value
        elif test == "shapiro_wilk":
            p = stats.shapiro(projected, axis=1).pvalue
        else:
            p = stats.normaltest(projected, axis=1).pvalue
        results[test] = float(np.mean(p))
    return results


def uniformity_pvalues(x: Any, n_subsamples: int = 1024, subsample_size: int = 64, seed: int = 0,
                       combine: str = "fisher") -> dict[str, float]:
    """Mean p-value of per-dimension Kolmogorov–Smirnov tests against ``U[0, 1]``, combined across dimensions.

    Args:
        x: samples ``(N, d)``; the target is the uniform law on ``[0, 1]^d``.
        n_subsamples, subsample_size, seed: the random subsamples, as in :func:`normality_pvalues`.
        combine: how the ``d`` per-dimension p-values of a subsample are combined
            (``scipy.stats.combine_pvalues`` method: ``"fisher"``, ``"stouffer"``, ``"pearson"``,
            ``"tippett"``, ``"mudholkar_george"``).

    Returns:
        ``{"kolmogorov_smirnov": mean combined p-value}``; about 0.5 for uniform data.
    """
    data = _as_numpy(x)
    methods = ("fisher", "stouffer", "pearson", "tippett", "mudholkar_george")
    if combine not in methods:
        raise ValueError(f"unknown combination method {combine!r}; valid methods are {', '.join(methods)}")
    n, _ = data.shape
    subsets = data[random_subsamples(n, subsample_size, n_subsamples, seed)]        # (M, size, d)
    per_dim = stats.kstest(subsets, "uniform", axis=1).pvalue                        # (M, d)
    combined = stats.combine_pvalues(per_dim, method=combine, axis=1).pvalue
    return {"kolmogorov_smirnov": float(np.mean(combined))}
