"""Encoders for noise-injected Deep InfoMax: a backbone followed by a normaliser.

The normaliser imposes the constraint under which mutual-information maximisation through a
noise channel matches a prior (see :mod:`ibkit.models.channels`):

* ``"gaussian"`` prior: :class:`GaussianNormaliser`, a ``BatchNorm1d`` without affine parameters
  (zero mean, unit variance per coordinate over the batch; running statistics in eval mode);
* ``"uniform"`` prior: :class:`UniformNormaliser`, an elementwise sigmoid (support ``[0, 1]^d``).

Backbones map inputs to ``(N, d)`` features: :class:`ConvBackbone` for images (28×28 MNIST,
8×8 digits or any size ≥ 8), :class:`MLPBackbone` for vectors, or any user ``nn.Module``.
Layers have stable names (``backbone.block1`` ... ``normaliser``) listed in
:attr:`DIMEncoder.default_ib_layers`, the layers the information-plane callback analyses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ibkit.capture import default_layer_names
from ibkit.validation import check_choice, check_positive_int

PRIORS = ("gaussian", "uniform")


def check_prior(prior: str) -> str:
    """Return ``prior`` if it is ``"gaussian"`` or ``"uniform"``, else raise ``ValueError``."""
    return check_choice(prior, "prior", PRIORS)


def check_dim(dim: int) -> int:
    """Return ``dim`` if it is an integer ``>= 1``, else raise ``ValueError``."""
    return check_positive_int(dim, "embedding dimension d")


class GaussianNormaliser(nn.BatchNorm1d):
    """``BatchNorm1d(d, affine=False)``: unit variance per coordinate (the Gaussian prior's power constraint).

    Raises ``ValueError`` for a training batch of one sample, whose variance is undefined.

    Shape: ``(N, d) -> (N, d)``.
    """

    def __init__(self, dim: int, momentum: float = 0.1):
        super().__init__(check_dim(dim), affine=False, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] < 2:
            raise ValueError(
                "the Gaussian normaliser (BatchNorm without affine parameters) needs training batches "
                f"of at least 2 samples, got {x.shape[0]}; use a batch size >= 2"
            )
        return super().forward(x)


class UniformNormaliser(nn.Module):
    """Elementwise sigmoid: support ``[0, 1]^d`` (the uniform prior's constraint). Shape ``(N, d) -> (N, d)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


def make_normaliser(prior: str, dim: int) -> nn.Module:
    """The normaliser for ``prior`` (``"gaussian"`` or ``"uniform"``) and embedding size ``dim``."""
    check_dim(dim)
    return GaussianNormaliser(dim) if check_prior(prior) == "gaussian" else UniformNormaliser()


class ConvBlock(nn.Sequential):
    """3×3 convolution (padding 1, or none) → 2×2 average pooling → LeakyReLU → BatchNorm2d."""

    def __init__(self, in_channels: int, out_channels: int, padding: int = 1):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=padding), nn.AvgPool2d(2), nn.LeakyReLU(),
                         nn.BatchNorm2d(out_channels))


def _final_size(size: int, padding: int) -> int:
    for _ in range(3):
        size = (size + 2 * padding - 2) // 2
    return size


