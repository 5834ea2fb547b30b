"""Synthetic image pairs with exactly known mutual information (Butakov et al., ICLR 2024, §4.1).

Pipeline, applied to each side of a correlated Gaussian pair (:func:`correlated_gaussians`):

1. ``u = Phi(xi)`` maps the Gaussian latent to the unit cube;
2. ``f1``: ``u`` becomes image parameters (:func:`structured_latents`) -- a blob centre in
   ``[0, 1]^2`` (``"gaussians"``, 2-D latent) or a rectangle ``(x0, x1, y0, y1)`` in pixel units
   (``"rectangles"``, 4-D latent, each pair through the triangle map :func:`uniform_to_segments`);
3. ``f2``: the parameters are rasterised (:func:`gaussian_blob_images`, :func:`rectangle_images`).

Every step is injective, so ``I(X; Y) = I(xi; eta) = mi`` exactly, both for the images and for the
parameters. Image convention: ``images[n, 0, row, col]``; ``x`` runs along columns and ``y`` along
rows. Images are float32 CPU tensors of shape ``(N, 1, size, size)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from ibkit.synthetic.gaussian import (
    Seed,
    correlated_gaussians,
    make_generator,
    normal_to_uniform,
)
from ibkit.validation import check_choice, check_positive_int

#: Latent dimension per side for each image kind.
LATENT_DIMS = {"gaussians": 2, "rectangles": 4}

#: Exponent scale of the Gaussian blob, ``exp(-BLOB_SCALE * squared distance)`` (variance 1/20).
BLOB_SCALE = 10.0


class ImagePairs(NamedTuple):
    """Paired images and the parameters they were drawn from.

    ``x_images``/``y_images``: ``(N, 1, size, size)`` float32. ``x_latent``/``y_latent``: float64,
    ``(N, 2)`` blob centres in ``[0, 1]^2`` or ``(N, 4)`` rectangles ``(x0, x1, y0, y1)`` in pixels.
    """

    x_images: torch.Tensor
    y_images: torch.Tensor
    x_latent: torch.Tensor
    y_latent: torch.Tensor


def _check_kind(kind: str) -> str:
    return check_choice(kind, "image kind", sorted(LATENT_DIMS))


def _as_parameters(data: Any, name: str, width: int) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data)
    tensor = tensor.to(device="cpu", dtype=torch.float64)
    if tensor.ndim != 2 or tensor.shape[1] != width:
        raise ValueError(f"{name} must have shape (N, {width}), got {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return tensor


def _outer_images(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Separable images ``rows[n, r] * cols[n, c]`` as ``(N, 1, R, C)`` float32."""
    return (rows[:, :, None] * cols[:, None, :]).unsqueeze(1).to(torch.float32)


def gaussian_blob_images(centres: Any, size: int) -> torch.Tensor:
    """Rasterise Gaussian blobs ``exp(-10 ((x - u0)^2 + (y - u1)^2))`` on a ``linspace(0, 1, size)`` grid.

    Args:
        centres: ``(N, 2)`` blob centres ``(u0, u1)`` in ``[0, 1]^2`` (``u0`` along columns).
        size: image side in pixels, ``>= 2``.

    Returns:
        ``(N, 1, size, size)`` float32 images with values in ``(0, 1]``.
    """
    size = check_positive_int(size, "size", minimum=2)
    centres = _as_parameters(centres, "centres", 2)
    if bool(((centres < 0) | (centres > 1)).any()):
        raise ValueError("centres must lie in [0, 1]^2")
    grid = torch.linspace(0.0, 1.0, size, dtype=torch.float64)
    profile = torch.exp(-BLOB_SCALE * (grid[None, :, None] - centres[:, None, :]) ** 2)  # (N, size, 2)
    return _outer_images(rows=profile[..., 1], cols=profile[..., 0])


def _pixel_overlap(start: torch.Tensor, end: torch.Tensor, size: int) -> torch.Tensor:
    """Length of ``[start, end]`` inside each unit pixel ``[j, j + 1]``: ``(N,)`` -> ``(N, size)``."""
    left = torch.arange(size, dtype=torch.float64)
    upper = torch.minimum(left + 1, end[:, None])
    lower = torch.maximum(left, start[:, None])
    return (upper - lower).clamp_min(0.0)


