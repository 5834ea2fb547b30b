"""The estimator base class: parameters, the three MI cases and the preparation of each variable.

Every estimator is a :class:`MutualInformationEstimator`: configured by the keyword arguments of
its ``__init__`` (scikit-learn's convention, :meth:`~MutualInformationEstimator.get_params`), it
prepares each continuous variable once (:meth:`~MutualInformationEstimator.prepare`: validation,
the MI-invariant preprocessing, tie-breaking, the degeneracy check) and estimates on prepared
variables. The checks every estimate passes are in :mod:`ibkit.estimators.checks`; estimators whose
estimate is a mean of per-sample terms derive from :class:`ibkit.estimators.terms.TermsEstimator`.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import torch

from ibkit.estimators.checks import break_ties, check_estimate, warn_if_degenerate
from ibkit.estimators.discrete import plugin_mi_terms
from ibkit.estimators.preprocessing import check_preprocess, normal_scores, smooth_normal_scores
from ibkit.result import Estimate
from ibkit.validation import as_labels, as_samples, check_same_length


class Prepared(NamedTuple):
    """A continuous variable ready for estimation (:meth:`MutualInformationEstimator.prepare`).

    Attributes:
        samples: ``(N, d)`` float64 samples, preprocessed (normal scores) or with ties broken.
        degenerate: whether the degeneracy check flagged them (a warning has been issued).
        name: the variable's name in messages (``"x"``, a layer's name).
        shape: the shape of one sample as given, before flattening (e.g. ``(1, 16, 16)``).
        terms: what an estimator can reuse of this variable alone across many estimates (an
            entropy estimator's per-sample terms, ``(N,)``), or ``None``
            (:meth:`MutualInformationEstimator.shared`).
    """

    samples: torch.Tensor
    degenerate: bool
    name: str = "x"
    shape: tuple[int, ...] = ()
    terms: torch.Tensor | None = None


class MutualInformationEstimator(ABC):
    """Base class: ``mutual_information(x, y)`` for continuous and discrete variables.

    What a new estimator implements (see the README, *Writing an estimator*):

    - :meth:`continuous_estimate` and :meth:`continuous_discrete_estimate`, the two cases on
      prepared variables, each returning an unchecked :class:`~ibkit.result.Estimate`. Estimators
      whose estimate is a mean of per-sample terms derive from
      :class:`~ibkit.estimators.terms.TermsEstimator` instead and implement the terms; the
      discrete–discrete case is the plug-in estimator for every method.
    - ``name``: the method's name, recorded with every estimate.
    - an ``__init__`` that stores every parameter under its own name, so that
      :meth:`get_params`, :meth:`set_params`, :func:`clone`, ``repr`` and :meth:`settings` work.

    Per-call diagnostics (a fallback taken, training epochs, ...) go on the returned
    ``Estimate.diagnostics``, never on the estimator, so one object serves many calls alike. The
    one documented exception is a trained estimator's ``warm_start`` (its attributes named in
    ``STATE``, which :meth:`set_params` keeps).

    Args:
        preprocess: the MI-invariant transform of each continuous variable
            (``ibkit.estimators.preprocessing``): ``"none"``, ``"standardize"``, ``"whiten"``,
            ``"normal-scores"`` or ``"smooth-scores"``.
        seed: seeds everything random in the estimate (tie-breaking, subsamples).
        device: where to compute; default is the input's device (CPU for numpy input).
    """

    #: The method's name (``"wkl"``, ...); a class attribute, or set in ``__init__`` where it
    #: depends on the parameters.
    name: str
    #: Attributes that are state, not settings: :meth:`set_params` keeps them.
    STATE: tuple[str, ...] = ()

    def __init__(self, preprocess: str, seed: int = 0, device: torch.device | str | None = None):
        self.preprocess = check_preprocess(preprocess)
        self.seed = seed
        self.device = device

    # ------------------------------------------------------------------ parameters
    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """The keyword parameters of ``__init__``, in order."""
        return tuple(name for name, parameter in inspect.signature(cls.__init__).parameters.items()
                     if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD))

    def get_params(self) -> dict[str, Any]:
        """``parameter -> value`` as given to ``__init__`` (scikit-learn's convention)."""
        return {name: getattr(self, name) for name in self.parameter_names()}

    def set_params(self, **params: Any) -> MutualInformationEstimator:
        """Change parameters, validated as ``__init__`` does; returns the estimator.

        Raises:
            ValueError: a parameter the estimator does not take (the message lists them), or an
                invalid value.
        """
        unknown = sorted(set(params) - set(self.parameter_names()))
        if unknown:
            raise ValueError(f"{type(self).__name__} does not take {', '.join(unknown)}; its parameters are "
                             f"{', '.join(self.parameter_names())}")
        validated = type(self)(**{**self.get_params(), **params})
        # Everything derived from the parameters follows them (``name``, a fallback estimator);
        # the state (a trained estimator's warm-start models) stays.
        for name, value in vars(validated).items():
            if name not in self.STATE:
                setattr(self, name, value)
        return self

    def settings(self) -> dict[str, Any]:
        """The method and its parameters as JSON-safe values (``repr`` for anything else)."""
        def safe(value: Any) -> Any:
            return value if value is None or isinstance(value, (bool, int, float, str)) else repr(value)

        return {"method": self.name, **{name: safe(value) for name, value in self.get_params().items()}}

    def __repr__(self) -> str:
        params = ", ".join(f"{name}={value!r}" for name, value in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ what a subclass implements
    @abstractmethod
    def continuous_estimate(self, x: Prepared, y: Prepared) -> Estimate:
        """The (unchecked) continuous–continuous estimate for prepared variables."""

    @abstractmethod
    def continuous_discrete_estimate(self, x: Prepared, labels: torch.Tensor) -> Estimate:
        """The (unchecked) continuous–discrete estimate for a prepared ``x`` and label codes ``(N,)``."""

    def check_sample_size(self, n: int, dx: int, dy: int) -> None:  # noqa: B027 (an optional hook)
        """Hook: warn when ``n`` samples are few for ``dx + dy`` continuous dimensions (default: never)."""

    def shared(self, variable: Prepared) -> Prepared:
        """A prepared variable that several estimates share (the information plane's probe codes and
        layers), with what of its own estimate they can reuse kept in :attr:`Prepared.terms`; by
        default nothing is kept."""
        return variable

    def for_method(self, method: str | None) -> MutualInformationEstimator:
        """The estimator whose estimates are ``method``'s: this one for ``None`` (free to choose, a
        fallback included) or its own name. A curve of the information plane keeps one method.

        Raises:
            ValueError: ``method`` is neither this estimator's nor one it falls back to.
        """
        if method is None or method == self.name:
            return self
        raise ValueError(f"method {method!r} is not {self.name!r}, and {self.name} has no fallback")

    # ------------------------------------------------------------------ the public calls
    def mutual_information(
        self, x: Any, y: Any, *, discrete_x: bool = False, discrete_y: bool = False
    ) -> Estimate:
        """Estimate I(X;Y) in nats from paired samples.

        Args:
            x: ``(N, dx)`` or ``(N,)`` samples; integer labels ``(N,)`` if ``discrete_x``.
            y: ``(N, dy)`` or ``(N,)`` samples; integer labels ``(N,)`` if ``discrete_y``.
            discrete_x, discrete_y: treat that side as discrete labels.

        Returns:
            ``Estimate`` (nats) with its standard error.

        Raises:
            DataError: bad data (see ``ibkit.validation``) or an implausible estimate.
        """
        if discrete_x and discrete_y:
            x_codes, y_codes = as_labels(x, "x", self.device), as_labels(y, "y", self.device)
            check_same_length(x_codes, y_codes)
            return Estimate.from_terms(plugin_mi_terms(x_codes, y_codes), "plugin")
        if discrete_x or discrete_y:
            labels = as_labels(x if discrete_x else y, "x" if discrete_x else "y", self.device)
            prepared = self.prepare(y if discrete_x else x, "y" if discrete_x else "x")
            check_same_length(prepared.samples, labels)
            return self.checked(self.continuous_discrete_estimate(prepared, labels), labels)
        x_prepared, y_prepared = self.prepare(x, "x"), self.prepare(y, "y")
        check_same_length(x_prepared.samples, y_prepared.samples)
        self.check_sample_size(x_prepared.samples.shape[0], x_prepared.samples.shape[1], y_prepared.samples.shape[1])
        return self.checked(self.continuous_estimate(x_prepared, y_prepared))

    def estimate(self, x: Any, y: Any) -> float:
        """I(X;Y) in nats for continuous ``x`` and ``y`` (the "Beyond Normal" benchmark call)."""
        return float(self.mutual_information(x, y))

    def prepare(self, data: Any, name: str) -> Prepared:
        """Validated ``(N, d)`` float64 samples, normal or smooth scores applied if chosen, ties broken.

        Warns (:class:`~ibkit.estimators.diagnostics.DegenerateDataWarning`) if the samples lie
        near a lower-dimensional set or in tight clusters.
        """
        samples = as_samples(data, name, self.device)
        shape = tuple(data.shape[1:]) if hasattr(data, "shape") and len(data.shape) > 1 else (samples.shape[1],)
        if self.preprocess != "normal-scores":
            samples = break_ties(samples, name)
            if self.preprocess == "smooth-scores":
                samples = smooth_normal_scores(samples)
            return Prepared(samples, warn_if_degenerate(samples, name, self.preprocess, self.seed), name, shape)
        # The check sees random scores: fixed ones sit on a lattice, whose regular spacing would
        # read as a higher intrinsic dimension than the data have.
        degenerate = warn_if_degenerate(normal_scores(samples, self.seed, random=True), name, self.preprocess, self.seed)
        return Prepared(normal_scores(samples, self.seed), degenerate, name, shape)

    def checked(self, estimate: Estimate, labels: torch.Tensor | None = None, variable: str | None = None,
                bounded_above: bool = True) -> Estimate:
        """``estimate`` if plausible (:func:`ibkit.estimators.checks.check_estimate`), else a ``DataError``."""
        return check_estimate(estimate, self.name, self.preprocess, labels, variable, bounded_above)


def clone(estimator: MutualInformationEstimator) -> MutualInformationEstimator:
    """A new estimator with the same parameters and none of the state (no warm-started models)."""
    return type(estimator)(**estimator.get_params())
