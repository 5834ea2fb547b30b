"""Stochastic layers that make a network's hidden representations noisy functions of its input.

Why: for a deterministic network ``L = f(X)`` with continuous ``X``, the mutual information
``I(X; L)`` is infinite (or, for a non-injective ``f`` on discrete data, trivially equal to
``H(L)``), so the information plane is degenerate. Injecting a little noise inside the network
(a *stochastic* network, Goldfeld et al. 2019; Butakov et al. 2024) makes ``L | X`` a proper
random variable and ``I(X; L)`` finite and measurable. The noise must then also be on when the
layers are recorded for MI estimation, which is what :attr:`NoiseLayer.enabled_on_eval` (and the
:func:`eval_noise` context manager) are for, while dropout and the like stay off. Every noise
layer of ibkit (this module's :class:`AdditiveGaussianNoise`, the Deep InfoMax channels of
``ibkit.models.channels``) derives from :class:`NoiseLayer`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ibkit.validation import check_number


def check_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """Return ``generator`` if it is a ``torch.Generator`` or ``None``, else raise ``ValueError``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def draw_noise(like: torch.Tensor, sampler, generator: torch.Generator | None,
               shape: Sequence[int] | None = None) -> torch.Tensor:
    """Noise from ``sampler`` (``torch.randn``, ``torch.rand``) with ``like``'s dtype and device.

    The shape is ``like``'s unless ``shape`` is given. With a ``generator`` the noise is drawn on
    the generator's device, so a seeded run gives the same numbers wherever the input lives,
    then moved to ``like``'s device; without one the global RNG of ``like``'s device is used.
    """
    device = like.device if generator is None else generator.device
    size = like.shape if shape is None else tuple(shape)
    return sampler(size, dtype=like.dtype, device=device, generator=generator).to(like.device)