def rectangle_images(coords: Any, size: int) -> torch.Tensor:
    """Rasterise axis-aligned rectangles, anti-aliased exactly: pixel = its area of overlap.

    Pixel ``(row, col)`` is the unit square ``[col, col + 1] x [row, row + 1]``; its value is the
    area it shares with the rectangle, so the pixel sum equals the rectangle's area and sub-pixel
    positions stay recoverable.

    Args:
        coords: ``(N, 4)`` rectangles ``(x0, x1, y0, y1)`` in pixel units,
            ``0 <= x0 < x1 <= size`` and ``0 <= y0 < y1 <= size``.
        size: image side in pixels, ``>= 2``.

    Returns:
        ``(N, 1, size, size)`` float32 images with values in ``[0, 1]``.
    """
    size = check_positive_int(size, "size", minimum=2)
    coords = _as_parameters(coords, "coords", 4)
    x0, x1, y0, y1 = coords.unbind(dim=1)
    valid = (0 <= x0) & (x0 < x1) & (x1 <= size) & (0 <= y0) & (y0 < y1) & (y1 <= size)
    if not bool(valid.all()):
        bad = int((~valid).nonzero()[0])
        raise ValueError(
            f"coords must satisfy 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size (size={size}); "
            f"row {bad} is {coords[bad].tolist()}"
        )
    return _outer_images(rows=_pixel_overlap(y0, y1, size), cols=_pixel_overlap(x0, x1, size))


