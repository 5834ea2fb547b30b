"""Record chosen layers' outputs on a probe set in one ``no_grad`` pass.

Forward hooks live only for the duration of a capture pass and are removed in ``finally``; the
train/eval mode of every submodule and the inference switch of every noise layer are restored
afterwards, so a capture leaves the network exactly as it found it. The random state used by
stochastic layers during the pass is forked and seeded, so capturing neither perturbs nor
depends on the training run's random stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from ibkit.errors import DataError, Failure
from ibkit.layers import eval_noise

#: Picks the tensor to record from a layer's output (tensor, tuple, dict, ...).
Selector = Callable[[Any], torch.Tensor]


def first_tensor(output: Any) -> torch.Tensor:
    """Default selector: the output itself, the first tensor of a tuple/list, or the first value of a dict.

    Raises:
        DataError: the output holds no tensor at that position.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and output:
        return first_tensor(next(iter(output.values())))
    if isinstance(output, (tuple, list)) and output:
        return first_tensor(output[0])
    raise DataError(
        f"cannot pick a tensor from a layer output of type {type(output).__name__}; "
        "pass select=<callable returning a tensor> to InformationPlane"
    )


def default_layer_names(module: nn.Module) -> list[str]:
    """The module's ``default_ib_layers`` attribute if it has one, else its top-level children."""
    names = getattr(module, "default_ib_layers", None)
    if names is None:
        names = [name for name, _ in module.named_children()]
    return list(names)


def resolve_layers(module: nn.Module, names: Sequence[str] | None) -> dict[str, nn.Module]:
    """Map layer names (as in ``module.named_modules()``) to submodules, in the given order.

    Args:
        module: the network to analyse.
        names: module names; ``None`` uses :func:`default_layer_names`.

    Raises:
        ValueError: no layers, a repeated name, or a name that is not a submodule (the message
            lists the valid names).
    """
    chosen = default_layer_names(module) if names is None else list(names)
    if not chosen:
        raise ValueError("no layers to analyse: pass layers=[...] with at least one module name")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"layer names must be unique, got {chosen}")
    available = {name: sub for name, sub in module.named_modules() if name}
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise ValueError(
            f"unknown layer name(s) {unknown} for {type(module).__name__}; valid names are: "
            + ", ".join(available)
        )
    return {name: available[name] for name in chosen}


