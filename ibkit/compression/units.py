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
from concurrent.futures import Executor
from typing import Any, NamedTuple

import numpy as np
import torch

from ibkit.errors import DataError
from ibkit.validation import check_choice

UNIT_TRANSFORMS = ("auto", "normal-scores", "log-ratio", "none")
#: How far a row sum (or logsumexp) may be from 1 (from 0) for a probability (log-probability) layer.
SIMPLEX_TOLERANCE = 1e-4
#: Bytes of work one chunk of a wide layer may take (float64 rows; sort keys, orders and tie
#: bookkeeping of a column chunk), so that no transform holds a float64 copy of the layer.
CHUNK_BYTES = 256 * 2**20
#: Bytes of work per value of a column chunk of :func:`tied_normal_scores`: its sorted value,
#: order, tie starts and ends, and score.
_WORK_BYTES_PER_VALUE = 40


def check_unit_transform(transform: str) -> str:
    """``transform`` if it is one of :data:`UNIT_TRANSFORMS`, else a ``ValueError`` listing them."""
    return check_choice(transform, "transform", UNIT_TRANSFORMS)


def is_probability(x: torch.Tensor) -> bool:
    """Whether every row of ``(N, W)`` values, ``W ≥ 2``, is a probability vector (up to rounding)."""
    if x.ndim != 2 or x.shape[1] < 2 or x.numel() == 0 or float(x.amin()) < 0:
        return False
    return all(bool(((rows.sum(dim=1) - 1).abs() <= SIMPLEX_TOLERANCE).all()) for rows in _float64_rows(x))


def is_log_probability(x: torch.Tensor) -> bool:
    """Whether every row of ``(N, W)`` values, ``W ≥ 2``, is a vector of log-probabilities."""
    if x.ndim != 2 or x.shape[1] < 2 or x.numel() == 0 or float(x.amax()) > SIMPLEX_TOLERANCE:
        return False
    return all(bool((torch.logsumexp(rows, dim=1).abs() <= SIMPLEX_TOLERANCE).all()) for rows in _float64_rows(x))


