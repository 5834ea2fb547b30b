"""Kozachenko–Leonenko entropy estimators: classic k-NN (``"kl"``) and weighted (``"wkl"``).

With ``ρ_{i,j}`` the distance from sample i to its j-th nearest neighbour and ``V_d`` the
volume of the unit d-ball, the j-th-neighbour estimate of ``−log p(x_i)`` is

    h_{i,j} = ψ(N) − ψ(j) + log V_d + d·log ρ_{i,j}        (nats),

and ``Ĥ_j = mean_i h_{i,j}``. ``"kl"`` uses one neighbour order (``j = k``). Its bias decays like
``(k/N)^{2/d}``, too slowly above about four dimensions, so ``"wkl"`` averages the orders
``1..k`` with weights in the manner of Berrett, Samworth & Yuan (Ann. Statist. 2019) that cancel
the leading bias terms:

    Σ_j w_j = 1,    Σ_j w_j·Γ(j + 2l/d)/Γ(j) = 0  for l = 1..L,

taking the minimum-norm solution. The paper cancels every term up to ``L = ⌊d/4⌋``; the weights
that takes grow without bound with ``d`` (‖w‖₁ ≈ 30 at d = 8, 10⁵ at d = 20, 10¹⁰ at d = 50,
where a weighted sum of ``log ρ`` loses every significant digit). Here ``L`` is the largest
number of terms, at most ``⌊d/4⌋``, whose weights keep ``‖w‖₁ ≤ WKL_MAX_WEIGHT``, so the
estimate is always a well-conditioned average; in high dimension it tends to plain KL.

``correction="gaussian"`` subtracts the exact bias the same estimator has on a standard Gaussian
sample of the same size and dimension (``ibkit.estimators.reference``), plus, where ``d² ≥ n/4``,
what whitening by the sample covariance adds to it (:func:`whitening_shift`). On whitened data that is
the whole bias for Gaussian data and Gaussian-copula data after normal scores (it makes the
continuous MI of any Gaussian copula unbiased, in any dimension), and it vanishes as N grows, so
the estimator stays consistent for any density. It applies to whitened terms only: entropies and
continuous–continuous MI with ``preprocess`` ``"whiten"`` or ``"normal-scores"``.

``k="auto"`` picks the neighbour order from the sample size and dimension (:func:`auto_k`) and,
for continuous–continuous MI with the Gaussian correction, lets the data ask for a finer one
(:func:`auto_orders`): with the correction, every order estimates a Gaussian copula's MI without
bias, so estimates at halved orders differ from it only by noise; a k-NN ball averages the
density over its radius, which pulls MI towards 0 wherever the dependence has structure finer
than that radius (narrow modes, thin curves). The estimate moves to a finer order only when that
order reads more MI by over three of its own standard errors
(:meth:`ibkit.estimators.entropy_estimator.EntropyEstimator.finest_resolved`).

Exact duplicates would give ``log 0 = −inf``; they are separated by a tiny jitter before
estimation (``ibkit.estimators.checks.break_ties``), with a warning.
"""

from __future__ import annotations

import copy
import math
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from scipy.special import digamma, gammaln

from ibkit.estimators.entropy_estimator import EntropyEstimator
from ibkit.estimators.neighbour_order import NeighbourOrder, auto_order
from ibkit.estimators.preprocessing import affine_normalise
from ibkit.estimators.reference import gaussian_entropy_bias, log_unit_ball_volume
from ibkit.neighbors import knn_distances
from ibkit.validation import check_k, check_positive_int

#: Largest ℓ1 norm of the weighted KL weights (the variance of the estimate grows with it).
WKL_MAX_WEIGHT = 20.0

CORRECTIONS = (None, "gaussian")

#: The whitening's share of the Gaussian bias (:func:`whitening_shift`) is measured from ``d²/n`` at
#: least this (below it, under 0.015 nats), on this many paired samples.
WHITENING_SHIFT_MIN = 0.25
WHITENING_DRAWS = 8

#: ``k="auto"`` for continuous MI tries the auto order halved up to this many times ...
FINER_RUNGS = 3
#: ... but never below this order: after normal scores, orders 1-2 read 1 + 1 and 2 + 2 Gaussians
#: 0.05-0.17 nats too high at N = 1,000 (12 seeds), order 3 within 0.01-0.05.
MIN_RUNG_ORDER = 3


def auto_k(n: int, d: int) -> int:
    """The neighbour order ``k="auto"`` uses for ``n`` samples in ``d`` dimensions.

    ``10·⌈d/2⌉`` neighbours (10 in 1–2 dimensions, 40 in 8, 80 from 15 on), never more than a
    tenth of the sample. Chosen on the known-MI battery (``ibkit bench battery``): with the
    Gaussian correction removing most of the bias, larger k mainly lowers the variance; k this
    size gave the best share of estimates within a factor 1.5 of the truth for weighted KL
    (0.93, against 0.88–0.91 for half or a quarter of it or a fixed 5 or 20).
    """
    return auto_order(min(10 * max(1, math.ceil(d / 2)), 80), n)


