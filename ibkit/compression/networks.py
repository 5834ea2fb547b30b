"""Encoder/decoder networks for the autoencoder compressors.

* :func:`mlp_autoencoder`: vectors ``(N, d)``; ``d -> hidden... -> latent`` with a tanh
  bottleneck and a mirrored decoder with a linear output.
* :func:`conv_autoencoder`: images ``(N, C, H, W)`` of any size; blocks of
  [Conv 3×3 'same' -> MaxPool 2 -> BatchNorm -> LeakyReLU(0.2)] halve the image (rounding up)
  until it is 1×1, then Linear -> latent -> tanh. The decoder mirrors it with
  [Upsample 2 -> crop to the encoder's size at that stage -> Conv 3×3 -> BatchNorm -> LeakyReLU]
  blocks, the last one (back at full size) a plain linear Conv 3×3 to ``C`` channels, so every
  ``H×W`` round-trips exactly. Channel counts are kept small at full resolution (default 4),
  where almost all of the compute is.

Both return ``(encoder, decoder)`` with ``encoder: (N, *input_shape) -> (N, latent)`` in
``(-1, 1)`` and ``decoder: (N, latent) -> (N, *input_shape)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

NEGATIVE_SLOPE = 0.2


def check_widths(widths: Sequence[int], name: str) -> tuple[int, ...]:
    """Return ``widths`` as a tuple if it is a non-empty sequence of positive ints, else raise."""
    widths = tuple(widths)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {widths!r}")
    return widths


def mlp_autoencoder(n_features: int, latent: int, hidden: Sequence[int] = (64, 32)) -> tuple[nn.Module, nn.Module]:
    """Dense autoencoder for ``(N, n_features)`` vectors.

    Args:
        n_features: input dimension ``d``.
        latent: code dimension.
        hidden: widths of the encoder's hidden layers (the decoder uses them reversed).
    """
    hidden = check_widths(hidden, "hidden")
    widths = (n_features, *hidden)

    encoder_layers: list[nn.Module] = []
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        encoder_layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(NEGATIVE_SLOPE)]
    encoder_layers += [nn.Linear(widths[-1], latent), nn.Tanh()]

    reversed_widths = (latent, *reversed(widths))
    decoder_layers: list[nn.Module] = []
    for width_in, width_out in zip(reversed_widths[:-2], reversed_widths[1:-1]):
        decoder_layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(NEGATIVE_SLOPE)]
    decoder_layers.append(nn.Linear(reversed_widths[-2], reversed_widths[-1]))
    return nn.Sequential(*encoder_layers), nn.Sequential(*decoder_layers)


def downsampled_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """Spatial sizes after each ceil-mode halving, from ``(height, width)`` down to ``(1, 1)``."""
    sizes = [(height, width)]
    while sizes[-1] != (1, 1):
        h, w = sizes[-1]
        sizes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return sizes


class _DownBlock(nn.Sequential):
    """Conv 3×3 'same' -> MaxPool 2 (ceil mode, only along axes longer than 1) -> BN -> LeakyReLU."""

    def __init__(self, channels_in: int, channels_out: int, size: tuple[int, int]) -> None:
        kernel = tuple(2 if s > 1 else 1 for s in size)
        super().__init__(
            nn.Conv2d(channels_in, channels_out, 3, padding=1),
            nn.MaxPool2d(kernel, ceil_mode=True),
            nn.BatchNorm2d(channels_out),
            nn.LeakyReLU(NEGATIVE_SLOPE),
        )


class _UpsampleCrop(nn.Module):
    """Nearest-neighbour upsampling by 2 (along axes of target length > 1), cropped to ``size``.

    It inverts the geometry of a ceil-mode 2×2 max-pool: output pixel ``i`` comes from pooled
    pixel ``i // 2``.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size
        self.scale = tuple(2 if s > 1 else 1 for s in size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.size
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")[..., :height, :width]

    def extra_repr(self) -> str:
        return f"size={self.size}"


class _UpBlock(nn.Sequential):
    """Upsample 2 and crop to ``size`` -> Conv 3×3 'same' -> BN -> LeakyReLU."""

    def __init__(self, channels_in: int, channels_out: int, size: tuple[int, int]) -> None:
        super().__init__(
            _UpsampleCrop(size),
            nn.Conv2d(channels_in, channels_out, 3, padding=1),
            nn.BatchNorm2d(channels_out),
            nn.LeakyReLU(NEGATIVE_SLOPE),
        )


def conv_autoencoder(
    image_shape: tuple[int, int, int], latent: int, channels: Sequence[int] = (4, 8, 16)
) -> tuple[nn.Module, nn.Module]:
    """Convolutional autoencoder for ``(N, C, H, W)`` images.

    Args:
        image_shape: ``(C, H, W)``.
        latent: code dimension.
        channels: feature maps of the successive down blocks; blocks beyond its length reuse
            the last value. The number of blocks is ``ceil(log2(max(H, W)))``.
    """
    channels = check_widths(channels, "channels")
    in_channels, height, width = image_shape
    sizes = downsampled_sizes(height, width)
    n_blocks = len(sizes) - 1
    widths = [in_channels] + [channels[min(i, len(channels) - 1)] for i in range(n_blocks)]

    encoder = nn.Sequential(
        *(_DownBlock(widths[i], widths[i + 1], sizes[i]) for i in range(n_blocks)),
        nn.Flatten(),
        nn.Linear(widths[-1], latent),
        nn.Tanh(),
    )
    # Up block j undoes down block i = n_blocks - 1 - j, from sizes[i + 1] back to sizes[i] and
    # from widths[i + 1] to widths[i] channels; the last one (back to the input) is a plain
    # linear conv to the input channels.
    up_blocks: list[nn.Module] = [
        _UpBlock(widths[i + 1], widths[i], sizes[i]) for i in range(n_blocks - 1, 0, -1)
    ]
    if n_blocks:
        up_blocks += [_UpsampleCrop(sizes[0]), nn.Conv2d(widths[1], in_channels, 3, padding=1)]
    decoder = nn.Sequential(
        nn.Linear(latent, widths[-1]),
        nn.LeakyReLU(NEGATIVE_SLOPE),
        nn.Unflatten(1, (widths[-1], 1, 1)),
        *up_blocks,
    )
    return encoder, decoder
