"""Stochastic views of an input batch for Deep InfoMax: input noise and optional augmentation."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ibkit.layers import check_generator, draw_noise


class RandomAffine(nn.Module):
    """Per-sample random affine augmentation of images (rotation, scale, translation), batched.

    Each image gets its own rotation ``U(−degrees, degrees)``, scale ``U(1−scale, 1+scale)`` and
    shift ``U(−translate, translate)`` (fraction of the image size); pixels are resampled
    bilinearly with zero padding (inputs are expected standardised, so 0 is about the background
    mean). Active in training mode only.

    Args:
        degrees, scale, translate: augmentation ranges (non-negative).
        generator: optional ``torch.Generator`` for reproducible draws.

    Shape: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, degrees: float = 10.0, scale: float = 0.1, translate: float = 0.1,
                 generator: torch.Generator | None = None):
        super().__init__()
        for name, value in (("degrees", degrees), ("scale", scale), ("translate", translate)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
        if scale >= 1:
            raise ValueError(f"scale must be < 1 (a scale factor 1 ± scale), got {scale!r}")
        self.degrees, self.scale, self.translate = float(degrees), float(scale), float(translate)
        self.generator = check_generator(generator)

    def _uniform(self, n: int, half_width: float, like: torch.Tensor) -> torch.Tensor:
        """``(n,)`` draws from ``U(−half_width, half_width)`` with ``like``'s dtype and device."""
        return (2 * draw_noise(like, torch.rand, self.generator, shape=(n,)) - 1) * half_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if x.ndim != 4:
            raise ValueError(f"RandomAffine needs images (N, C, H, W), got shape {tuple(x.shape)}")
        n = x.shape[0]
        angle = self._uniform(n, math.radians(self.degrees), x)
        zoom = 1 + self._uniform(n, self.scale, x)
        shift = torch.stack([self._uniform(n, 2 * self.translate, x), self._uniform(n, 2 * self.translate, x)], 1)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
