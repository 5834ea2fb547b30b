"""Bundled LightningModules and training entry points (installed as ``ibkit.models``).

- ``MNISTClassifier``: the stochastic (noise-injected) classifier of Butakov et al. (ICLR 2024),
  trained by ``ibkit train classifier``.
- ``NoiseInjectedDIM``: the noise-injected Deep InfoMax encoder of Butakov et al. (ICLR 2025),
  whose embeddings match a Gaussian or uniform prior; trained by ``ibkit train dim`` and swept
  over the noise level by ``ibkit bench dim``.
"""

from ibkit.models.channels import GaussianChannel, NoiseChannel, UniformChannel
from ibkit.models.classifier import MNISTClassifier
from ibkit.models.dim import NoiseInjectedDIM, embed
from ibkit.models.encoders import ConvBackbone, DIMEncoder, GaussianNormaliser, MLPBackbone, UniformNormaliser
from ibkit.models.views import RandomAffine

__all__ = [
    "ConvBackbone",
    "DIMEncoder",
    "GaussianChannel",
    "GaussianNormaliser",
    "MLPBackbone",
    "MNISTClassifier",
    "NoiseChannel",
    "NoiseInjectedDIM",
    "RandomAffine",
    "UniformChannel",
    "UniformNormaliser",
    "embed",
]