def auto_orders(n: int, d: int) -> tuple[int, ...]:
    """The neighbour orders ``k="auto"`` tries for continuous MI, coarse to fine.

    :func:`auto_k` first, then it halved ``1..FINER_RUNGS`` times (rounded, at least
    ``MIN_RUNG_ORDER`` or the auto order if smaller): ``FINER_RUNGS + 1`` orders, repeats kept so
    that the rungs of terms in different dimensions line up (rung ``j`` is every term's auto order
    halved ``j`` times).
    """
    first = auto_k(n, d)
    return tuple(max(min(MIN_RUNG_ORDER, first), round(first / 2**halvings)) for halvings in range(FINER_RUNGS + 1))


def log_densities(x: torch.Tensor, weights: np.ndarray) -> torch.Tensor:
    """Weighted Kozachenko–Leonenko leave-one-out ``log p̂(x_i)`` from one neighbour search.

    Args:
        x: ``(N, d)`` samples.
        weights: ``(k, L)`` weights over the neighbour orders ``1..k``, one column per estimate.

    Returns:
        ``(N, L)`` float64 on ``x``'s device.
    """
    n, d = x.shape
    used = int(np.flatnonzero(weights.any(axis=1)).max()) + 1
    distances = knn_distances(x, used).to(x.device)
    ranks = torch.arange(1, used + 1, dtype=torch.float64, device=x.device)
    log_density = torch.special.digamma(ranks) - digamma(n) - log_unit_ball_volume(d) - d * distances.log()
    return log_density @ torch.as_tensor(weights[:used], dtype=torch.float64, device=x.device)


@lru_cache(maxsize=128)
def whitening_shift(n: int, d: int, weights: tuple[tuple[float, ...], ...]) -> tuple[float, ...]:
    """How much whitening by the sample covariance moves k-NN entropy estimates of a Gaussian.

    The quadrature of :mod:`ibkit.estimators.reference` is the bias on samples of ``N(0, I_d)``;
    an estimate whitens its sample first and adds ``½·log det S``. On Gaussian samples the whitened
    sample is the same for every covariance up to a rotation, so what whitening adds to the bias is
    a function of ``n``, ``d`` and the weights alone. Measured here by Monte Carlo, as the mean over
    ``WHITENING_DRAWS`` seeded samples of (whitened estimate + ½·log det S − estimate on the sample
    itself), paired so that ±0.01 nats: 0.000 at d ≤ 6, under 0.015 wherever ``d² < n/4``, +0.07 at
    d = 25 and −0.47 at d = 50 for N = 1,000 (−0.08 at N = 5,000). Computed once per process and
    size; it makes the Gaussian correction whole in 25–50 dimensions at N = 1,000.

    Args:
        n, d: sample size and dimension.
        weights: one tuple of weights over neighbour orders ``1..k`` per estimate (the columns of
            :meth:`KozachenkoLeonenko.weight_columns`, all of length ``k``).

    Returns:
        One shift (nats) per weight tuple.
    """
    columns = np.array(weights).T
    shifts = []
    for draw in range(WHITENING_DRAWS):
        sample = torch.randn(n, d, generator=torch.Generator().manual_seed(draw), dtype=torch.float64)
        whitened, log_scale = affine_normalise(sample, "whiten")
        shifts.append((log_densities(sample, columns) - log_densities(whitened, columns)).mean(dim=0) + log_scale)
    return tuple(torch.stack(shifts).mean(dim=0).tolist())


def _min_norm_weights(k: int, d: int, terms: int) -> np.ndarray:
    orders = np.arange(1, k + 1, dtype=np.float64)
    rows = [np.ones_like(orders)]
    for power in range(1, terms + 1):
        row = np.exp(gammaln(orders + 2.0 * power / d) - gammaln(orders))
        rows.append(row / np.linalg.norm(row))
    targets = np.zeros(len(rows))
    targets[0] = 1.0
    return np.linalg.lstsq(np.stack(rows), targets, rcond=None)[0]


