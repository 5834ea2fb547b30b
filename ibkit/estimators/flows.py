"""Normalizing flows for the flow estimator: the only module that knows ``nflows``.

Every flow here maps one variable's samples to a latent of the same total size and returns the
log-absolute-determinant of its Jacobian, ``flow(x) -> (z (N, D), logabsdet (N,))``, and keeps
every latent coordinate (no multi-scale factoring out: all of them enter the base distribution).

* :func:`vector_flow` for ``(N, d)`` vectors: per step an invertible linear map (LU) and a
  rational-quadratic spline coupling layer (for ``d = 1``, an elementwise monotone spline);
* :func:`image_flow` for ``(N, C, H, W)`` images (H and W divisible by 2 per level): per level a
  squeeze, then steps of ActNorm, an invertible 1×1 convolution and an affine coupling layer with a
  convolutional network; the final latent is flattened;
* :func:`make_flow` picks one by the sample shape; :func:`conditional_vector_flow` is a vector flow
  whose layers also see a context vector (class labels).

To swap ``nflows`` for another library, reimplement these three functions: the estimator only
calls ``flow(x)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

#: Spline settings: bins, and the half-width of the spline's range (linear tails outside), in
#: units of the standardised data.
SPLINE_BINS = 8
TAIL_BOUND = 4.0


class Flattened(nn.Module):
    """Wrap an image transform so that it returns ``(z (N, C·H·W), logabsdet (N,))``."""

    def __init__(self, transform: nn.Module):
        super().__init__()
        self.transform = transform

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, logabsdet = self.transform(x)
        return z.flatten(1), logabsdet


def vector_flow(dim: int, steps: int = 4, hidden: int = 64, blocks: int = 2, context: int | None = None) -> nn.Module:
    """A flow for ``(N, dim)`` vectors: ``steps`` × [LU linear → spline coupling], spline-only for ``dim = 1``.

    With ``context`` (a number of context features) the coupling networks also see a context
    vector, ``flow(x, context=c)``: a conditional flow.
    """
    from nflows import transforms
    from nflows.nn import nets

    if dim == 1:
        if context is None:
            layers = [transforms.PiecewiseRationalQuadraticCDF(shape=[1], num_bins=SPLINE_BINS, tails="linear",
                                                               tail_bound=TAIL_BOUND) for _ in range(2)]
        else:
            layers = [transforms.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                1, hidden, context_features=context, num_bins=SPLINE_BINS, tails="linear", tail_bound=TAIL_BOUND)
                for _ in range(2)]
        return transforms.CompositeTransform(layers)

    def net(in_features: int, out_features: int) -> nn.Module:
        return nets.ResidualNet(in_features, out_features, hidden_features=hidden, num_blocks=blocks,
                                context_features=context)

    layers: list[nn.Module] = []
    for step in range(steps):
        mask = torch.arange(dim) % 2 == step % 2
        layers += [transforms.LULinear(dim, identity_init=True),
                   transforms.PiecewiseRationalQuadraticCouplingTransform(
                       mask.int(), net, num_bins=SPLINE_BINS, tails="linear", tail_bound=TAIL_BOUND)]
    layers.append(transforms.LULinear(dim, identity_init=True))
    return transforms.CompositeTransform(layers)


def image_flow(shape: Sequence[int], levels: int = 2, steps: int = 2, hidden: int = 32) -> nn.Module:
    """A Glow-like flow for ``(N, C, H, W)`` images that keeps every latent; ``H`` and ``W`` need
    ``levels`` halvings."""
    from nflows import transforms
    from nflows.nn import nets

    channels, height, width = shape
    if height % 2**levels or width % 2**levels:
        raise ValueError(f"an image flow with {levels} levels needs H and W divisible by {2 ** levels}, "
                         f"got {height}×{width}")
    layers: list[nn.Module] = []
    for _ in range(levels):
        layers.append(transforms.SqueezeTransform())
        channels *= 4
        for step in range(steps):
            mask = torch.arange(channels) % 2 == step % 2

            def net(in_channels: int, out_channels: int) -> nn.Module:
                return nets.ConvResidualNet(in_channels, out_channels, hidden_channels=hidden, num_blocks=1)

            layers += [transforms.ActNorm(channels), transforms.OneByOneConvolution(channels),
                       transforms.AffineCouplingTransform(mask.int(), net)]
    return Flattened(transforms.CompositeTransform(layers))


def conditional_vector_flow(dim: int, context: int, steps: int = 4, hidden: int = 64) -> nn.Module:
    """A vector flow whose every layer may depend on ``context`` features (``flow(x, context=c)``)."""
    return vector_flow(dim, steps=steps, hidden=hidden, context=context)


def make_flow(shape: Sequence[int], steps: int = 4, hidden: int = 64) -> nn.Module:
    """The flow for samples of per-sample ``shape``: an image flow for ``(C, H, W)``, else a vector flow."""
    if len(shape) == 3:
        return image_flow(shape, hidden=max(16, hidden // 2))
    return vector_flow(math.prod(shape), steps=steps, hidden=hidden)
