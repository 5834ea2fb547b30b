"""Noise channels with a level ``p ∈ (0, 1)`` for noise-injected Deep InfoMax.

Two channels keep their input's constraint (unit variance, or support ``[0, 1]``) and have a
closed-form capacity per coordinate, so that the InfoNCE estimate of the mutual information
through them can be compared with what the channel could carry at most:

* :class:`GaussianChannel` (bounded variance): ``y = √(1−p²)·x + p·n``, ``n ~ N(0, I)``. A
  unit-variance input gives a unit-variance output. It is the channel ``x + σn`` with
  ``σ² = p²/(1−p²)`` up to an invertible rescaling, so its capacity under the unit-power
  constraint is ``½·log(1 + 1/σ²) = −log p`` nats per coordinate, reached only by a
  ``N(0, 1)`` input.
* :class:`UniformChannel` (bounded support): ``y = (1−p)·x + p·u``, ``u ~ U[0, 1]``. An input in
  ``[0, 1]`` gives an output in ``[0, 1]``; since ``h(p·u) = log p`` and ``h(y) ≤ 0`` on the unit
  interval, ``I(x; y) ≤ −log p`` nats per coordinate (tight when ``(1−p)/p`` is an integer,
  for a lattice input with that spacing; a uniform input gets
  ``w/2 − log w``, ``w = p/(1−p)``).

In both cases ``d·(−log p) − I(x; y)`` equals the Kullback–Leibler divergence of the channel
output from the maximum-entropy law under the constraint (``N(0, I)`` resp. ``U[0, 1]^d``,
given zero mean and unit variance for the Gaussian case), which is what makes the gap a
distribution-matching certificate.

The channels are :class:`ibkit.layers.NoiseLayer` modules: noise in training mode only (and in
eval mode while ``enabled_on_eval``).
"""

from __future__ import annotations

import math

import torch

from ibkit.layers import NoiseLayer
from ibkit.validation import check_number


def check_noise_level(p: float, name: str = "noise level p") -> float:
    """Return ``p`` as a float if ``0 < p < 1``, else raise ``ValueError``."""
    return check_number(p, name, minimum=0.0, maximum=1.0, open_interval=True)


class NoiseChannel(NoiseLayer):
    """Base class: a noise level ``p`` and a per-coordinate capacity, on the :class:`NoiseLayer` base.

    Args:
        p: noise level in ``(0, 1)``; ``0`` would be no noise, ``1`` pure noise.
        enabled_on_eval, generator: see :class:`ibkit.layers.NoiseLayer`.

    Shape:
        input ``(N, *)`` floating point; output the same shape, dtype and device.
    """

    def __init__(self, p: float, enabled_on_eval: bool = False, generator: torch.Generator | None = None):
        super().__init__(enabled_on_eval=enabled_on_eval, generator=generator)
        self.p = check_noise_level(p)

    @property
    def capacity(self) -> float:
        """Capacity per coordinate, nats: ``−log p``."""
        return -math.log(self.p)

    def extra_repr(self) -> str:
        return f"p={self.p:g}, capacity={self.capacity:.4g} nats/dim, enabled_on_eval={self.enabled_on_eval}"


class GaussianChannel(NoiseChannel):
    """Bounded-variance Gaussian channel ``y = √(1−p²)·x + p·n``, ``n ~ N(0, I)``.

    ``Var y = (1−p²)·Var x + p²``, so unit-variance inputs stay unit-variance. Capacity
    ``−log p`` nats per coordinate (e.g. ``p = 0.1`` → 2.303 nats, equivalent additive noise
    ``σ = p/√(1−p²) ≈ 0.1005``).
    """

    @property
    def sigma(self) -> float:
        """Standard deviation of the equivalent additive channel ``x + σ·n``."""
        return self.p / math.sqrt(1.0 - self.p**2)

    def add_noise(self, x: torch.Tensor) -> torch.Tensor:
        return math.sqrt(1.0 - self.p**2) * x + self.p * self.draw(x, torch.randn)


class UniformChannel(NoiseChannel):
    """Bounded-support uniform channel ``y = (1−p)·x + p·u``, ``u ~ U[0, 1]^d``.

    Inputs in ``[0, 1]`` give outputs in ``[0, 1]``. Capacity bound ``−log p`` nats per
    coordinate (the channel ``x + w·u`` with ``w = p/(1−p)`` after rescaling).
    """

    @property
    def width(self) -> float:
        """Width ``w`` of the equivalent additive channel ``x + w·u``."""
        return self.p / (1.0 - self.p)

    def add_noise(self, x: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.p) * x + self.p * self.draw(x, torch.rand)
