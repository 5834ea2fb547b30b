"""The probe set: a fixed ``(x, y)`` sample the information plane is measured on.

A probe can be given as ``(x, y)`` tensors, a ``Dataset`` of ``(x, y, ...)`` items or a
``DataLoader``; :func:`probe_tensors` turns any of them into a seeded, capped pair of tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset, default_collate


def _as_pair(batch: Any, source: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        x, y = batch[0], batch[1]
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            return x, y
    raise ValueError(
        f"{source} must yield (x, y, ...) tuples of tensors, got {type(batch).__name__}; "
        "pass probe=(x, y) tensors instead"
    )


def subset_indices(n: int, size: int, seed: int) -> torch.Tensor:
    """``min(n, size)`` distinct indices of ``range(n)``, a seeded random choice, sorted."""
    if n <= size:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:size].sort().values


def tensors_from_dataset(dataset: Dataset, size: int, seed: int, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded subset of at most ``size`` items of a map-style dataset, collated to ``(x, y)``."""
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError as error:
        raise ValueError("the probe dataset must have a length (a map-style Dataset)") from error
    loader = DataLoader(Subset(dataset, subset_indices(n, size, seed).tolist()), batch_size=batch_size,
                        collate_fn=default_collate)
    return tensors_from_loader(loader, size)


def tensors_from_loader(loader: DataLoader, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``size`` samples a data loader yields, concatenated to ``(x, y)``."""
    xs, ys, count = [], [], 0
    for batch in loader:
        x, y = _as_pair(batch, "the probe DataLoader")
        xs.append(x[: size - count])
        ys.append(y[: size - count])
        count += xs[-1].shape[0]
        if count >= size:
            break
    if count == 0:
        raise ValueError("the probe DataLoader yielded no samples")
    return torch.cat(xs), torch.cat(ys)


def probe_tensors(probe: Any, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise a user probe (``(x, y)``, ``Dataset`` or ``DataLoader``) to CPU tensors.

    Returns:
        ``x (N, ...)`` inputs and ``y (N,)`` labels with ``N <= size``.

    Raises:
        ValueError: unsupported type, mismatched lengths, or an empty probe.
    """
    if isinstance(probe, DataLoader):
        x, y = tensors_from_loader(probe, size)
    elif isinstance(probe, Dataset):
        x, y = tensors_from_dataset(probe, size, seed)
    elif isinstance(probe, Sequence) and len(probe) == 2:
        x, y = _as_pair(probe, "probe")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"probe x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
        index = subset_indices(x.shape[0], size, seed)
        x, y = x[index], y[index]
    else:
        raise ValueError(
            f"probe must be (x, y) tensors, a Dataset or a DataLoader, got {type(probe).__name__}"
        )
    if x.shape[0] == 0:
        raise ValueError("the probe set is empty")
    return x.detach().cpu(), y.detach().cpu()