class NoiseLayer(nn.Module, ABC):
    """Base of ibkit's noise layers: noisy in training mode, and in eval mode while enabled.

    Subclasses implement :meth:`add_noise`. The noise is on while :attr:`active`: in training
    mode, and in eval mode while :attr:`enabled_on_eval` is ``True``. That attribute may be
    switched at any time, e.g. by :func:`eval_noise` or a callback that records the noisy layers
    for MI estimation with the rest of the network (dropout, batch norm) in eval mode.

    Args:
        enabled_on_eval: also add noise in eval mode.
        generator: optional ``torch.Generator`` for reproducible noise, drawn on the generator's
            device and moved to the input's (see :func:`draw_noise`); without one the global RNG
            of the input's device is used.

    Shape:
        input ``(*)``, any shape and floating dtype; output the same shape, dtype and device.
    """

    def __init__(self, enabled_on_eval: bool = False, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.enabled_on_eval = bool(enabled_on_eval)
        self.generator = check_generator(generator)

    @property
    def active(self) -> bool:
        """Whether :meth:`forward` currently adds noise."""
        return self.training or self.enabled_on_eval

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        if not x.is_floating_point():
            raise ValueError(f"{type(self).__name__} needs a floating-point input, got dtype {x.dtype}")
        return self.add_noise(x)

    @abstractmethod
    def add_noise(self, x: torch.Tensor) -> torch.Tensor:
        """The noisy output for a floating input ``x`` (always noisy, whatever the mode)."""

    def draw(self, like: torch.Tensor, sampler, shape: Sequence[int] | None = None) -> torch.Tensor:
        """Noise from ``sampler`` shaped like ``like`` (or ``shape``), from this layer's generator."""
        return draw_noise(like, sampler, self.generator, shape)


class AdditiveGaussianNoise(NoiseLayer):
    """Add Gaussian noise to the input: ``x + s·ε`` with ``ε ~ N(0, I)``.

    * ``relative=True`` (default, as in the paper's code): ``s = σ·x``, i.e. the output is
      ``x·(1 + σ·ε)``, noise with standard deviation ``σ·|x|`` per element (a fixed
      noise-to-signal ratio, invariant to the scale of the layer). Exact zeros stay zero.
    * ``relative=False``: ``s = σ``, isotropic additive noise of standard deviation ``σ``.

    Active as every :class:`NoiseLayer` (training mode, or eval mode while ``enabled_on_eval``)
    and ``σ > 0``. Gradients flow through ``x`` in both terms (including the relative scale).

    Args:
        sigma: noise level ``σ >= 0`` (relative: noise-to-signal ratio; absolute: the standard
            deviation in the input's units). ``0`` makes the layer the identity.
        relative: signal-proportional (``True``) or absolute (``False``) noise scale.
        enabled_on_eval, generator: see :class:`NoiseLayer`.

    Shape:
        input ``(*)``, any shape and floating dtype; output has the same shape, dtype, device.
    """

    def __init__(
        self,
        sigma: float,
        relative: bool = True,
        enabled_on_eval: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(enabled_on_eval=enabled_on_eval, generator=generator)
        self.sigma = sigma
        self.relative = bool(relative)

    @property
    def sigma(self) -> float:
        """Noise level ``σ`` (validated on assignment: finite and ``>= 0``)."""
        return self._sigma

    @sigma.setter
    def sigma(self, value: float) -> None:
        self._sigma = check_number(value, "sigma", minimum=0.0)

    @property
    def active(self) -> bool:
        return self._sigma > 0.0 and super().active

    def add_noise(self, x: torch.Tensor) -> torch.Tensor:
        scale = self._sigma * x if self.relative else self._sigma
        return x + scale * self.draw(x, torch.randn)

    def extra_repr(self) -> str:
        return f"sigma={self._sigma:g}, relative={self.relative}, enabled_on_eval={self.enabled_on_eval}"


def readout_noise(values: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """``values + σ·s·ε``: Gaussian noise added to recorded ``(N, W)`` values at readout, each unit's
    noise scaled by its standard deviation ``s`` over the ``N`` samples (``ε`` standard normal).

    This makes the information plane of a deterministic network well defined without editing the
    model: ``I(X; L + σsε)`` is the information about the input that a noisy readout of ``L`` keeps,
    finite for any ``σ > 0`` (a constant unit gets no noise and carries none). It is not the MI
    of the network's own layer, which is infinite for continuous inputs. The noise is drawn in
    column chunks from ``generator`` (on the CPU, then moved), into one float32 (or float64)
    copy of ``values``.
    """
    sigma = check_number(sigma, "readout noise", minimum=0.0)
    noisy = values.to(torch.float64 if values.dtype == torch.float64 else torch.float32, copy=True)
    width = max(1, 2**22 // max(values.shape[0], 1))
    for start in range(0, values.shape[1], width):
        block = noisy[:, start:start + width]
        scale = sigma * block.double().std(dim=0).to(block.dtype)
        block += scale * torch.randn(block.shape, generator=generator, dtype=block.dtype).to(block.device)
    return noisy


def noise_layers(module: nn.Module) -> Iterator[NoiseLayer]:
    """All :class:`NoiseLayer` modules in ``module`` (itself included), in order."""
    return (m for m in module.modules() if isinstance(m, NoiseLayer))


@contextmanager
def eval_noise(module: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Temporarily set ``enabled_on_eval`` on every noise layer of ``module``.

    Use it to record a stochastic network's layers in eval mode (dropout off, noise on)::

        model.eval()
        with eval_noise(model), torch.no_grad():
            outputs = model(x)

    The previous per-layer settings are restored on exit, also after an exception.
    """
    layers = list(noise_layers(module))
    previous = [layer.enabled_on_eval for layer in layers]
    try:
        for layer in layers:
            layer.enabled_on_eval = bool(enabled)
        yield module
    finally:
        for layer, state in zip(layers, previous):
            layer.enabled_on_eval = state
