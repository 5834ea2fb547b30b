"""What a plane point can be: the resolution of N samples, the data-processing inequality along a
chain of layers, and the floor a classifier's own predictions put under I(Y; output).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch

from ibkit.compression.units import is_log_probability, is_probability
from ibkit.estimators.discrete import label_entropy_terms
from ibkit.history import QUANTITIES, PlanePoint
from ibkit.result import Estimate
from ibkit.validation import as_labels, check_same_length

#: A layer's estimate is compression loss when a deeper layer's exceeds it by this many
#: standard errors of their difference.
DPI_STDERRS = 2.0


def resolution_limit(n: int) -> float:
    """``log N`` nats: above it an estimate from N samples is reported as a lower bound (censored).

    N samples can tell apart at most about N distinct values of one variable given the other, so
    no non-parametric estimate resolves more than ``log N`` nats of dependence; what an estimator
    reads beyond it rests on its bias model, not on the sample.
    """
    return math.log(max(n, 2))


def flag_compression_loss(points: Sequence[PlanePoint]) -> list[PlanePoint]:
    """``points`` (one epoch, layers in chain order) with the data-processing violations flagged.

    For a chain ``X → L1 → L2 → …`` both ``I(X; L_i)`` and ``I(Y; L_i)`` are non-increasing in
    ``i``. A layer's finite, uncensored estimate more than ``DPI_STDERRS`` standard errors (of the
    difference) below a deeper layer's can only come from information lost in compressing it,
    so it is flagged (``*_compression_loss``) as a lower bound.
    """
    flagged = list(points)
    for quantity in QUANTITIES:
        for i, point in enumerate(flagged):
            value, stderr = getattr(point, quantity), getattr(point, f"{quantity}_stderr")
            if not math.isfinite(value) or getattr(point, f"{quantity}_censored"):
                continue
            for deeper in points[i + 1:]:
                gap = getattr(deeper, quantity) - value
                if gap > DPI_STDERRS * math.hypot(stderr, getattr(deeper, f"{quantity}_stderr")):
                    flagged[i] = dataclasses.replace(flagged[i], **{f"{quantity}_compression_loss": True})
                    break
    return flagged


def prediction_floor(probabilities: Any, labels: Any) -> Estimate:
    """``H(Y) − CE``: the lower bound on ``I(Y; L)`` that a layer's own class probabilities give.

    Any predictor ``q(y | l)`` bounds ``I(Y; L) ≥ H(Y) − E[−log q(Y | L)]`` (Barber & Agakov,
    2003), and a classifier's softmax output ``L`` is one for itself. An estimate of ``I(Y; L)``
    for the output layer that sits below this floor by more than a few standard errors is an
    estimator or compression artefact, not a property of the network.

    Args:
        probabilities: ``(N, C)`` class probabilities (rows on the simplex) or log-probabilities.
        labels: ``(N,)`` integer labels in ``0..C−1``.

    Returns:
        The floor in nats with the standard error of its per-sample terms
        ``log q(y_i | l_i) − log p̂(y_i)`` (independent given the label frequencies).
    """
    values = torch.as_tensor(probabilities).detach().to(torch.float64).flatten(1)
    codes = as_labels(labels, "labels", values.device)  # validated; codes 0..K−1 for the frequencies
    classes = torch.as_tensor(labels).to(values.device).long().reshape(-1)
    check_same_length(values, classes, "probabilities", "labels")
    if is_log_probability(values):
        log_q = values
    elif is_probability(values):
        log_q = values.clamp_min(torch.finfo(torch.float64).tiny).log()
    else:
        raise ValueError("probabilities must be rows of class probabilities or log-probabilities")
    if int(classes.min()) < 0 or int(classes.max()) >= values.shape[1]:
        raise ValueError(f"labels must be class indices in 0..{values.shape[1] - 1}, one per probability column")
    terms = log_q.gather(1, classes[:, None]).squeeze(1) + label_entropy_terms(codes)
    return Estimate.from_terms(terms, "prediction")
