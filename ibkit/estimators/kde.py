"""Gaussian kernel density entropy with a data-driven bandwidth (``"kde-ml"``, ``"kde-lse"``).

The entropy is the resubstitution estimate with leave-one-out densities,

    p̂_{−i}(x_i) = 1/(N−1) · Σ_{j≠i} φ_h(x_i − x_j),   Ĥ = −⟨log p̂_{−i}(x_i)⟩,

with an isotropic Gaussian kernel ``φ_h`` (on whitened data, so one bandwidth fits every
direction). The bandwidth ``h`` is chosen by

* ``"ml"``: maximum leave-one-out likelihood, ``max_h ⟨log p̂_{−i}(x_i)⟩``;
* ``"lse"``: least-squares cross-validation, ``min_h ∫p̂² − (2/N)·Σ_i p̂_{−i}(x_i)``, where
  ``∫p̂² = N^{-2} Σ_{i,j} φ_{√2·h}(x_i − x_j)``.

Both objectives are evaluated exactly in chunks (``chunk × N`` distances at a time) and
optimised over ``log h`` by a 1-D search: a log-spaced grid around Silverman's rule of thumb,
widened while the best point sits on its edge, then a bounded Brent search between the best
grid point's neighbours (about 15 evaluations). Above ``search_samples`` points the search runs
on a seeded subsample of that size and the bandwidth is carried to N by the optimal-bandwidth
rate ``h ∝ N^{-1/(d+4)}``; the final leave-one-out densities always use all N samples. Cost:
``O(search_samples²·d)`` per evaluation plus one ``O(N²·d)`` pass.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from ibkit.estimators.entropy_estimator import EntropyEstimator
from ibkit.neighbors import row_blocks

BANDWIDTH_RULES = ("ml", "lse")

#: Grid points of the initial bandwidth scan and how many times it may be widened.
GRID_POINTS = 7
MAX_WIDENINGS = 6
#: Tolerance of the final search in log h: 2 % in h, where the objective is flat to O(δ²).
LOG_BANDWIDTH_TOLERANCE = 0.02


def silverman_bandwidth(n: int, d: int) -> float:
    """Silverman's rule-of-thumb bandwidth for unit-variance data: ``(4/(d+2))^{1/(d+4)} N^{-1/(d+4)}``."""
    return (4.0 / (d + 2.0)) ** (1.0 / (d + 4.0)) * n ** (-1.0 / (d + 4.0))


#: Squared distances are kept in memory between bandwidth trials when they fit in this many bytes.
DISTANCE_CACHE_BYTES = 512 * 2**20


class SquaredDistanceBlocks:
    """Row blocks of the ``N × N`` squared distances of ``x`` with ``+inf`` on the diagonal.

    Distances are computed in float64 and kept in float32, where the kernel sums run (twice as
    fast; the per-row sums of at most N terms in (0, 1] carry a relative error of order
    ``√N·6e-8``, far below any estimate's standard error); means over samples are float64.
    Blocks are recomputed on every pass (``chunk × N`` memory) unless the whole matrix fits in
    ``DISTANCE_CACHE_BYTES``, in which case the first pass keeps them for the following ones.
    """

    def __init__(self, x: torch.Tensor):
        self.x = x
        self._cache: list[tuple[int, int, torch.Tensor]] | None = None
        self._cacheable = 4 * x.shape[0] ** 2 <= DISTANCE_CACHE_BYTES

    def __iter__(self):
        if self._cache is not None:
            yield from self._cache
            return
        blocks = []
        n = self.x.shape[0]
        for start, stop in row_blocks(n, n):
            squared = torch.cdist(self.x[start:stop], self.x).square_().to(torch.float32)
            rows = torch.arange(stop - start, device=self.x.device)
            squared[rows, rows + start] = math.inf
            if self._cacheable:
                blocks.append((start, stop, squared))
            yield start, stop, squared
        if self._cacheable:
            self._cache = blocks


def log_kernel_sums(distances: SquaredDistanceBlocks, scales: list[float]) -> torch.Tensor:
    """``log Σ_{j≠i} exp(−‖x_i − x_j‖² / s)`` for every sample and scale, ``(len(scales), N)``."""
    n = distances.x.shape[0]
    out = torch.empty(len(scales), n, dtype=torch.float64, device=distances.x.device)
    for start, stop, squared in distances:
        for index, scale in enumerate(scales):
            out[index, start:stop] = torch.logsumexp(squared * (-1.0 / scale), dim=1)
    return out


def loo_log_density(x: torch.Tensor, bandwidth: float, distances: SquaredDistanceBlocks | None = None) -> torch.Tensor:
    """``(N,)`` leave-one-out Gaussian-KDE log densities ``log p̂_{−i}(x_i)`` (nats)."""
    n, d = x.shape
    log_sum = log_kernel_sums(distances or SquaredDistanceBlocks(x), [2.0 * bandwidth**2])[0]
    return log_sum - math.log(n - 1) - 0.5 * d * math.log(2.0 * math.pi * bandwidth**2)


def ml_objective(distances: SquaredDistanceBlocks, bandwidths: list[float]) -> np.ndarray:
    """Negative mean leave-one-out log-likelihood for each bandwidth (one pass over the data)."""
    n, d = distances.x.shape
    h2 = np.square(bandwidths)
    log_sums = log_kernel_sums(distances, list(2.0 * h2)).mean(dim=1).cpu().numpy()
    return -(log_sums - math.log(n - 1) - 0.5 * d * np.log(2.0 * math.pi * h2))


