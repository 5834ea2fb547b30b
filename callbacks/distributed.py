"""The probe under Lightning and distributed training: the default probe, the capture on every
process and its gather on rank 0, and failures raised on every rank.

By default the probe is taken from the trainer's data module (``probe_tensors(size)``) or its
validation data. Under distributed training each process captures one contiguous shard of equal
(padded) length, so the gathered activations are in the probe's own order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch.utils.data import DataLoader

from ibkit.capture import LayerRecorder, capture_activations, capture_seed
from ibkit.errors import Failure
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


def run_probe(trainer: Any, probe: Any, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe of a run: ``probe`` (see ``ibkit.probe.probe_tensors``), else :func:`default_probe`.

    Raises:
        ValueError: no probe, or fewer samples than processes.
    """
    x, y = default_probe(trainer, size, seed) if probe is None else probe_tensors(probe, size, seed)
    if x.shape[0] < trainer.world_size:
        raise ValueError(f"the probe set has {x.shape[0]} samples, fewer than the {trainer.world_size} processes")
    return x, y


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


def capture_on_every_rank(trainer: Any, pl_module: Any, recorder: LayerRecorder, x: torch.Tensor, *, epoch: int,
                          seed: int, batch_size: int, noise_on: bool,
                          forward: Callable[[Any, torch.Tensor], Any] | None) -> dict[str, torch.Tensor | Failure]:
    """Every rank captures its shard of the probe ``x``; rank 0 gets the full ``(N, features)`` activations.

    A layer that failed on any rank (or whose width differs between ranks) is a
    :class:`~ibkit.errors.Failure` everywhere; every rank makes the same collective calls.
    """
    world, rank = trainer.world_size, trainer.global_rank
    bounds = shard_bounds(x.shape[0], world)
    start, stop = bounds[rank]
    local = capture_activations(pl_module, recorder, x[start:stop], batch_size=batch_size, noise_on=noise_on,
                                seed=capture_seed(seed, epoch, rank), forward=forward)
    if world == 1:
        return local
    # Agree on which layers every rank captured, and their widths, before gathering them.
    widths = torch.tensor([-1 if isinstance(v, Failure) else v.shape[1] for v in local.values()],
                          device=pl_module.device)
    all_widths = trainer.strategy.all_gather(widths)
    per_rank = bounds[0][1] - bounds[0][0]
    gathered: dict[str, torch.Tensor | Failure] = {}
    for column, (name, value) in enumerate(local.items()):
        widths_here = all_widths[:, column]
        if isinstance(value, Failure):
            gathered[name] = value
        elif bool((widths_here < 0).any()) or bool((widths_here != widths_here[0]).any()):
            gathered[name] = Failure("capture", f"layer {name!r} failed to capture on another process")
        else:
            gathered[name] = unpad_gathered(trainer.strategy.all_gather(pad_rows(value.contiguous(), per_rank)), bounds)
    return gathered


def raise_on_every_rank(trainer: Any, error: BaseException | None) -> None:
    """Raise rank 0's ``error`` (if any) on every process, so that none is left waiting for the others.

    The callback keeps its first error, which stops the fit; a new fit starts without it.
    """
    message = None if error is None else f"{type(error).__name__}: {error}"
    message = trainer.strategy.broadcast(message, src=0)
    if error is not None:
        raise error
    if message is not None:
        raise RuntimeError(f"InformationPlane failed on rank 0: {message}")
