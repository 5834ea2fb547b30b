"""What a plane point can be: the resolution of N samples, the label entropy above I(Y;L), zero
below both, the data-processing inequality along a chain of layers, the floor a classifier's own
predictions put under I(Y; output), and which changes between epochs are beyond their error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch

from ibkit.compression.units import is_log_probability, is_probability
from ibkit.estimators.discrete import label_entropy_terms
from ibkit.estimators.resampling import paired_stderr
from ibkit.history import QUANTITIES, PlanePoint
from ibkit.result import Estimate
from ibkit.validation import as_labels, check_same_length

#: A layer's estimate is compression loss when a deeper layer's exceeds it by this many
#: standard errors of their difference.
DPI_STDERRS = 2.0
#: An estimate below 0 by more than this many standard errors is recorded as the lower bound 0.
NEGATIVE_STDERRS = 2.0
#: A change since the previous analysed epoch beyond this many of its (paired) standard errors is
#: marked as a rise or a fall. Chosen so that at most 1 % of flat epoch pairs are marked
#: (measured: README, "Significant phases").
TREND_STDERRS = 3.0


def resolution_limit(n: int) -> float:
    """``log N`` nats: above it an estimate from N samples is reported as a lower bound (censored).

    N samples can tell apart at most about N distinct values of one variable given the other, so
    no non-parametric estimate resolves more than ``log N`` nats of dependence; what an estimator
    reads beyond it rests on its bias model, not on the sample.
    """
    return math.log(max(n, 2))


def label_entropy(labels: Any) -> float:
    """The plug-in entropy ``H(Y)`` of ``(N,)`` integer labels, nats: the most ``I(Y; L)`` can be."""
    return float(label_entropy_terms(as_labels(labels, "labels")).mean())


def bounded_fields(quantity: str, estimate: Estimate, ceiling: float | None) -> dict[str, Any]:
    """The :class:`~ibkit.history.PlanePoint` fields of one estimate: its value, or the bound it crossed.

    Above ``ceiling`` (H(Y) for I(Y;L)) the value is the ceiling, flagged ``capped``; otherwise
    above ``log N`` it is ``log N``, flagged ``censored``; below 0 by more than
    ``NEGATIVE_STDERRS`` standard errors it is 0, flagged ``negative``.
    """
    value, limit = estimate.value, resolution_limit(estimate.n)
    capped = ceiling is not None and value > ceiling
    censored = not capped and value > limit
    negative = value < -NEGATIVE_STDERRS * estimate.stderr
    recorded = ceiling if capped else limit if censored else 0.0 if negative else value
    return {quantity: recorded, f"{quantity}_stderr": estimate.stderr, f"{quantity}_method": estimate.method,
            f"{quantity}_censored": censored, f"{quantity}_capped": capped, f"{quantity}_negative": negative}


def trend_fields(quantity: str, before: Estimate | None, after: Estimate, ceiling: float | None) -> dict[str, Any]:
    """``{q_change_stderr, q_trend}`` of the change from ``before`` (the curve's previous analysed
    epoch, ``None`` for its first) to ``after``, both on the same probe.

    The standard error is paired (``ibkit.estimators.resampling.paired_stderr``); the change is a
    trend beyond ``TREND_STDERRS`` of it, unless either estimate crossed a bound (its true value is
    then unknown).
    """
    stderr = None if before is None else paired_stderr(before, after)
    if stderr is None:
        return {f"{quantity}_change_stderr": math.nan, f"{quantity}_trend": ""}
    bounded = any(bounded_fields(quantity, estimate, ceiling)[f"{quantity}_{flag}"]
                  for estimate in (before, after) for flag in ("censored", "capped", "negative"))
    change = after.value - before.value
    trend = "" if bounded or abs(change) <= TREND_STDERRS * stderr else "up" if change > 0 else "down"
    return {f"{quantity}_change_stderr": stderr, f"{quantity}_trend": trend}


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
