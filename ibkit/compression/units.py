"""Per-unit transforms applied before a layer (or the input) is compressed, chosen to keep its MI.

Mutual information is unchanged by an injective map of each variable, but a compressor is not:
PCA rotates the units, and after a rotation no per-coordinate transform can undo a per-unit
nonlinearity (a saturated ``tanh``, a leaky ReLU's two slopes, a softmax's corners), so the
estimator downstream sees a warped, nearly degenerate cloud. The transforms here run first, on
each unit separately (or on the whole probability vector), and are injective, so the information
they see is kept:

``"normal-scores"``
    each unit replaced by its normal score ``Φ⁻¹(r / (N + 1))`` (``r`` its rank). Strictly
    increasing per unit, so any strictly monotone activation (tanh, sigmoid, leaky ReLU, ...) is
    undone up to the Gaussianising map of each unit's own marginal. Tied values (a ReLU's zeros,
    an image's black background) share the mean score of their tie, so the transform stays a
    function of the unit's value and never injects noise.
``"log-ratio"``
    for probability vectors (softmax outputs, rows ≥ 0 summing to 1) and log-probabilities
    (rows whose ``logsumexp`` is 0): the isometric log-ratio coordinates, ``W − 1`` orthonormal
    coordinates of the centred log-ratio ``log p − mean(log p)``. Softmax of logits ``v`` is
    exactly ``v`` minus its mean, so this undoes the softmax, and it is a bijection from the open
    simplex onto ``R^{W−1}``. A probability layer and its log-probability layer get identical
    coordinates, as their information is identical.
``"none"``
    the units as they are.
``"auto"``
    ``"log-ratio"`` for probability and log-probability layers, ``"normal-scores"`` otherwise.

All return tensors on the input's device, float64 for float64 input and float32 otherwise (PCA
and the estimators accumulate in float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ibkit.errors import DataError
from ibkit.validation import check_choice

UNIT_TRANSFORMS = ("auto", "normal-scores", "log-ratio", "none")
#: How far a row sum (or logsumexp) may be from 1 (from 0) for a probability (log-probability) layer.
SIMPLEX_TOLERANCE = 1e-4


def check_unit_transform(transform: str) -> str:
    """``transform`` if it is one of :data:`UNIT_TRANSFORMS`, else a ``ValueError`` listing them."""
    return check_choice(transform, "transform", UNIT_TRANSFORMS)


def is_probability(x: torch.Tensor) -> bool:
    """Whether every row of ``(N, W)`` values, ``W ≥ 2``, is a probability vector (up to rounding)."""
    if x.ndim != 2 or x.shape[1] < 2:
        return False
    return bool((x >= 0).all()) and bool(((x.sum(dim=1, dtype=torch.float64) - 1).abs() <= SIMPLEX_TOLERANCE).all())


def is_log_probability(x: torch.Tensor) -> bool:
    """Whether every row of ``(N, W)`` values, ``W ≥ 2``, is a vector of log-probabilities."""
    if x.ndim != 2 or x.shape[1] < 2:
        return False
    values = x.to(torch.float64)
    return bool((values <= SIMPLEX_TOLERANCE).all()) and bool(
        (torch.logsumexp(values, dim=1).abs() <= SIMPLEX_TOLERANCE).all())


def resolve_unit_transform(x: torch.Tensor, transform: str) -> str:
    """The concrete transform for ``(N, W)`` values: ``"auto"`` resolved by the values' kind."""
    if check_unit_transform(transform) != "auto":
        return transform
    return "log-ratio" if is_probability(x) or is_log_probability(x) else "normal-scores"


