"""Input checks shared by every estimator: shapes, finiteness, sample counts, labels.

Each helper raises an error with a message naming the argument and the problem, so a user sees
what is wrong with their data rather than a NaN estimate: :class:`~ibkit.errors.DataError` (a
``ValueError``) where the data cannot be estimated (no samples, NaN/inf, too few samples, lengths
that differ), a plain ``ValueError`` for a wrong type or parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from ibkit.errors import DataError


def as_samples(data: Any, name: str, device: torch.device | str | None = None) -> torch.Tensor:
    """Convert an array of samples to a float64 tensor of shape ``(N, d)``.

    Args:
        data: torch tensor, numpy array or nested sequence; ``(N,)`` means one feature,
            ``(N, d)`` is used as is, ``(N, ...)`` is flattened to ``(N, prod(...))``.
        name: argument name used in error messages.
        device: target device; defaults to the input's own device (CPU for numpy).

    Raises:
        DataError: no samples, no features, or NaN/inf values.
        ValueError: a boolean or complex dtype.
    """
    tensor = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {tensor.dtype}")
    tensor = tensor.to(device=device or tensor.device, dtype=torch.float64)
    if tensor.ndim == 0:
        raise ValueError(f"{name} must have a sample dimension, got a scalar")
    if tensor.ndim == 1:
        tensor = tensor[:, None]
    elif tensor.ndim > 2:
        tensor = tensor.flatten(1)
    if tensor.shape[0] == 0:
        raise DataError(f"{name} has 0 samples")
    if tensor.shape[1] == 0:
        raise DataError(f"{name} has 0 features")
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        rows = int(bad.any(dim=1).sum())
        raise DataError(f"{name} contains NaN or inf values in {rows} of {tensor.shape[0]} samples")
    return tensor


def as_labels(data: Any, name: str, device: torch.device | str | None = None) -> torch.Tensor:
    """Convert discrete labels to an int64 tensor of shape ``(N,)`` with codes ``0..K-1``.

    Integer and boolean arrays are accepted, as are float arrays whose values are all whole
    numbers; ``(N, 1)`` is squeezed. Multi-column labels are combined into one code per row.

    Raises:
        ValueError: no samples, non-finite or non-integer values.
    """
    tensor = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))
    tensor = tensor.to(device=device or tensor.device)
    if tensor.ndim == 0 or tensor.shape[0] == 0:
        raise DataError(f"{name} has 0 samples")
    if tensor.is_floating_point():
        if not bool(torch.isfinite(tensor).all()):
            raise DataError(f"{name} contains NaN or inf; discrete labels must be integers")
        if not bool((tensor == tensor.round()).all()):
            raise ValueError(
                f"{name} has non-integer values but was declared discrete; pass integer class "
                "labels or set the matching discrete_* flag to False"
            )
    elif tensor.is_complex():
        raise ValueError(f"{name} must hold integer labels, got dtype {tensor.dtype}")
    tensor = tensor.reshape(tensor.shape[0], -1)
    _, codes = torch.unique(tensor, dim=0, return_inverse=True)
    return codes.to(torch.int64)


def check_same_length(x: torch.Tensor, y: torch.Tensor, x_name: str = "x", y_name: str = "y") -> None:
    """Raise ``DataError`` unless ``x`` and ``y`` hold the same number of samples."""
    if x.shape[0] != y.shape[0]:
        raise DataError(
            f"{x_name} and {y_name} must have the same number of samples, "
            f"got {x.shape[0]} and {y.shape[0]}"
        )


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer ``>= minimum``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_number(value: Any, name: str, minimum: float | None = None, maximum: float | None = None,
                 open_interval: bool = False) -> float:
    """``value`` as a float if it is a finite real number within the bounds, else ``ValueError``.

    Args:
        minimum, maximum: bounds (``None``: unbounded); inclusive unless ``open_interval``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    below = minimum is not None and (value <= minimum if open_interval else value < minimum)
    above = maximum is not None and (value >= maximum if open_interval else value > maximum)
    if below or above:
        low = "-inf" if minimum is None else f"{minimum:g}"
        high = "inf" if maximum is None else f"{maximum:g}"
        bounds = f"the open interval ({low}, {high})" if open_interval else f"[{low}, {high}]"
        raise ValueError(f"{name} must lie in {bounds}, got {value!r}")
    return value


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid choices are {', '.join(map(str, choices))}")
    return value


def check_k(k: Any) -> int | str:
    """``k`` if it is a positive integer or ``"auto"`` (a neighbour order), else ``ValueError``."""
    if k == "auto":
        return k
    return check_positive_int(k, "k")


def check_enough_samples(n: int, minimum: int, name: str, reason: str) -> None:
    """Raise ``DataError`` unless ``n >= minimum``; ``reason`` says why that many are needed."""
    if n < minimum:
        raise DataError(f"{name} has {n} samples, too few: {reason}")
