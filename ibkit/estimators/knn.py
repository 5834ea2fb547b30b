"""Kozachenko–Leonenko entropy estimators: classic k-NN (``"kl"``) and weighted (``"wkl"``).

With ``ρ_{i,j}`` the distance from sample i to its j-th nearest neighbour and ``V_d`` the
volume of the unit d-ball, the j-th-neighbour estimate of ``−log p(x_i)`` is

    h_{i,j} = ψ(N) − ψ(j) + log V_d + d·log ρ_{i,j}        (nats),

and ``Ĥ_j = mean_i h_{i,j}``. ``"kl"`` uses one neighbour order (``j = k``). Its bias decays like
``(k/N)^{2/d}``, too slowly above about four dimensions, so ``"wkl"`` averages the orders with the
weights of Berrett, Samworth & Yuan (Ann. Statist. 2019) that cancel the leading bias terms:

    Σ_j w_j = 1,    Σ_j w_j·Γ(j + 2l/d)/Γ(j) = 0  for l = 1..⌊d/4⌋,
    w_j = 0 unless j ∈ {⌊i·k/d⌋ : i = 1..d},

taking the minimum-norm solution (smallest variance inflation). Cases handled explicitly:
``d ≤ 3`` has no bias constraint, so the weights are uniform over the allowed orders (for d = 1
that is plain KL with the k-th neighbour); when the allowed orders are too few to satisfy the
``1 + ⌊d/4⌋`` constraints all orders ``1..k`` are used; and ``k < 1 + ⌊d/4⌋`` cannot cancel the
bias at all, which is a ``ValueError`` naming the smallest workable ``k``.

Exact duplicates would give ``log 0 = −inf``; they are separated by a tiny jitter before
estimation (``ibkit.estimators.base.break_ties``), with a warning.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy.special import digamma, gammaln

from ibkit.estimators.base import EntropyEstimator
from ibkit.neighbors import knn_distances
from ibkit.validation import check_positive_int


def log_unit_ball_volume(d: int) -> float:
    """``log V_d`` with ``V_d = π^{d/2} / Γ(d/2 + 1)``, the volume of the Euclidean unit ball."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


@lru_cache(maxsize=256)
def _wkl_weights_cached(k: int, d: int) -> tuple[float, ...]:
    n_constraints = 1 + d // 4
    if k < n_constraints:
        raise ValueError(
            f"wkl in {d} dimensions cancels {d // 4} bias term(s) and needs k >= {n_constraints}, "
            f"got k={k}"
        )
    support = sorted({(i * k) // d for i in range(1, d + 1)} - {0})
    if len(support) < n_constraints:
        support = list(range(1, k + 1))
    orders = np.asarray(support, dtype=np.float64)
    rows = [np.ones_like(orders)]
    for l in range(1, d // 4 + 1):
        row = np.exp(gammaln(orders + 2.0 * l / d) - gammaln(orders))
        rows.append(row / np.linalg.norm(row))
    targets = np.zeros(len(rows))
    targets[0] = 1.0
    solution = np.linalg.lstsq(np.stack(rows), targets, rcond=None)[0]
    weights = np.zeros(k)
    weights[np.asarray(support) - 1] = solution
    return tuple(weights)


def wkl_weights(k: int, d: int) -> np.ndarray:
    """Berrett–Samworth–Yuan weights over neighbour orders ``1..k`` for dimension ``d``.

    Returns:
        ``(k,)`` float64 weights summing to 1 (see the module docstring for the equations).
    """
    check_positive_int(k, "k")
    if d < 1:
        raise ValueError(f"dimension must be at least 1, got {d}")
    return np.asarray(_wkl_weights_cached(k, d))


class KozachenkoLeonenko(EntropyEstimator):
    """Classic Kozachenko–Leonenko entropy with the k-th nearest neighbour (``"kl"``).

    Args:
        k: neighbour order (default 5).
        whiten: estimate at unit covariance and correct by ``½·log det Σ``.
        device: where to compute; default is the input's device.
    """

    name = "kl"

    def __init__(self, k: int = 5, whiten: bool = True, device: torch.device | str | None = None):
        super().__init__(whiten=whiten, device=device)
        self.k = check_positive_int(k, "k")

    @property
    def min_samples(self) -> int:
        return self.k + 1

    @property
    def sample_requirement(self) -> str:
        return f"k={self.k} nearest neighbours need N > k"

    def neighbour_weights(self, d: int) -> np.ndarray:
        """``(k,)`` weights over neighbour orders ``1..k``: here all mass on order ``k``."""
        weights = np.zeros(self.k)
        weights[-1] = 1.0
        return weights

    def pointwise_log_density(self, x: torch.Tensor) -> torch.Tensor:
        n, d = x.shape
        weights = self.neighbour_weights(d)
        used = int(np.flatnonzero(weights).max()) + 1
        distances = knn_distances(x, used).to(x.device)
        orders = torch.arange(1, used + 1, dtype=torch.float64, device=x.device)
        log_density = (
            torch.special.digamma(orders) - digamma(n) - log_unit_ball_volume(d) - d * distances.log()
        )
        w = torch.as_tensor(weights[:used], dtype=torch.float64, device=x.device)
        return log_density @ w


class WeightedKozachenkoLeonenko(KozachenkoLeonenko):
    """Weighted Kozachenko–Leonenko entropy (``"wkl"``), usable above four dimensions.

    Args:
        k: largest neighbour order combined (default 5; at least ``1 + ⌊d/4⌋``).
        whiten: estimate at unit covariance and correct by ``½·log det Σ``.
        device: where to compute; default is the input's device.
    """

    name = "wkl"

    def neighbour_weights(self, d: int) -> np.ndarray:
        return wkl_weights(self.k, d)
