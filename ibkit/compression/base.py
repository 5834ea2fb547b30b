"""The interface every compressor shares, and the input checks behind it.

Compressors are applied explicitly, scikit-learn style: ``fit(x)`` learns a map from samples
``x`` of shape ``(N, ...)`` to codes of shape ``(N, n_components_)``; ``transform(x)`` applies it.
Inputs are torch tensors on any device or numpy arrays; codes are returned as tensors on the
input's device (CPU for numpy) in the input's floating dtype (the default dtype for integer
input).
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import torch

from ibkit.errors import DataError


def as_float_batch(data: Any, name: str = "x", min_samples: int = 1) -> torch.Tensor:
    """Convert a batch of samples to a floating tensor of shape ``(N, ...)``, unflattened.

    Floating inputs keep their dtype and device; integer or boolean inputs become the default
    floating dtype. Numpy arrays become CPU tensors.

    Raises:
        ValueError: a scalar or 1-D-less input, fewer than ``min_samples`` samples, a sample with
            no features, complex values, or NaN/inf values.
    """
    tensor = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))
    if tensor.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {tensor.dtype}")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    if tensor.ndim == 0:
        raise ValueError(f"{name} must have a sample dimension, got a scalar")
    if tensor.shape[0] < min_samples:
        raise DataError(f"{name} has {tensor.shape[0]} samples, needs at least {min_samples}")
    if tensor[0].numel() == 0:
        raise ValueError(f"{name} has samples with 0 features (shape {tuple(tensor.shape)})")
    # A finite sum means finite values (one reduction, no mask as large as the data); an infinite
    # one may be overflow of large values, so only then are the values checked one by one.
    if not bool(torch.isfinite(tensor.sum())):
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            rows = int((~finite).reshape(tensor.shape[0], -1).any(dim=1).sum())
            raise DataError(f"{name} contains NaN or inf values in {rows} of {tensor.shape[0]} samples")
    return tensor


class Compressor(abc.ABC):
    """Base class of the compressors: a learned map ``(N, ...) -> (N, n_components_)``.

    Attributes:
        n_components: the requested code dimension.
        n_components_: the code dimension actually produced (set by :meth:`fit`; may be smaller
            than requested when the data have fewer features).
        feature_shape_: the per-sample shape seen by :meth:`fit`; :meth:`transform` accepts any
            input whose samples have that shape (or the same number of elements, flattened).
    """

    n_components: int
    n_components_: int
    feature_shape_: tuple[int, ...]

    @abc.abstractmethod
    def fit(self, x: Any) -> Compressor:
        """Learn the compression from samples ``x`` of shape ``(N, ...)``; returns ``self``."""

    @abc.abstractmethod
    def transform(self, x: Any) -> torch.Tensor:
        """Codes of ``x``: ``(N, n_components_)`` tensor on ``x``'s device."""

    def fit_transform(self, x: Any) -> torch.Tensor:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has been called."""
        return hasattr(self, "feature_shape_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit(x) first")

    def _check_features(self, x: torch.Tensor, name: str = "x") -> None:
        expected = int(np.prod(self.feature_shape_))
        if x[0].numel() != expected:
            raise ValueError(
                f"{name} has samples of shape {tuple(x.shape[1:])} ({x[0].numel()} features), but "
                f"{type(self).__name__} was fitted on shape {self.feature_shape_} ({expected} features)"
            )
