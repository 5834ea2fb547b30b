"""Bundled LightningModules and training entry points (installed as ``ibkit.models``).

``MNISTClassifier``: the stochastic (noise-injected) classifier of Butakov et al. (ICLR 2024),
trained by ``ibkit train classifier``.
"""

from ibkit.models.classifier import MNISTClassifier

__all__ = ["MNISTClassifier"]