class ConvBackbone(nn.Module):
    """Small ConvNet: three :class:`ConvBlock` (``block1..3``), ``pool``, ``hidden``, ``projection``.

    The paper's MNIST encoder: three conv stages (32→64→128) with average pooling, then
    128→128→d. With ``padding="valid"`` (the paper's, chosen by ``"auto"`` when the image allows it)
    a 28×28 image shrinks to 1×1 (28→13→5→1) and ``pool`` only flattens, so the last convolution
    still sees where strokes are; smaller images (8×8 digits) use padded convolutions and global
    average pooling (8→4→2→1).

    Args:
        in_channels: image channels ``C``.
        out_features: output size ``d``.
        widths: channels of the three blocks.
        hidden: width of the fully connected layer.
        padding: ``"auto"``, ``"valid"`` or ``"same"``.
        image_size: the smaller of H and W, for ``"auto"`` (default 28).

    Shape: ``(N, C, H, W) -> (N, d)`` with ``H, W >= 8``.
    """

    def __init__(self, in_channels: int, out_features: int, widths: Sequence[int] = (32, 64, 128), hidden: int = 128,
                 padding: str = "auto", image_size: int = 28):
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"widths must give the channels of 3 blocks, got {tuple(widths)}")
        check_choice(padding, "padding", ("auto", "valid", "same"))
        if padding == "auto":
            padding = "valid" if _final_size(image_size, 0) >= 1 else "same"
        pad = 0 if padding == "valid" else 1
        self.padding = padding
        self.block1 = ConvBlock(in_channels, widths[0], pad)
        self.block2 = ConvBlock(widths[0], widths[1], pad)
        self.block3 = ConvBlock(widths[1], widths[2], pad)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(widths[2], hidden), nn.LeakyReLU())
        self.projection = nn.Linear(hidden, out_features)

    @property
    def default_ib_layers(self) -> tuple[str, ...]:
        """The layers the information-plane callback analyses by default."""
        return ("block1", "block2", "block3", "hidden")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or min(x.shape[-2:]) < 8:
            raise ValueError(f"ConvBackbone needs images (N, C, H, W) with H, W >= 8, got shape {tuple(x.shape)}")
        return self.projection(self.hidden(self.pool(self.block3(self.block2(self.block1(x))))))


class MLPBackbone(nn.Module):
    """MLP for vectors: ``hidden1, hidden2, ...`` (Linear + LeakyReLU) then ``projection`` to ``d``.

    Inputs with more than two dimensions are flattened. Shape: ``(N, *) -> (N, d)``.

    Args:
        in_features: flattened input size.
        out_features: output size ``d``.
        hidden: widths of the hidden layers.
    """

    def __init__(self, in_features: int, out_features: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        width = in_features
        for index, size in enumerate(hidden, start=1):
            self.add_module(f"hidden{index}", nn.Sequential(nn.Linear(width, size), nn.LeakyReLU()))
            width = size
        self.projection = nn.Linear(width, out_features)
        self.depth = len(hidden)

    @property
    def default_ib_layers(self) -> tuple[str, ...]:
        """The hidden layers, the ones the information-plane callback analyses by default."""
        return tuple(f"hidden{index}" for index in range(1, self.depth + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for name in self.default_ib_layers:
            h = getattr(self, name)(h)
        return self.projection(h)


def make_backbone(input_shape: Sequence[int], dim: int, conv_widths: Sequence[int] = (32, 64, 128),
                  padding: str = "auto") -> nn.Module:
    """:class:`ConvBackbone` (block widths ``conv_widths``, its ``padding``) for image shapes
    ``(C, H, W)`` with ``H, W >= 8``, else :class:`MLPBackbone`."""
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive sizes, got {tuple(input_shape)}")
    if len(shape) == 3 and min(shape[1:]) >= 8:
        return ConvBackbone(shape[0], dim, widths=conv_widths, padding=padding, image_size=min(shape[1:]))
    return MLPBackbone(math.prod(shape), dim)


class DIMEncoder(nn.Module):
    """Backbone + normaliser: ``x -> normaliser(backbone(x))``, the embedding ``(N, d)``.

    Args:
        backbone: any module mapping ``(N, *)`` inputs to ``(N, d)`` features.
        dim: embedding dimension ``d``.
        prior: ``"gaussian"`` (non-affine BatchNorm) or ``"uniform"`` (sigmoid).
    """

    def __init__(self, backbone: nn.Module, dim: int, prior: str = "gaussian"):
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise ValueError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
        self.dim = check_dim(dim)
        self.prior = check_prior(prior)
        self.backbone = backbone
        self.normaliser = make_normaliser(prior, dim)

    @property
    def default_ib_layers(self) -> tuple[str, ...]:
        """The backbone's layers (its ``default_ib_layers`` or top-level children) and ``normaliser``."""
        return (*(f"backbone.{name}" for name in default_layer_names(self.backbone)), "normaliser")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"the backbone must return features of shape (N, {self.dim}), got {tuple(features.shape)}")
        return self.normaliser(features)
