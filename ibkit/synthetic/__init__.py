"""Synthetic data with exactly known mutual information (nats), for tests and benchmarks.

- :mod:`ibkit.synthetic.gaussian`: correlated Gaussian vectors, the rho <-> MI formulas and
  MI-preserving elementwise bijections.
- :mod:`ibkit.synthetic.images`: the ICLR-2024 image benchmarks (Gaussian blobs and rectangles)
  whose true MI is that of their Gaussian latents.
- :mod:`ibkit.synthetic.mixtures`: joint Gaussian mixtures (rings, curves, inliers) whose MI is a
  Monte-Carlo average of the exact log-density ratio.
- :mod:`ibkit.synthetic.battery`: the known-MI battery of ``ibkit bench battery``.
"""

from ibkit.synthetic.gaussian import (
    correlated_gaussians,
    correlation_from_mi,
    cube,
    mi_from_correlation,
    normal_to_uniform,
    random_rotation,
    uniform_to_normal,
)
from ibkit.synthetic.images import (
    LATENT_DIMS,
    ImagePairs,
    correlated_image_pairs,
    gaussian_blob_images,
    marginal_images,
    rectangle_images,
    render_images,
    segments_to_uniform,
    structured_latents,
    uniform_to_segments,
)

__all__ = [
    "LATENT_DIMS",
    "ImagePairs",
    "correlated_gaussians",
    "correlated_image_pairs",
    "correlation_from_mi",
    "cube",
    "gaussian_blob_images",
    "marginal_images",
    "mi_from_correlation",
    "normal_to_uniform",
    "random_rotation",
    "rectangle_images",
    "render_images",
    "segments_to_uniform",
    "structured_latents",
    "uniform_to_normal",
    "uniform_to_segments",
]