def uniform_to_segments(
    u1: torch.Tensor, u2: torch.Tensor, min_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map ``(u1, u2) ~ U(0, 1)^2`` to a segment ``[a, b]`` uniform on ``{a >= 0, a + mu <= b <= 1}``.

    ``a = (1 - mu)(1 - sqrt(1 - u1))`` inverts the marginal CDF of ``a`` on the triangle,
    ``1 - (1 - a / (1 - mu))^2``; then ``b = a + mu + u2 (1 - a - mu)`` is uniform given ``a``.
    Injective on ``[0, 1) x [0, 1]``.

    Args:
        u1, u2: tensors of equal shape with values in ``[0, 1]``.
        min_fraction: ``mu``, the minimum segment length, in ``[0, 1)``.

    Returns:
        ``(a, b)``, tensors of ``u1``'s shape with ``0 <= a``, ``a + mu <= b <= 1``.
    """
    if not 0.0 <= min_fraction < 1.0:
        raise ValueError(f"min_fraction must lie in [0, 1), got {min_fraction!r}")
    if u1.shape != u2.shape:
        raise ValueError(
            f"u1 and u2 must have the same shape, got {tuple(u1.shape)} and {tuple(u2.shape)}"
        )
    for name, u in (("u1", u1), ("u2", u2)):
        if not bool(((u >= 0) & (u <= 1)).all()):
            raise ValueError(f"{name} must lie in [0, 1]")
    a = (1.0 - min_fraction) * (1.0 - torch.sqrt(1.0 - u1))
    slack = (1.0 - a - min_fraction).clamp_min(0.0)  # room left for b above a + mu
    b = 1.0 - (1.0 - u2) * slack  # = a + mu + u2 * slack, written so that b <= 1 survives rounding
    return a, b


def segments_to_uniform(
    a: torch.Tensor, b: torch.Tensor, min_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`uniform_to_segments` on its image: ``(a, b)`` back to ``(u1, u2)``.

    ``u1 = 1 - (1 - a / (1 - mu))^2`` and ``u2 = (b - a - mu) / (1 - a - mu)``; needs ``a < 1 - mu``.
    """
    if not 0.0 <= min_fraction < 1.0:
        raise ValueError(f"min_fraction must lie in [0, 1), got {min_fraction!r}")
    slack = 1.0 - a - min_fraction
    if not bool((slack > 0).all()):
        raise ValueError("segments_to_uniform needs a < 1 - min_fraction for every segment")
    u1 = 1.0 - (1.0 - a / (1.0 - min_fraction)) ** 2
    u2 = (b - a - min_fraction) / slack
    return u1, u2


def structured_latents(
    kind: str, xi: torch.Tensor, size: int, *, min_side: float = 2.0
) -> torch.Tensor:
    """The map ``f1``: Gaussian latents to image parameters, through ``u = Phi(xi)``.

    Args:
        kind: ``"gaussians"`` (``xi`` of shape ``(N, 2)``) or ``"rectangles"`` (``(N, 4)``).
        xi: Gaussian latents, float64.
        size: image side in pixels (rectangles are scaled to it).
        min_side: rectangles only: minimum side length in pixels, ``0 < min_side < size``
            (the paper's 2 px at size 32).

    Returns:
        ``(N, 2)`` blob centres in ``[0, 1]^2``, or ``(N, 4)`` rectangles ``(x0, x1, y0, y1)``
        in pixel units.
    """
    width = LATENT_DIMS[_check_kind(kind)]
    size = check_positive_int(size, "size", minimum=2)
    u = normal_to_uniform(_as_parameters(xi, "xi", width))
    if kind == "gaussians":
        return u
    if not 0.0 < min_side < size:
        raise ValueError(f"min_side must lie in (0, size={size}) pixels, got {min_side!r}")
    x0, x1 = uniform_to_segments(u[:, 0], u[:, 1], min_side / size)
    y0, y1 = uniform_to_segments(u[:, 2], u[:, 3], min_side / size)
    return size * torch.stack([x0, x1, y0, y1], dim=1)


def render_images(kind: str, latents: torch.Tensor, size: int) -> torch.Tensor:
    """The map ``f2``: rasterise parameters from :func:`structured_latents` to ``(N, 1, size, size)``."""
    if _check_kind(kind) == "gaussians":
        return gaussian_blob_images(latents, size)
    return rectangle_images(latents, size)


def correlated_image_pairs(
    kind: str,
    size: int,
    n_samples: int,
    mi: float,
    *,
    seed: Seed = None,
    min_side: float = 2.0,
) -> ImagePairs:
    """Pairs of images ``(X, Y)`` with ``I(X; Y) = mi`` nats exactly.

    Correlated Gaussian latents (2-D per side for ``"gaussians"``, 4-D for ``"rectangles"``) with
    total MI ``mi``, mixed by random rotations, pass through ``Phi``, ``f1`` and ``f2`` (see the
    module docstring). The paper uses size 16 or 32.

    Args:
        kind: ``"gaussians"`` or ``"rectangles"``.
        size: image side in pixels, ``>= 2``.
        n_samples: number of pairs ``N``.
        mi: true mutual information in nats, finite and ``>= 0``.
        seed: int, CPU ``torch.Generator`` or ``None``.
        min_side: rectangles only: minimum side length in pixels.

    Returns:
        :class:`ImagePairs` ``(x_images, y_images, x_latent, y_latent)``.
    """
    width = LATENT_DIMS[_check_kind(kind)]
    size = check_positive_int(size, "size", minimum=2)
    xi, eta = correlated_gaussians(n_samples, mi, width, width, mix=True, seed=seed)
    x_latent = structured_latents(kind, xi, size, min_side=min_side)
    y_latent = structured_latents(kind, eta, size, min_side=min_side)
    return ImagePairs(
        render_images(kind, x_latent, size), render_images(kind, y_latent, size), x_latent, y_latent
    )


def marginal_images(
    kind: str, size: int, n_samples: int, seed: Seed = None, *, min_side: float = 2.0
) -> torch.Tensor:
    """Independent images from the marginal of either side (``xi ~ N(0, I)``), e.g. to train an AE.

    Returns:
        ``(n_samples, 1, size, size)`` float32 images.
    """
    width = LATENT_DIMS[_check_kind(kind)]
    size = check_positive_int(size, "size", minimum=2)
    n = check_positive_int(n_samples, "n_samples")
    xi = torch.randn(n, width, generator=make_generator(seed), dtype=torch.float64)
    return render_images(kind, structured_latents(kind, xi, size, min_side=min_side), size)
