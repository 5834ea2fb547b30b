"""The probe under Lightning: the default probe of a trainer, and sharding it over processes.

By default the probe is taken from the trainer's data module (``probe_tensors(size)``) or its
validation data. Under distributed training each process captures one contiguous shard of equal
(padded) length, so the gathered activations are in the probe's own order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch.utils.data import DataLoader

from ibkit.probe import probe_tensors


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