def _float64_rows(x: torch.Tensor):
    """The rows of ``(N, W)`` values as float64 blocks of at most ``CHUNK_BYTES`` (no float64 copy of
    a wide layer), the first row alone first, so that a layer that is no simplex is told at once."""
    yield x[:1].to(torch.float64)
    for rows in x[1:].split(max(1, CHUNK_BYTES // (8 * x.shape[1]))):
        yield rows.to(torch.float64)


def resolve_unit_transform(x: torch.Tensor, transform: str) -> str:
    """The concrete transform for ``(N, W)`` values: ``"auto"`` resolved by the values' kind."""
    if check_unit_transform(transform) != "auto":
        return transform
    return "log-ratio" if is_probability(x) or is_log_probability(x) else "normal-scores"


def transform_units(x: torch.Tensor, transform: str, pool: Executor | None = None) -> torch.Tensor:
    """Apply a unit transform (see the module docstring) to ``(N, W)`` values (normal scores in
    parallel on ``pool``'s threads, if given).

    Returns:
        ``(N, W)`` (``(N, W − 1)`` for ``"log-ratio"``) on ``x``'s device, in ``x``'s floating
        dtype (float32 for non-float64 input).

    Raises:
        ValueError: ``"log-ratio"`` on values that are neither probabilities nor log-probabilities.
    """
    transform = resolve_unit_transform(x, transform)
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if transform == "normal-scores":
        return tied_normal_scores(x, pool)
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


def column_chunks(n: int, width: int) -> list[tuple[int, int]]:
    """``[start, stop)`` column ranges of an ``(n, width)`` matrix whose transform work fits ``CHUNK_BYTES``."""
    size = max(1, CHUNK_BYTES // (_WORK_BYTES_PER_VALUE * max(n, 1)))
    return [(start, min(start + size, width)) for start in range(0, width, size)]


def tied_normal_scores(x: torch.Tensor, pool: Executor | None = None) -> torch.Tensor:
    """Per-column normal scores of ``(N, W)`` values; tied values share the mean score of their tie.

    The sample of rank ``r`` gets ``Φ⁻¹(r / (N + 1))``; a tie over ranks ``a+1..b`` (a ReLU unit's
    zeros, the border of zero-padded images) gets the mean of their scores, read off prefix sums
    of the score table once per tie. The price is one sort per column: on the CPU, numpy's
    vectorised sort of 64-bit keys that pack each float32 value's order-preserving bits with its
    row index (several times faster than an argsort); on an accelerator, torch's sort.
    Deterministic; computed in column chunks (``CHUNK_BYTES`` of work besides the result, never a
    float64 copy of the layer), in parallel on ``pool``'s threads if one is given.

    Returns:
        ``(N, W)`` scores on ``x``'s device, float32 (for float32 or lower input) or float64,
        stored unit by unit (the transpose of a contiguous ``(W, N)`` tensor; matrix products read
        it without a copy).
    """
    n, width = x.shape
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    scores = torch.special.ndtri(torch.arange(1, n + 1, dtype=torch.float64, device=x.device) / (n + 1))
    prefix = torch.cat([scores.new_zeros(1), scores.cumsum(0)])  # prefix[r] = Σ of the r smallest scores
    out = torch.empty(width, n, dtype=dtype, device=x.device)

    def transform(chunk: tuple[int, int]) -> None:
        start, stop = chunk
        block = x[:, start:stop].to(dtype)
        if x.device.type == "cpu":
            ranked = packed_sort(block) if dtype == torch.float32 else float64_sort(block)
            out[start:stop].scatter_(1, ranked.order, tie_means(ranked.ties, prefix.numpy(), out.numpy().dtype))
        else:
            out[start:stop] = _accelerator_scores(block.T.contiguous() + 0.0, prefix)

    list((pool.map if pool is not None else map)(transform, column_chunks(n, width)))
    return out.T


class Ranked(NamedTuple):
    """The columns of a ``(N, c)`` block sorted: ``order`` ``(c, N)`` int64 (row indices in ascending
    order of value) and ``ties`` ``(c, N)`` bool (``ties[j, i]``: sorted position ``i`` of column ``j``
    starts a new value)."""

    order: torch.Tensor
    ties: np.ndarray


def packed_sort(block: torch.Tensor) -> Ranked:
    """Sort the columns of a float32 ``(N, c)`` block by one 64-bit key per value: the value's bits
    as an order-preserving int32 (negative floats' magnitude bits flipped; −0.0 merged with 0.0)
    in the high half, its row index in the low half, so one vectorised integer sort gives both the
    order and the ties."""
    n, columns = block.shape
    bits = block.T.contiguous().numpy().view(np.int32)              # one unit per row (no copy if stored so)
    if float(block.amin()) >= 0:  # a ReLU layer: the bits already increase with the value, but for −0.0's
        order_bits = np.maximum(bits, 0)
    else:
        order_bits = bits ^ ((bits >> 31) & 0x7FFFFFFF)               # increasing in the float value
        order_bits -= order_bits >> 31                                # negatives up by one: −0.0 meets 0.0
    keys = np.empty((columns, n), dtype=np.int64)
    halves = keys.view(np.int32).reshape(columns, n, 2)              # little-endian: (row index, value key)
    halves[..., 0] = np.arange(n, dtype=np.int32)
    halves[..., 1] = order_bits
    keys.sort(axis=1)
    ties = np.empty((columns, n), dtype=bool)
    ties[:, 0] = True
    np.not_equal(halves[:, 1:, 1], halves[:, :-1, 1], out=ties[:, 1:])
    return Ranked(torch.from_numpy(halves[..., 0].astype(np.int64)), ties)


def float64_sort(block: torch.Tensor) -> Ranked:
    """:func:`packed_sort` for float64 ``(N, c)`` values (a stable argsort; narrow layers only)."""
    values = block.T.numpy() + 0.0                                   # + 0.0: −0.0 becomes 0.0
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    ties = np.ones(order.shape, dtype=bool)
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=ties[:, 1:])
    return Ranked(torch.from_numpy(order), ties)


def tie_means(ties: np.ndarray, prefix: np.ndarray, dtype: np.dtype) -> torch.Tensor:
    """``(c, N)`` scores (of ``dtype``) in sorted order: each run of equal values (``ties``, as in
    :class:`Ranked`) gets the mean score of its ranks, ``(prefix[b] − prefix[a]) / (b − a)``."""
    columns, n = ties.shape
    starts = np.flatnonzero(ties)                                   # every run's first position, flattened
    lengths = np.diff(starts, append=ties.size)                      # runs never cross units: each starts one
    first_rank = starts % n
    means = (prefix[first_rank + lengths] - prefix[first_rank]) / lengths
    return torch.from_numpy(np.repeat(means.astype(dtype), lengths).reshape(columns, n))


def _accelerator_scores(values: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
    """The tied normal scores of each row of ``values`` (``(c, N)``, on an accelerator), as :func:`_cpu_scores`."""
    rows, n = values.shape
    ordered, order = torch.sort(values, dim=1)
    first = torch.ones(rows, n + 1, dtype=torch.bool, device=values.device)
    first[:, 1:n] = ordered[:, 1:] != ordered[:, :-1]
    positions = torch.arange(n + 1, device=values.device)
    start = torch.where(first[:, :n], positions[:n], 0).cummax(dim=1).values
    end = torch.where(first[:, 1:], positions[1:], n).flip(1).cummin(dim=1).values.flip(1)
    means = ((prefix[end] - prefix[start]) / (end - start)).to(values.dtype)
    return torch.empty_like(values).scatter_(1, order, means)


def unit_codes(values: torch.Tensor, dims: int, transform: str = "auto",
               compressor: Callable[[int], Any] | None = None, pool: Executor | None = None) -> torch.Tensor:
    """Codes of ``(N, ...)`` values: a unit transform, then compression only if it is needed.

    Args:
        values: ``(N, ...)`` samples, flattened to ``(N, W)`` units.
        dims: the code size.
        transform: a unit transform (module docstring); applied first, to each unit.
        compressor: ``n_components -> object with fit_transform`` (e.g. ``ibkit.compression.PCA``),
            or ``None`` for no compression.
        pool: threads for the unit transform (:func:`tied_normal_scores`).

    Returns:
        ``(N, W')`` codes: the transformed units themselves when ``W' ≤ dims`` (nothing is
        rotated or mixed), else ``compressor(dims)``'s ``(N, dims)`` codes of them.
    """
    units = transform_units(values.flatten(1), transform, pool)
    if compressor is None or units.shape[1] <= dims:
        return units
    return torch.as_tensor(compressor(dims).fit_transform(units)).to(units.device)