@lru_cache(maxsize=256)
def _wkl_weights_cached(k: int, d: int) -> tuple[float, ...]:
    if d <= 3 or k == 1:
        return (0.0,) * (k - 1) + (1.0,)
    best = None
    for terms in range(1, min(d // 4, k - 1) + 1):
        weights = _min_norm_weights(k, d, terms)
        if np.abs(weights).sum() > WKL_MAX_WEIGHT:
            break
        best = weights
    if best is None:
        return (0.0,) * (k - 1) + (1.0,)
    return tuple(best)


def wkl_weights(k: int, d: int) -> np.ndarray:
    """Bounded Berrett–Samworth–Yuan weights over neighbour orders ``1..k`` for dimension ``d``.

    Returns:
        ``(k,)`` float64 weights summing to 1 with ``‖w‖₁ ≤ WKL_MAX_WEIGHT`` (see the module
        docstring); the k-th-neighbour weight ``e_k`` where no bias term can be cancelled
        (``d ≤ 3``, ``k = 1``, or even one term would need larger weights).
    """
    check_positive_int(k, "k")
    if d < 1:
        raise ValueError(f"dimension must be at least 1, got {d}")
    return np.asarray(_wkl_weights_cached(k, d))


class KozachenkoLeonenko(NeighbourOrder, EntropyEstimator):
    """Classic Kozachenko–Leonenko entropy with the k-th nearest neighbour (``"kl"``).

    Args:
        k: neighbour order, or ``"auto"`` (:func:`auto_k` for each entropy term's size and
            dimension).
        preprocess: ``"none"``, ``"standardize"``, ``"whiten"``, ``"normal-scores"`` or
            ``"smooth-scores"`` (the last two for MI only).
        correction: ``"gaussian"`` subtracts the estimator's exact bias on a Gaussian of the same
            size and dimension (whitened terms only), or ``None``.
        fallback: ``"ksg"`` estimates the MI of degenerate variables by KSG (with a warning), or
            ``None``.
        seed: seeds tie-breaking of the normal scores, the degeneracy check's subsample and the
            standard error's blocks.
        device: where to compute; default is the input's device.
        stderr_method: ``"blocks"`` (measured on disjoint blocks, ``ibkit.estimators.resampling``)
            or ``"terms"``.
    """

    name = "kl"

    def __init__(self, k: int | str = "auto", preprocess: str = "normal-scores",
                 correction: Literal["gaussian"] | None = "gaussian", fallback: str | None = "ksg",
                 seed: int = 0, device: torch.device | str | None = None, stderr_method: str = "blocks"):
        super().__init__(preprocess=preprocess, fallback=fallback, seed=seed, device=device,
                         stderr_method=stderr_method)
        self.k = check_k(k)
        if correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
        self.correction = correction

    def order(self, n: int, d: int) -> int:
        """The neighbour order used for ``n`` samples in ``d`` dimensions (entropies, continuous–discrete MI)."""
        if self.k != "auto":
            return self.k
        return auto_k(self._auto_size or n, d)

    def orders(self, n: int, d: int) -> tuple[int, ...]:
        """The neighbour orders of the rungs of continuous MI, coarse to fine: :func:`auto_orders`
        for ``k="auto"`` with the Gaussian correction (which makes every rung unbiased on Gaussian
        copulas, what the choice between them rests on), else the one order ``order(n, d)``."""
        if self.k != "auto" or not self.corrected:
            return (self.order(n, d),)
        return auto_orders(self._auto_size or n, d)

    @property
    def corrected(self) -> bool:
        """Whether the Gaussian correction applies: ``correction="gaussian"`` on whitened terms."""
        return self.correction == "gaussian" and self.term_normalisation == "whiten"

    #: The sample size the ``k="auto"`` rule is evaluated at instead of each term's own (``with_size``).
    _auto_size: int | None = None

    def with_size(self, n: int, d: int | None = None) -> KozachenkoLeonenko:
        if self.k != "auto":
            return self
        fixed = copy.copy(self)
        if d is None:
            fixed._auto_size = n
        else:
            fixed.k = self.order(n, d)
        return fixed

    def neighbour_weights(self, k: int, d: int) -> np.ndarray:
        """``(k,)`` weights over neighbour orders ``1..k``: here all mass on order ``k``."""
        weights = np.zeros(k)
        weights[-1] = 1.0
        return weights

    def reference_bias(self, n: int, d: int) -> float:
        return float(self._reference_biases(n, d, (self.order(n, d),))[0])

    def reference_biases(self, n: int, d: int) -> np.ndarray:
        return self._reference_biases(n, d, self.orders(n, d))

    def _reference_biases(self, n: int, d: int, orders: tuple[int, ...]) -> np.ndarray:
        """``(len(orders),)`` biases on whitened Gaussian samples: the quadrature's, plus the
        whitening's own share where it is measurable (:func:`whitening_shift`)."""
        if not self.corrected:
            return np.zeros(len(orders))
        columns = self.weight_columns(orders, d)
        biases = np.array([gaussian_entropy_bias(n, d, column) for column in columns.T])
        if d * d >= WHITENING_SHIFT_MIN * n:
            biases += np.asarray(whitening_shift(n, d, tuple(map(tuple, columns.T))))
        return biases

    def weight_columns(self, orders: tuple[int, ...], d: int) -> np.ndarray:
        """``(max(orders), len(orders))`` weights over neighbour orders ``1..max``, one column per order."""
        weights = np.zeros((max(orders), len(orders)))
        for column, k in enumerate(orders):
            weights[:k, column] = self.neighbour_weights(k, d)
        return weights

    def pointwise_log_density(self, x: torch.Tensor) -> torch.Tensor:
        return log_densities(x, self.weight_columns((self.order(*x.shape),), x.shape[1]))[:, 0]

    def rung_log_densities(self, x: torch.Tensor) -> torch.Tensor:
        return log_densities(x, self.weight_columns(self.orders(*x.shape), x.shape[1]))


class WeightedKozachenkoLeonenko(KozachenkoLeonenko):
    """Weighted Kozachenko–Leonenko entropy (``"wkl"``) with bounded weights.

    Args: as :class:`KozachenkoLeonenko`; ``k`` is the largest neighbour order combined.
    """

    name = "wkl"

    def neighbour_weights(self, k: int, d: int) -> np.ndarray:
        return wkl_weights(k, d)
