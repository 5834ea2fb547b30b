"""Detecting data that non-parametric estimators cannot handle, and the warnings that say so.

Nearest-neighbour and kernel estimators assume a density that is smooth at the scale of the
neighbour distances. Two kinds of sample break that assumption even when the covariance is fine:

* samples near a **lower-dimensional set** (a curve or surface in a higher dimension): the
  differential entropy is −∞ and entropy-based MI estimates are biased by whole nats;
* samples in **tight clusters** (a saturated softmax layer, a quantised feature): neighbour
  distances inside a cluster are orders of magnitude below the spread of the data.

:func:`degeneracy` looks for both on a subsample, at unit covariance: the Levina–Bickel maximum-
likelihood intrinsic dimension of the k-NN distances, and the median k-th-neighbour distance, each
compared with the same statistic on a standard Gaussian sample of the same size and dimension. It
costs one k-NN search on at most ``DIAGNOSTIC_SAMPLES`` points.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

import torch

from ibkit.estimators.preprocessing import affine_normalise
from ibkit.neighbors import knn_distances

#: Subsample size and neighbour order of the check.
DIAGNOSTIC_SAMPLES = 2_000
DIAGNOSTIC_K = 10
#: Flag an intrinsic dimension below this share of a Gaussian's, or neighbour distances below this
#: share of a Gaussian's.
DIMENSION_RATIO = 0.6
DISTANCE_RATIO = 0.1


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside the ibkit package."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


class EstimateWarning(UserWarning):
    """Base class of ibkit's warnings about a questionable estimate.

    Attributes:
        variable: the variable concerned (``"x"``, ``"y"``, a layer name), or ``None``.
        kind: a short key (``"low-dimensional"``, ``"clustered"``, ``"negative"``).
    """

    def __init__(self, message: str, variable: str | None = None, kind: str = ""):
        super().__init__(message)
        self.variable = variable
        self.kind = kind


#: The list an enclosing :func:`collect_warnings` gathers into, per thread and task (``None``: warn).
_COLLECTED: ContextVar[list[EstimateWarning] | None] = ContextVar("ibkit_collected_warnings", default=None)


def report(warning: EstimateWarning) -> None:
    """Issue an estimator's warning: gathered by an enclosing :func:`collect_warnings`, else
    ``warnings.warn`` pointed at the first frame outside ibkit."""
    collected = _COLLECTED.get()
    if collected is not None:
        collected.append(warning)
    else:
        warnings.warn(warning, stacklevel=caller_stacklevel())


@contextmanager
def collect_warnings() -> Iterator[list[EstimateWarning]]:
    """Gather the :class:`EstimateWarning` s that estimators :func:`report` inside the block.

    Unlike ``warnings.catch_warnings`` this changes no process-wide state: the list lives in a
    context variable, so another thread (a training loop, a background analysis) is unaffected.
    Other warnings pass through as usual.
    """
    collected: list[EstimateWarning] = []
    token = _COLLECTED.set(collected)
    try:
        yield collected
    finally:
        _COLLECTED.reset(token)


class DegenerateDataWarning(EstimateWarning):
    """A variable's samples lie near a lower-dimensional set or in tight clusters."""


class UndersampledWarning(EstimateWarning):
    """Too few samples for the dimension of a non-parametric estimate (``kind="undersampled"``)."""


@dataclass(frozen=True)
class Degeneracy:
    """What :func:`degeneracy` found for one variable.

    Attributes:
        dimension: Levina–Bickel intrinsic dimension of the samples.
        reference_dimension: the same statistic for a Gaussian sample of the same size and dimension.
        distance_ratio: median k-NN distance over that of the Gaussian sample (unit covariance).
    """

    dimension: float
    reference_dimension: float
    distance_ratio: float

    @property
    def low_dimensional(self) -> bool:
        return self.dimension < DIMENSION_RATIO * self.reference_dimension

    @property
    def clustered(self) -> bool:
        return self.distance_ratio < DISTANCE_RATIO


def _statistics(z: torch.Tensor) -> tuple[float, float]:
    """Levina–Bickel dimension and median log k-NN distance of whitened ``(m, d)`` samples."""
    distances = knn_distances(z, DIAGNOSTIC_K).to(torch.float64).clamp_min(1e-300)
    log_ratio = (distances[:, -1:].log() - distances[:, :-1].log()).mean(dim=1)
    dimension = 1.0 / float(log_ratio.mean())
    return dimension, float(distances[:, -1].log().median())


@lru_cache(maxsize=64)
def _gaussian_statistics(m: int, d: int) -> tuple[float, float]:
    generator = torch.Generator().manual_seed(0)
    return _statistics(torch.randn(m, d, generator=generator, dtype=torch.float64))


def degeneracy(x: torch.Tensor, seed: int = 0) -> Degeneracy | None:
    """Intrinsic dimension and cluster tightness of ``(N, d)`` float64 samples.

    Returns ``None`` when the check does not apply: fewer than
    ``4·DIAGNOSTIC_K`` samples, or zero variance (which the estimators report themselves).
    """
    n, d = x.shape
    if n < 4 * DIAGNOSTIC_K:
        return None
    if n > DIAGNOSTIC_SAMPLES:
        generator = torch.Generator().manual_seed(seed)
        x = x[torch.randperm(n, generator=generator)[:DIAGNOSTIC_SAMPLES].to(x.device)]
    try:
        z, _ = affine_normalise(x, "whiten")
    except ValueError:
        return None
    dimension, log_distance = _statistics(z)
    reference_dimension, reference_log_distance = _gaussian_statistics(z.shape[0], d)
    return Degeneracy(dimension, reference_dimension, math.exp(log_distance - reference_log_distance))