def transform_units(x: torch.Tensor, transform: str) -> torch.Tensor:
    """Apply a unit transform (see the module docstring) to ``(N, W)`` values.

    Returns:
        ``(N, W)`` (``(N, W − 1)`` for ``"log-ratio"``) on ``x``'s device, in ``x``'s floating
        dtype (float32 for non-float64 input).

    Raises:
        ValueError: ``"log-ratio"`` on values that are neither probabilities nor log-probabilities.
    """
    transform = resolve_unit_transform(x, transform)
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if transform == "normal-scores":
        return tied_normal_scores(x)
    if transform == "log-ratio":
        if is_log_probability(x):
            return isometric_log_ratio(x.to(torch.float64)).to(dtype)
        if not is_probability(x):
            raise DataError("transform 'log-ratio' needs probability vectors (rows ≥ 0 summing to 1) or "
                             "log-probabilities (rows with logsumexp 0)")
        # An underflowed probability is 0; its log is clamped at the smallest positive float's.
        tiny = torch.finfo(x.dtype).tiny if x.is_floating_point() else torch.finfo(torch.float32).tiny
        return isometric_log_ratio(x.to(torch.float64).clamp_min(tiny).log()).to(dtype)
    return x.to(dtype)


def isometric_log_ratio(log_p: torch.Tensor) -> torch.Tensor:
    """``(N, W)`` log-probabilities -> ``(N, W − 1)`` orthonormal coordinates of ``log p − mean(log p)``.

    The basis is the Helmert basis of the sum-zero subspace, so distances between rows are the
    Aitchison distances of the compositions.
    """
    width = log_p.shape[1]
    return (log_p - log_p.mean(dim=1, keepdim=True)) @ helmert_basis(width, log_p.device)


def helmert_basis(width: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(width, width − 1)`` orthonormal basis of ``{v : Σ v = 0}`` (columns of the Helmert matrix)."""
    basis = torch.zeros(width, width - 1, dtype=torch.float64, device=device)
    for column in range(width - 1):
        size = column + 1
        basis[:size, column] = 1.0 / math.sqrt(size * (size + 1))
        basis[size, column] = -size / math.sqrt(size * (size + 1))
    return basis


def tied_normal_scores(x: torch.Tensor) -> torch.Tensor:
    """Per-column normal scores of ``(N, W)`` values; tied values share the mean score of their tie.

    The sample of rank ``r`` gets ``Φ⁻¹(r / (N + 1))``. Deterministic, vectorised over columns
    (each sorted as a contiguous row of the transpose, which is faster than a strided sort);
    returned in float32 (for float32 or lower input) or float64, on ``x``'s device.
    """
    n, width = x.shape
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    sorted_values, order = torch.sort(x.T.contiguous(), dim=1)
    ranks = torch.arange(1, n + 1, dtype=torch.float64, device=x.device)
    scores = torch.special.ndtri(ranks / (n + 1)).to(dtype).expand(width, n).contiguous()
    starts = torch.ones(width, n, dtype=torch.bool, device=x.device)
    starts[:, 1:] = sorted_values[:, 1:] != sorted_values[:, :-1]
    tied = torch.nonzero(~starts.all(dim=1)).squeeze(1)
    if tied.numel():
        # Tie groups numbered along each tied row; every sorted position gets its group's mean score.
        group = torch.cumsum(starts[tied], dim=1) - 1
        block = scores[tied].to(torch.float64)
        totals = torch.zeros_like(block).scatter_add_(1, group, block)
        counts = torch.zeros_like(block).scatter_add_(1, group, torch.ones_like(block))
        scores[tied] = (totals.gather(1, group) / counts.gather(1, group)).to(dtype)
    return torch.empty_like(scores).scatter_(1, order, scores).T.contiguous()


def unit_codes(values: torch.Tensor, dims: int, transform: str = "auto",
               compressor: Callable[[int], Any] | None = None) -> torch.Tensor:
    """Codes of ``(N, ...)`` values: a unit transform, then compression only if it is needed.

    Args:
        values: ``(N, ...)`` samples, flattened to ``(N, W)`` units.
        dims: the code size.
        transform: a unit transform (module docstring); applied first, to each unit.
        compressor: ``n_components -> object with fit_transform`` (e.g. ``ibkit.compression.PCA``),
            or ``None`` for no compression.

    Returns:
        ``(N, W')`` codes: the transformed units themselves when ``W' ≤ dims`` (nothing is
        rotated or mixed), else ``compressor(dims)``'s ``(N, dims)`` codes of them.
    """
    units = transform_units(values.flatten(1), transform)
    if compressor is None or units.shape[1] <= dims:
        return units
    return torch.as_tensor(compressor(dims).fit_transform(units)).to(units.device)
