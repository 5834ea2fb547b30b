"""I(X;L) and I(Y;L) of many representations L against one fixed probe set (X, Y).

The information plane of a network asks the same two questions of every layer and every epoch:
how much does L tell about the (compressed) input X, and about the labels Y. They share work: X is
prepared once for all layers and epochs, keeping what the estimator can reuse of it (an entropy
estimator's H(X) terms, :meth:`~ibkit.estimators.base.MutualInformationEstimator.shared`),
and each layer is prepared once for both questions. The values are exactly those of
``ibkit.mutual_information`` on the same data; only repeated work is saved.

A curve must come from one estimator: a method that changed between epochs (an entropy estimate
in one, its KSG fallback in the next) would draw a jump that is an artefact of the switch. So
``i_xl``/``i_yl`` take the ``method`` that must produce the estimate: ``None`` lets the
estimator decide (fallback included) and the caller keeps the ``Estimate.method`` it got for the
rest of the curve (:meth:`~ibkit.estimators.base.MutualInformationEstimator.for_method`).
"""

from __future__ import annotations

from typing import Any

from ibkit.estimators.base import MutualInformationEstimator, Prepared
from ibkit.result import Estimate
from ibkit.validation import as_labels, check_same_length


class InformationPlaneEstimator:
    """Estimate ``I(X;L)`` and ``I(Y;L)`` (nats) for many ``L`` with one fixed probe ``(X, Y)``.

    Args:
        x: ``(N, dx)`` probe codes (continuous), or ``None`` if only I(Y;L) is wanted.
        labels: ``(N,)`` integer class labels.
        estimator: the estimator object (``ibkit.estimators.make_estimator``).

    Call ``i_xl(layer, name)`` and ``i_yl(layer, name)`` with the same ``(N, dl)`` tensor: the
    layer is prepared once for both. Different layers (names) may be estimated in parallel threads.
    """

    def __init__(self, x: Any, labels: Any, estimator: MutualInformationEstimator):
        self.estimator = estimator
        self.labels = as_labels(labels, "labels", estimator.device)
        self.x = None if x is None else estimator.shared(estimator.prepare(x, "x"))
        if self.x is not None:
            check_same_length(self.x.samples, self.labels, "x", "labels")
        self._layers: dict[str, tuple[Any, Prepared]] = {}

    def _layer_samples(self, layer: Any, name: str) -> Prepared:
        """The prepared layer, memoised per name for its most recent tensor."""
        memo = self._layers.get(name)
        if memo is None or memo[0] is not layer:
            prepared = self.estimator.prepare(layer, name)
            check_same_length(self.labels, prepared.samples, "the probe", name)
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
        estimate = self.estimator.for_method(method).continuous_estimate(self.x, self._layer_samples(layer, name))
        return self.estimator.checked(estimate, variable=f"X; {name}", bounded_above=False)

    def i_yl(self, layer: Any, name: str = "layer", method: str | None = None) -> Estimate:
        """``I(Y; L)`` for layer codes ``(N, dl)`` and the probe labels; arguments as :meth:`i_xl`."""
        prepared = self._layer_samples(layer, name)
        estimate = self.estimator.for_method(method).continuous_discrete_estimate(prepared, self.labels)
        return self.estimator.checked(estimate, self.labels, variable=f"Y; {name}", bounded_above=False)
