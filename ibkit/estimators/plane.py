"""I(X;L) and I(Y;L) of many representations L against one fixed probe set (X, Y).

The information plane of a network asks the same two questions of every layer and every epoch:
how much does L tell about the (compressed) input X, and about the labels Y. With an
entropy-based estimator both answers share work: H(X) is computed once for all layers, and each
layer's H(L) serves both ``H(X) + H(L) − H(X,L)`` and ``H(L) − Σ_y p(y) H(L | Y=y)``. The values
are exactly those of ``ibkit.mutual_information`` on the same data; only repeated work is saved.
"""

from __future__ import annotations

from typing import Any

import torch

from ibkit.estimators import make_estimator
from ibkit.estimators.base import EntropyEstimator, break_ties
from ibkit.result import Estimate
from ibkit.validation import as_labels, as_samples, check_same_length


class InformationPlaneEstimator:
    """Estimate ``I(X;L)`` and ``I(Y;L)`` (nats) for many ``L`` with one fixed probe ``(X, Y)``.

    Args:
        x: ``(N, dx)`` probe codes (continuous), or ``None`` if only I(Y;L) is wanted.
        labels: ``(N,)`` integer class labels, or ``None`` if only I(X;L) is wanted.
        method: estimator name as for ``ibkit.mutual_information``.
        k: neighbour order of the kNN estimators.
        device: where to compute; default is the inputs' device.

    Call ``i_xl(layer)`` and ``i_yl(layer)`` with the same ``(N, dl)`` tensor: the layer's
    entropy is computed once for both.
    """

    def __init__(self, x: Any, labels: Any, method: str = "wkl", *, k: int = 5,
                 device: torch.device | str | None = None):
        self.estimator = make_estimator(method, k=k, device=device)
        self.device = device
        if x is None and labels is None:
            raise ValueError("give probe codes x, labels, or both")
        self.x = None if x is None else break_ties(as_samples(x, "x", device), "x")
        self.labels = None if labels is None else as_labels(labels, "labels", device)
        if self.x is not None and self.labels is not None:
            check_same_length(self.x, self.labels, "x", "labels")
        self._x_terms: torch.Tensor | None = None
        self._layer: tuple[Any, torch.Tensor, torch.Tensor | None] | None = None

    def _prepare(self, layer: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Validated layer samples and (entropy-based methods) their entropy terms, memoised."""
        if self._layer is None or self._layer[0] is not layer:
            samples = break_ties(as_samples(layer, "layer", self.device), "layer")
            check_same_length(self.x if self.x is not None else self.labels, samples, "the probe", "layer")
            terms = (self.estimator.entropy_terms(samples, "layer")
                     if isinstance(self.estimator, EntropyEstimator) else None)
            self._layer = (layer, samples, terms)
        return self._layer[1], self._layer[2]

    def i_xl(self, layer: Any) -> Estimate:
        """``I(X; L)`` for layer codes ``(N, dl)``."""
        if self.x is None:
            raise ValueError("no probe codes x were given, so I(X;L) cannot be estimated")
        samples, terms = self._prepare(layer)
        if terms is None:
            return self.estimator.mutual_information(self.x, samples)
        if self._x_terms is None:
            self._x_terms = self.estimator.entropy_terms(self.x, "x")
        pointwise = self.estimator.continuous_terms(self.x, samples, self._x_terms, terms)
        return Estimate.from_terms(pointwise, self.estimator.name)

    def i_yl(self, layer: Any) -> Estimate:
        """``I(Y; L)`` for layer codes ``(N, dl)`` and the probe labels."""
        if self.labels is None:
            raise ValueError("no probe labels were given, so I(Y;L) cannot be estimated")
        samples, terms = self._prepare(layer)
        if terms is None:
            return self.estimator.mutual_information(samples, self.labels, discrete_y=True)
        pointwise = self.estimator.continuous_discrete_terms(samples, self.labels, terms)
        return Estimate.from_terms(pointwise, self.estimator.name)
