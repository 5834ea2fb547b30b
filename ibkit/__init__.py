"""ibkit: Information Bottleneck analysis for PyTorch Lightning.

Entropy and mutual-information estimators (nats, with standard errors), compressors, noise layers,
data modules, synthetic data with known MI, the trainer-free information-plane analysis and the
Lightning callback (``ibkit.callbacks.InformationPlane``).

The names below are loaded on first use, so ``import ibkit`` (and the ``ibkit`` command's help)
does not pay for torch and Lightning until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "Estimate": "ibkit.result",
    "entropy": "ibkit.estimators",
    "mutual_information": "ibkit.estimators",
    "make_estimator": "ibkit.estimators",
    "InformationPlaneAnalysis": "ibkit.analysis",
    "InformationPlaneHistory": "ibkit.history",
    "PlanePoint": "ibkit.history",
    "AdditiveGaussianNoise": "ibkit.layers",
    "NoiseLayer": "ibkit.layers",
    "eval_noise": "ibkit.layers",
    "DigitsDataModule": "ibkit.data",
    "MNISTDataModule": "ibkit.data",
    "PCA": "ibkit.compression",
    "AutoencoderCompressor": "ibkit.compression",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from ibkit.analysis import InformationPlaneAnalysis
    from ibkit.compression import PCA, AutoencoderCompressor
    from ibkit.data import DigitsDataModule, MNISTDataModule
    from ibkit.estimators import entropy, make_estimator, mutual_information
    from ibkit.history import InformationPlaneHistory, PlanePoint
    from ibkit.layers import AdditiveGaussianNoise, NoiseLayer, eval_noise
    from ibkit.result import Estimate


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ibkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
