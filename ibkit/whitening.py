"""Whitening before entropy estimation, and the rule for zero-variance directions.

Differential entropy shifts by ``log|det A|`` under ``x -> A x``, so an estimator may work on
whitened data ``Σ^{-1/2}(x − μ)`` (unit covariance, where kNN and isotropic-kernel estimators
are most accurate) and add back ``½·log det Σ``.

Zero-variance rule: if the sample covariance has an eigenvalue below ``rtol`` times the largest
one, the samples lie (numerically) on a lower-dimensional subspace, where the differential
entropy is −∞ and mutual information with continuous data is undefined. That is a
``ValueError`` naming how many directions are degenerate — never a silent −inf — whether or not
whitening is requested. Drop constant features or compress (e.g. PCA) first.
"""

from __future__ import annotations

import torch

#: Relative eigenvalue threshold below which a direction counts as having zero variance.
ZERO_VARIANCE_RTOL = 1e-12


def covariance_spectrum(x: torch.Tensor, name: str = "x") -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of the sample covariance of ``x`` with the zero-variance check.

    Args:
        x: ``(N, d)`` float64 samples, ``N >= 2``.
        name: argument name for error messages.

    Returns:
        ``(eigenvalues (d,), eigenvectors (d, d))``, all eigenvalues positive.

    Raises:
        ValueError: ``x`` is constant or has zero variance in some direction.
    """
    n, d = x.shape
    if n < 2:
        raise ValueError(f"{name} needs at least 2 samples to estimate a covariance, got {n}")
    centred = x - x.mean(dim=0)
    eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred / (n - 1))
    largest = float(eigenvalues[-1])
    if largest <= 0.0:
        raise ValueError(f"{name} is constant (all {n} samples are identical): zero variance")
    degenerate = int((eigenvalues <= ZERO_VARIANCE_RTOL * largest).sum())
    if degenerate:
        raise ValueError(
            f"{name} has zero variance in {degenerate} of {d} directions (constant or linearly "
            "dependent features), so its differential entropy is -inf; drop those features or "
            "compress the data (e.g. PCA) to fewer dimensions first"
        )
    return eigenvalues, eigenvectors


def whiten(x: torch.Tensor, name: str = "x") -> tuple[torch.Tensor, float]:
    """Map samples to zero mean and identity covariance with the symmetric ``Σ^{-1/2}``.

    Args:
        x: ``(N, d)`` float64 samples.
        name: argument name for error messages.

    Returns:
        ``(whitened (N, d), ½·log det Σ)``: add the second term (nats) to an entropy estimated
        on the whitened samples to get the entropy of ``x``.
    """
    eigenvalues, eigenvectors = covariance_spectrum(x, name)
    inverse_sqrt = (eigenvectors * eigenvalues.rsqrt()) @ eigenvectors.T
    return (x - x.mean(dim=0)) @ inverse_sqrt, 0.5 * float(eigenvalues.log().sum())