def capture_seed(seed: int, epoch: int, rank: int) -> int:
    """A 63-bit seed for the capture pass of ``epoch`` on process ``rank``."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


@contextmanager
def evaluation_state(module: nn.Module, noise_on: bool) -> Iterator[None]:
    """Eval mode for every submodule, noise layers forced on/off; both restored on exit.

    Noise layers are the :class:`ibkit.layers.NoiseLayer` modules (switched by
    :func:`ibkit.layers.eval_noise`); ``noise_on=True`` keeps the stochastic network stochastic in
    eval mode, ``noise_on=False`` makes the capture deterministic.
    """
    modes = [(sub, sub.training) for sub in module.modules()]
    try:
        module.eval()
        with eval_noise(module, noise_on):
            yield
    finally:
        for sub, training in modes:
            sub.training = training


class LayerRecorder:
    """Forward hooks that collect each layer's flattened output, batch by batch.

    Use :meth:`attach` as a context manager; hooks exist only inside it. A layer that runs a
    different number of times than there were batches (unused, or shared and called twice) gets
    an error instead of a result.

    Args:
        layers: ``name -> module`` to record.
        select: picks the tensor from a layer's output; one callable for all layers or a dict
            ``name -> callable`` (missing names use :func:`first_tensor`).
    """

    def __init__(self, layers: Mapping[str, nn.Module], select: Selector | Mapping[str, Selector] | None = None):
        self.layers = dict(layers)
        if select is None or isinstance(select, Mapping):
            select = dict(select or {})
            self._select = {name: select.get(name, first_tensor) for name in self.layers}
        else:
            self._select = {name: select for name in self.layers}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._samples = 0
        self._buffers: dict[str, torch.Tensor] = {}
        self._rows: dict[str, int] = {}
        self._calls: dict[str, int] = {}
        self._errors: dict[str, Failure] = {}

    @classmethod
    def for_module(
        cls, module: nn.Module, names: Sequence[str] | None, select: Selector | Mapping[str, Selector] | None = None
    ) -> LayerRecorder:
        """A recorder for ``module``'s layers ``names`` (``None``: :func:`default_layer_names`).

        Raises:
            ValueError: as :func:`resolve_layers`.
        """
        return cls(resolve_layers(module, names), select)

    def _hook(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
            self._calls[name] += 1
            if name in self._errors:
                return
            try:
                tensor = self._select[name](output)
                if not isinstance(tensor, torch.Tensor):
                    raise DataError(f"select returned {type(tensor).__name__}, expected a tensor")
                self._store(name, tensor.detach().flatten(1))
            except ValueError as error:  # DataError from first_tensor, or the user's select
                self._errors[name] = Failure("capture", f"layer {name!r}: {error}")

        return record

    def _store(self, name: str, batch: torch.Tensor) -> None:
        """Copy one batch ``(B, features)`` into the layer's ``(N, features)`` float32 buffer, allocated
        at its first batch (so a layer is never held twice, as a list of batches and their
        concatenation) and stored feature by feature, the layout in which each unit is transformed."""
        if name not in self._buffers:
            self._buffers[name] = torch.empty(batch.shape[1], self._samples, dtype=torch.float32, device=batch.device).T
        buffer, row = self._buffers[name], self._rows[name]
        if batch.shape[1] != buffer.shape[1] or row + batch.shape[0] > self._samples:
            raise DataError(f"its output changed from {buffer.shape[1]} features or ran more than once per sample")
        buffer[row:row + batch.shape[0]] = batch
        self._rows[name] = row + batch.shape[0]

    @contextmanager
    def attach(self, samples: int) -> Iterator[None]:
        """Register the hooks for the body of the ``with`` block, which runs ``samples`` inputs through
        the network; the hooks are always removed on exit."""
        self._samples = samples
        self._buffers, self._errors = {}, {}
        self._rows = dict.fromkeys(self.layers, 0)
        self._calls = dict.fromkeys(self.layers, 0)
        try:
            for name, layer in self.layers.items():
                self._handles.append(layer.register_forward_hook(self._hook(name)))
            yield
        finally:
            self.remove_hooks()

    def remove_hooks(self) -> None:
        """Remove every registered hook (idempotent; safe to call after an exception)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def results(self, n_batches: int) -> dict[str, torch.Tensor | Failure]:
        """``name -> (N, features)`` float32 activations (stored feature by feature: the transpose of
        a contiguous ``(features, N)`` tensor), or why that layer could not be recorded."""
        out: dict[str, torch.Tensor | Failure] = {}
        for name in self.layers:
            if self._calls.get(name, 0) != n_batches:
                out[name] = Failure("capture", f"layer {name!r} ran {self._calls.get(name, 0)} times for {n_batches} "
                                    "batches; pick a module that runs exactly once per forward pass")
            elif name in self._errors:
                out[name] = self._errors[name]
            else:
                out[name] = self._buffers[name]
        self._buffers = {}
        return out


def is_stochastic(module: nn.Module, recorder: LayerRecorder, inputs: torch.Tensor, *, noise_on: bool,
                  forward: Callable[[nn.Module, torch.Tensor], Any] | None = None) -> bool:
    """Whether a capture of ``inputs`` (a few probe samples) differs between two seeds in any recorded
    layer: the network has an active stochastic part (noise layers, or noise of its own) while recording."""
    first, second = (capture_activations(module, recorder, inputs, batch_size=inputs.shape[0], noise_on=noise_on,
                                         seed=seed, forward=forward) for seed in (0, 1))
    return any(isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and not torch.equal(a, b)
               for a, b in zip(first.values(), second.values()))


def capture_activations(
    module: nn.Module,
    recorder: LayerRecorder,
    inputs: torch.Tensor,
    *,
    batch_size: int,
    noise_on: bool,
    seed: int,
    forward: Callable[[nn.Module, torch.Tensor], Any] | None = None,
) -> dict[str, torch.Tensor | Failure]:
    """One ``no_grad`` forward pass of ``inputs`` through ``module`` recording the chosen layers.

    Args:
        module: the network (its mode and noise switches are restored afterwards).
        recorder: which layers to record and how to pick their tensors.
        inputs: ``(N, ...)`` probe inputs; batches are moved to the module's device.
        batch_size: samples per forward call.
        noise_on: keep noise layers active in eval mode (see :func:`evaluation_state`).
        seed: seeds the forked random state used by stochastic layers during the pass.
        forward: ``forward(module, x)``; default ``module(x)``.

    Returns:
        ``name -> (N, features)`` float32 activations on the module's device, or the layer's
        :class:`~ibkit.errors.Failure`.
    """
    device = next(module.parameters(), torch.empty(0)).device
    call = forward or (lambda net, x: net(x))
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    n_batches = 0
    with torch.random.fork_rng(devices=cuda), torch.no_grad(), evaluation_state(module, noise_on), \
            recorder.attach(inputs.shape[0]):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        for start in range(0, inputs.shape[0], batch_size):
            call(module, inputs[start : start + batch_size].to(device))
            n_batches += 1
    return recorder.results(n_batches)
