"""I(X;L) and I(Y;L) of many representations L against one fixed probe set (X, Y).

The information plane of a network asks the same two questions of every layer and every epoch:
how much does L tell about the (compressed) input X, and about the labels Y. With an
entropy-based estimator they share work: H(X) is computed once for all layers and epochs, and
each layer is validated and preprocessed once for both questions. The values are exactly those of
``ibkit.mutual_information`` on the same data; only repeated work is saved.

A curve must come from one estimator: a method that changed between epochs (an entropy estimate
in one, its KSG fallback in the next) would draw a jump that is an artefact of the switch. So
``i_xl``/``i_yl`` take the ``method`` that must produce the estimate: ``None`` lets the
estimator decide (fallback included) and the caller keeps the ``Estimate.method`` it got for the
rest of the curve.
"""

from __future__ import annotations

from typing import Any

import torch

from ibkit.estimators import DEFAULT_METHOD, resolve_estimator
from ibkit.estimators.base import MutualInformationEstimator, Prepared
from ibkit.estimators.entropy_estimator import EntropyEstimator
from ibkit.result import Estimate
from ibkit.validation import as_labels, check_same_length


class InformationPlaneEstimator:
    """Estimate ``I(X;L)`` and ``I(Y;L)`` (nats) for many ``L`` with one fixed probe ``(X, Y)``.

    Args:
        x: ``(N, dx)`` probe codes (continuous), or ``None`` if only I(Y;L) is wanted.
        labels: ``(N,)`` integer class labels, or ``None`` if only I(X;L) is wanted.
        method: estimator name or object, as for ``ibkit.mutual_information``.
        **params: the method's parameters when ``method`` is a name.

    Call ``i_xl(layer, name)`` and ``i_yl(layer, name)`` with the same ``(N, dl)`` tensor: the
    layer is prepared once for both. Different layers (names) may be estimated in parallel threads.
    """

    def __init__(self, x: Any, labels: Any, method: str | MutualInformationEstimator = DEFAULT_METHOD,
                 **params: Any):
        self.estimator = resolve_estimator(method, **params)
        if x is None and labels is None:
            raise ValueError("give probe codes x, labels, or both")
        self.x = None if x is None else self.estimator.prepare(x, "x")
        self.labels = None if labels is None else as_labels(labels, "labels", self.estimator.device)
        if self.x is not None and self.labels is not None:
            check_same_length(self.x.samples, self.labels, "x", "labels")
        self._x_terms: torch.Tensor | None = None
        if self.x is not None and isinstance(self.estimator, EntropyEstimator):
            self._x_terms = self.estimator.entropy_terms(self.x.samples, "x")
        self._layers: dict[str, tuple[Any, Prepared]] = {}

    def _layer_samples(self, layer: Any, name: str) -> Prepared:
        """The prepared layer, memoised per name for its most recent tensor."""
        memo = self._layers.get(name)
        if memo is None or memo[0] is not layer:
            prepared = self.estimator.prepare(layer, name)
            reference = self.x.samples if self.x is not None else self.labels
            check_same_length(reference, prepared.samples, "the probe", name)
            memo = self._layers[name] = (layer, prepared)
        return memo[1]

    def i_xl(self, layer: Any, name: str = "layer", method: str | None = None) -> Estimate:
        """``I(X; L)`` for layer codes ``(N, dl)``; ``name`` labels the layer in messages.

        ``method``: the method that must produce the estimate (the curve's, see the module
        docstring), or ``None`` to let the estimator choose (its fallback included). Not bounded
        above: the caller decides what an estimate beyond log N means.
        """
        if self.x is None:
            raise ValueError("no probe codes x were given, so I(X;L) cannot be estimated")
        prepared = self._layer_samples(layer, name)
        estimator = self.estimator
        if method is None or method == estimator.name:
            if isinstance(estimator, EntropyEstimator):
                estimate = estimator.continuous_estimate(self.x, prepared, x_terms=self._x_terms,
                                                         allow_fallback=method is None)
            else:
                estimate = estimator.continuous_estimate(self.x, prepared)
        else:
            estimate = self._method_estimator(method).continuous_estimate(self.x, prepared)
        return estimator.checked(estimate, variable=f"X; {name}", bounded_above=False)

    def i_yl(self, layer: Any, name: str = "layer", method: str | None = None) -> Estimate:
        """``I(Y; L)`` for layer codes ``(N, dl)`` and the probe labels; arguments as :meth:`i_xl`."""
        if self.labels is None:
            raise ValueError("no probe labels were given, so I(Y;L) cannot be estimated")
        prepared = self._layer_samples(layer, name)
        estimator = self.estimator if method is None or method == self.estimator.name else \
            self._method_estimator(method)
        estimate = estimator.continuous_discrete_estimate(prepared, self.labels)
        return self.estimator.checked(estimate, self.labels, variable=f"Y; {name}", bounded_above=False)

    def _method_estimator(self, method: str) -> MutualInformationEstimator:
        """The estimator behind ``method``: the configured one or its fallback."""
        fallback = self.estimator.fallback_estimator() if isinstance(self.estimator, EntropyEstimator) else None
        if fallback is None or fallback.name != method:
            raise ValueError(f"method {method!r} is neither {self.estimator.name!r} nor its fallback")
        return fallback
