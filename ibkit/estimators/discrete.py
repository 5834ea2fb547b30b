"""Discrete variables: plug-in entropy and MI terms of label codes, and the samples of each class."""

from __future__ import annotations

import math

import torch

from ibkit.errors import DataError


def label_entropy_terms(codes: torch.Tensor) -> torch.Tensor:
    """``(N,)`` plug-in terms ``−log p(y_i)`` of label codes; their mean is H(Y) in nats."""
    counts = torch.bincount(codes).to(torch.float64)
    return math.log(codes.shape[0]) - counts[codes].log()


def plugin_mi_terms(x_codes: torch.Tensor, y_codes: torch.Tensor) -> torch.Tensor:
    """Pointwise plug-in MI ``log p(x,y) / (p(x) p(y))`` for label codes, ``(N,)`` float64."""
    n_y = int(y_codes.max()) + 1
    joint = x_codes * n_y + y_codes
    return label_entropy_terms(x_codes) + label_entropy_terms(y_codes) - label_entropy_terms(joint)


def class_indices(labels: torch.Tensor, min_size: int, name: str = "y") -> list[torch.Tensor]:
    """Indices of each class present in ``labels``; each class must have ``min_size`` samples.

    Raises:
        DataError: a class has fewer than ``min_size`` samples.
    """
    groups = []
    for value in torch.unique(labels):
        index = torch.nonzero(labels == value).squeeze(1)
        if index.numel() < min_size:
            raise DataError(
                f"class {int(value)} of {name} has {index.numel()} samples; every class needs at "
                f"least {min_size} for this estimator"
            )
        groups.append(index)
    return groups