def lse_objective(distances: SquaredDistanceBlocks, bandwidths: list[float]) -> np.ndarray:
    """Least-squares cross-validation score ``∫p̂² − (2/N)·Σ_i p̂_{−i}(x_i)`` per bandwidth."""
    n, d = distances.x.shape
    h2 = np.square(bandwidths)
    sums = log_kernel_sums(distances, list(4.0 * h2) + list(2.0 * h2)).exp().sum(dim=1).cpu().numpy()
    cross, loo = sums[: len(h2)] + n, sums[len(h2) :]  # + n: the i = j terms of ∫p̂², each exp(0)
    integral_sq = cross / n**2 * (4.0 * math.pi * h2) ** (-0.5 * d)
    loo_mean = loo / (n * (n - 1)) * (2.0 * math.pi * h2) ** (-0.5 * d)
    return integral_sq - 2.0 * loo_mean


def select_bandwidth(x: torch.Tensor, rule: str, search_samples: int | None = None) -> float:
    """Bandwidth for whitened ``(N, d)`` samples by the ``"ml"`` or ``"lse"`` criterion.

    With ``search_samples`` below N the search uses a seeded subsample of that size and the
    result is scaled by ``(search_samples / N)^{1/(d+4)}``.
    """
    n, d = x.shape
    if search_samples is not None and search_samples < n:
        generator = torch.Generator().manual_seed(0)
        subset = torch.randperm(n, generator=generator)[:search_samples].to(x.device)
        return select_bandwidth(x[subset], rule) * (search_samples / n) ** (1.0 / (d + 4.0))
    objective = ml_objective if rule == "ml" else lse_objective
    distances = SquaredDistanceBlocks(x)

    def score(log_bandwidths) -> np.ndarray:
        return objective(distances, list(np.exp(np.atleast_1d(log_bandwidths))))

    centre = math.log(silverman_bandwidth(n, d))
    log_grid = np.linspace(centre - math.log(30.0), centre + math.log(3.0), GRID_POINTS)
    values = score(log_grid)
    step = log_grid[1] - log_grid[0]
    for _ in range(MAX_WIDENINGS):
        best = int(np.argmin(values))
        if 0 < best < len(log_grid) - 1:
            break
        direction = -1.0 if best == 0 else 1.0
        extra = log_grid[best] + direction * step * np.arange(1, GRID_POINTS // 2 + 1)
        log_grid = np.concatenate([log_grid, extra])
        values = np.concatenate([values, score(extra)])
        order = np.argsort(log_grid)
        log_grid, values = log_grid[order], values[order]
    best = int(np.argmin(values))
    low, high = log_grid[max(best - 1, 0)], log_grid[min(best + 1, len(log_grid) - 1)]
    result = minimize_scalar(lambda v: float(score(v)[0]), bounds=(low, high), method="bounded",
                             options={"xatol": LOG_BANDWIDTH_TOLERANCE})
    return math.exp(result.x if result.fun <= values[best] else log_grid[best])


class KernelDensityEntropy(EntropyEstimator):
    """Gaussian KDE entropy with a leave-one-out bandwidth (``"kde-ml"`` or ``"kde-lse"``).

    Args:
        bandwidth: ``"ml"`` (maximum leave-one-out likelihood), ``"lse"`` (least-squares
            cross-validation) or a fixed positive float (in the units of the normalised data).
        search_samples: largest sample the bandwidth search runs on (default 2,000; ``None``
            searches on all N samples, at ``O(N²)`` cost per trial bandwidth).
        preprocess: ``"none"``, ``"standardize"``, ``"whiten"``, ``"normal-scores"`` or ``"smooth-scores"`` (the last two MI only;
            every entropy term is then whitened).
        fallback: ``"ksg"`` estimates the MI of degenerate variables by KSG (with a warning), or
            ``None``.
        seed: seeds tie-breaking of the normal scores and the degeneracy check's subsample.
        device: where to compute; default is the input's device.
        stderr_method: ``"blocks"`` (measured on disjoint blocks, ``ibkit.estimators.resampling``)
            or ``"terms"``.

    The bandwidth chosen for a sample is :func:`select_bandwidth` of its normalised samples.
    """

    def __init__(
        self,
        bandwidth: str | float = "ml",
        search_samples: int | None = 2_000,
        preprocess: str = "normal-scores",
        fallback: str | None = "ksg",
        seed: int = 0,
        device: torch.device | str | None = None,
        stderr_method: str = "blocks",
    ):
        super().__init__(preprocess=preprocess, fallback=fallback, seed=seed, device=device,
                         stderr_method=stderr_method)
        if search_samples is not None and (not isinstance(search_samples, int) or search_samples < 2):
            raise ValueError(f"search_samples must be an integer >= 2 or None, got {search_samples!r}")
        self.search_samples = search_samples
        if isinstance(bandwidth, str):
            if bandwidth not in BANDWIDTH_RULES:
                raise ValueError(f"bandwidth rule must be one of {BANDWIDTH_RULES} or a float, got {bandwidth!r}")
        elif not bandwidth > 0:
            raise ValueError(f"bandwidth must be positive, got {bandwidth}")
        self.bandwidth = bandwidth
        self.name = f"kde-{bandwidth}" if isinstance(bandwidth, str) else "kde"

    def pointwise_log_density(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.bandwidth, str):
            h = select_bandwidth(x, self.bandwidth, self.search_samples)
        else:
            h = float(self.bandwidth)
        return loo_log_density(x, h)
