"""One estimate of a benchmark run: timed, its estimator warnings gathered, a data error kept as text."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ibkit.estimators import collect_warnings
from ibkit.result import Estimate


@dataclass(frozen=True)
class TimedEstimate:
    """An estimate's value and standard error (nats; NaN if it failed), seconds taken and error text."""

    value: float
    stderr: float
    seconds: float
    error: str = ""


def timed_estimate(estimate: Callable[[], Estimate]) -> TimedEstimate:
    """Run ``estimate()``; the estimators' warnings are gathered and dropped (a benchmark scores
    the values instead), and a ``ValueError`` (data the method cannot estimate) becomes a NaN row
    with the first line of its message."""
    started = time.perf_counter()
    try:
        with collect_warnings():
            result = estimate()
    except ValueError as exc:
        return TimedEstimate(math.nan, math.nan, time.perf_counter() - started, str(exc).splitlines()[0][:160])
    return TimedEstimate(result.value, result.stderr, time.perf_counter() - started)
