"""The probe set: a fixed ``(x, y)`` sample the information plane is measured on.

A probe can be given as ``(x, y)`` tensors, a ``Dataset`` of ``(x, y, ...)`` items or a
``DataLoader``; by default it is taken from the trainer's data module (``probe_tensors(size)``)
or validation data. Under distributed training each process captures one contiguous shard of
equal (padded) length, so the gathered activations are in the probe's own order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.utilities.model_helpers import is_overridden
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


def default_probe(trainer: Any, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe when none is given: ``datamodule.probe_tensors(size)``, else the validation data.

    The validation set is read from the underlying ``Dataset`` (not the possibly sharded
    loader), a seeded subset of ``size`` items, so every process gets the same probe.

    Raises:
        ValueError: neither source is available.
    """
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is not None and hasattr(datamodule, "probe_tensors"):
        return probe_tensors(tuple(datamodule.probe_tensors(size)), size, seed)
    source = trainer.val_dataloaders
    if source is None:
        owner = datamodule if datamodule is not None else trainer.lightning_module
        source = owner.val_dataloader() if is_overridden("val_dataloader", owner) else None
    if isinstance(source, Sequence) and not isinstance(source, DataLoader):
        source = source[0] if source else None
    if isinstance(source, DataLoader):
        return probe_tensors(source.dataset, size, seed)
    raise ValueError(
        "no probe set: pass probe=(x, y), a Dataset or a DataLoader, give the data module a "
        "probe_tensors(size) method, or provide validation data"
    )


def shard_bounds(n: int, world_size: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges splitting ``n`` samples over ``world_size`` processes.

    Every shard but possibly the last ones holds ``ceil(n / world_size)`` samples; a short or
    empty shard is padded to that length before ``all_gather``.
    """
    per_rank = math.ceil(n / world_size)
    return [(min(rank * per_rank, n), min((rank + 1) * per_rank, n)) for rank in range(world_size)]


def pad_rows(tensor: torch.Tensor, length: int) -> torch.Tensor:
    """``tensor`` with rows appended (zeros) up to ``length`` rows."""
    missing = length - tensor.shape[0]
    if missing <= 0:
        return tensor
    return torch.cat([tensor, tensor.new_zeros((missing, *tensor.shape[1:]))])


def unpad_gathered(gathered: torch.Tensor, bounds: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Undo sharding: ``(world, per_rank, ...)`` gathered rows -> ``(N, ...)`` in probe order."""
    return torch.cat([gathered[rank, : stop - start] for rank, (start, stop) in enumerate(bounds)])
