"""The settings of an information-plane analysis, validated once and shared by the callback and
:class:`ibkit.analysis.InformationPlaneAnalysis`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ibkit.compression import Compressor
from ibkit.compression.units import check_unit_transform
from ibkit.estimators import DEFAULT_METHOD, MutualInformationEstimator, epochs_estimator
from ibkit.validation import check_number, check_positive_int

#: Code size per layer. The paper compressed to 4; measured on the MNIST main job (8 epochs,
#: probe N = 3,000), 6 keeps most of what 4 loses: I(Y; probs) 2.19 ± 0.02 nats against the
#: floor 2.16 its own predictions give (2.08 at 4: below it), and I(Y; L1) 1.97 against I(Y; L4)
#: 2.19 (1.48 against 2.02 at 4), while the known-truth plane battery stays within its targets
#: (``ibkit bench plane``: 228/234 resolved points at 6, 230/234 at 4).
DEFAULT_LAYER_DIMS = 6


@dataclass(frozen=True)
class PlaneConfig:
    """How the probe inputs and the layers are compressed, and how their MI is estimated.

    Attributes (the arguments of :class:`~ibkit.analysis.InformationPlaneAnalysis`):
        estimator: the estimator object; a method name given here is resolved once
            (``ibkit.estimators.epochs_estimator``: a trained estimator named by string is
            warm-started from epoch to epoch).
        x_compressor: ``"autoencoder"``, ``"pca"``, an object with ``fit_transform`` or ``None``.
        x_dims: code size of the X compressor built from a name.
        x_transform: unit transform of the inputs before ``"pca"`` or no compression.
        layer_compressor: ``"pca"``, a factory ``n_components -> compressor`` or ``None``.
        layer_dims: code size per layer.
        layer_transform: unit transform of each layer, one for all or ``layer -> transform``.
        chain: the layers, in the order given, form a chain (data-processing check).
        strict: raise the first failure at once instead of recording a gap.
        seed: seeds the autoencoder and the capture-time noise.
        threads: the analysis' pool of threads (``None``: ``torch.get_num_threads()`` on the CPU,
            one on an accelerator).
        readout_noise: ``σ`` of the Gaussian noise added to every layer at readout, scaled to each
            unit (``ibkit.layers.readout_noise``): the plane of ``L + σ·s·ε``, well defined for a
            deterministic network. ``None``: the layers as they are.

    Raises:
        ValueError: a setting the analysis does not take, with what it takes.
    """

    estimator: MutualInformationEstimator | str = DEFAULT_METHOD
    x_compressor: str | Compressor | None = "autoencoder"
    x_dims: int = 4
    x_transform: str = "auto"
    layer_compressor: str | Callable[[int], Compressor] | None = "pca"
    layer_dims: int = DEFAULT_LAYER_DIMS
    layer_transform: str | Mapping[str, str] = "auto"
    chain: bool = True
    strict: bool = False
    seed: int = 0
    threads: int | None = None
    readout_noise: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "estimator", epochs_estimator(self.estimator))
        check_positive_int(self.x_dims, "x_dims")
        check_positive_int(self.layer_dims, "layer_dims")
        if self.threads is not None:
            check_positive_int(self.threads, "threads")
        if self.readout_noise is not None:
            check_number(self.readout_noise, "readout_noise", minimum=0.0, open_interval=True)
        if self.x_compressor not in (None, "pca", "autoencoder") and not hasattr(self.x_compressor, "fit_transform"):
            raise ValueError(f"x_compressor must be 'pca', 'autoencoder', None or an object with fit_transform, "
                             f"got {self.x_compressor!r}")
        if self.layer_compressor is not None and self.layer_compressor != "pca" and not callable(self.layer_compressor):
            raise ValueError(f"layer_compressor must be 'pca', a factory n_components -> compressor or None, "
                             f"got {self.layer_compressor!r}")
        check_unit_transform(self.x_transform)
        if self.x_compressor not in (None, "pca") and self.x_transform not in ("auto", "none"):
            raise ValueError(f"x_transform={self.x_transform!r} applies before 'pca' or no compression; an "
                             "autoencoder or compressor object takes the inputs as they are (x_transform='auto' "
                             "or 'none')")
        if isinstance(self.layer_transform, Mapping):
            object.__setattr__(self, "layer_transform", dict(self.layer_transform))
        for transform in self.layer_transform.values() if isinstance(self.layer_transform, dict) \
                else [self.layer_transform]:
            check_unit_transform(transform)

    def transform_of(self, layer: str) -> str:
        """The unit transform of ``layer``."""
        if isinstance(self.layer_transform, dict):
            return self.layer_transform.get(layer, "auto")
        return self.layer_transform

    def threads_on(self, device: torch.device | None) -> int:
        """Layers analysed at once on ``device``: ``threads`` on the CPU, one on an accelerator
        (whose kernels run one at a time anyway, and some of torch's CUDA libraries must not be
        first loaded from two threads at once)."""
        if device is not None and device.type != "cpu":
            return 1
        return self.threads or torch.get_num_threads()

    def settings(self) -> dict[str, Any]:
        """The settings as JSON-safe values (written to ``information_plane.json``)."""
        return {"estimator": self.estimator.settings(),
                "x_compressor": repr(self.x_compressor), "x_dims": self.x_dims, "x_transform": self.x_transform,
                "layer_compressor": repr(self.layer_compressor), "layer_dims": self.layer_dims,
                "layer_transform": self.layer_transform, "chain": self.chain,
                "readout_noise": self.readout_noise, "seed": self.seed, "units": "nats"}
