"""Shared machinery: preprocessing, the three MI cases, entropy-based MI and the sanity checks.

Every estimator reduces its result to per-sample terms whose mean is the estimate. The standard
error is measured on disjoint blocks of the sample (``stderr_method="blocks"``, the default of the
k-NN and kernel estimators; ``ibkit.estimators.resampling``), or is the terms' standard deviation
over √N (``"terms"``), which assumes independent terms and is 20–40 % too small for k-NN
estimates.

Before it is returned, every MI estimate is checked (:meth:`MutualInformationEstimator.checked`):
a non-finite value or one beyond ``±PLAUSIBLE_LOG_N·log N`` (no non-parametric estimator can
resolve that much from N samples) is a ``ValueError``; a value negative beyond
``NEGATIVE_STDERRS`` standard errors, or above the entropy of discrete labels, is a warning that
the estimator is biased on these data. Each continuous variable is also checked for degeneracy
(:mod:`ibkit.estimators.diagnostics`), with at most one warning per variable and call, and a
non-parametric estimate from fewer than ``SAMPLES_PER_DIMENSION`` samples per joint dimension
warns that its error may exceed what the standard error shows.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from ibkit.estimators.diagnostics import (
    DegenerateDataWarning,
    EstimateWarning,
    UndersampledWarning,
    degeneracy,
    report,
)
from ibkit.estimators.preprocessing import check_preprocess, normal_scores, smooth_normal_scores
from ibkit.estimators.resampling import STDERR_METHODS, block_stderr
from ibkit.result import Estimate
from ibkit.validation import as_labels, as_samples, check_choice, check_same_length

#: |MI| above this multiple of log N is numerically meaningless for N samples: a ValueError.
PLAUSIBLE_LOG_N = 2.0
#: Fewest samples an estimate (each class's, with labels) takes with ``k="auto"``.
AUTO_MIN_SAMPLES = 10
#: An MI estimate more than this many standard errors below zero is reported as biased.
NEGATIVE_STDERRS = 3.0
#: Samples per joint dimension (dx + dy) a non-parametric continuous–continuous estimate needs.
#: Measured on the known-MI battery at N = 1,000 (``ibkit bench battery --n 1000``): with at
#: least this many, the default call is within a factor 1.5 of the truth on 98 of 102 tasks
#: (softmax excluded); below it, on 11 of 18. Fewer samples give an :class:`UndersampledWarning`.
SAMPLES_PER_DIMENSION = 100


def advice(preprocess: str) -> str:
    """What a user can do about a degenerate variable or a biased estimate."""
    steps = ["inject a little noise into the network (ibkit.layers.AdditiveGaussianNoise)",
             "try method='ksg', the most robust to degenerate variables"]
    if preprocess != "normal-scores":
        steps.insert(0, "use preprocess='normal-scores' (it removes heavy tails and saturation per coordinate)")
    return "; ".join(steps)


class Prepared(NamedTuple):
    """A continuous variable ready for estimation (:meth:`MutualInformationEstimator.prepare`).

    Attributes:
        samples: ``(N, d)`` float64 samples, preprocessed (normal scores) or with ties broken.
        degenerate: whether the degeneracy check flagged them (a warning has been issued).
        name: the variable's name in messages (``"x"``, a layer's name).
        shape: the shape of one sample as given, before flattening (e.g. ``(1, 16, 16)``).
    """

    samples: torch.Tensor
    degenerate: bool
    name: str = "x"
    shape: tuple[int, ...] = ()


class MutualInformationEstimator(ABC):
    """Base class: ``mutual_information(x, y)`` for continuous and discrete variables.

    What a new estimator implements (see the README, *Writing an estimator*):

    - :meth:`continuous_estimate` and :meth:`continuous_discrete_estimate`, the two cases on
      prepared variables, each returning an unchecked :class:`~ibkit.result.Estimate`. Estimators
      whose estimate is a mean of per-sample terms derive from :class:`TermsEstimator` instead and
      implement the terms; the discrete–discrete case is the plug-in estimator for every method.
    - ``name``: the method's name, recorded with every estimate.
    - an ``__init__`` that stores every parameter under its own name, so that
      :meth:`get_params`, :meth:`set_params`, :func:`clone`, ``repr`` and :meth:`settings` work.

    Per-call diagnostics (a fallback taken, training epochs, ...) go on the returned
    ``Estimate.diagnostics``, never on the estimator, so one object serves many calls alike. The
    one documented exception is a trained estimator's ``warm_start``.

    Args:
        preprocess: the MI-invariant transform of each continuous variable
            (``ibkit.estimators.preprocessing``): ``"none"``, ``"standardize"``, ``"whiten"`` or
            ``"normal-scores"``.
        seed: seeds everything random in the estimate (tie-breaking, subsamples).
        device: where to compute; default is the input's device (CPU for numpy input).
    """

    #: The method's name (``"wkl"``, ...); a class attribute, or set in ``__init__`` where it
    #: depends on the parameters.
    name: str

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
        # Public attributes follow the parameters (``name`` may depend on them); private state,
        # such as a trained estimator's warm-start models, stays.
        for name, value in vars(validated).items():
            if not name.startswith("_"):
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
            ValueError: bad input (see ``ibkit.validation``) or an implausible estimate.
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

        Warns (:class:`DegenerateDataWarning`) if the samples lie near a lower-dimensional set
        or in tight clusters.
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
        """``estimate`` if plausible; see the module docstring for the rules.

        Args:
            estimate: an MI estimate.
            labels: the discrete side's codes, if any (its plug-in entropy bounds the MI).
            variable: name used in messages (default: the estimate's pair).
            bounded_above: apply the ``+PLAUSIBLE_LOG_N·log N`` limit. The information plane
                turns estimates above ``log N`` into lower bounds itself, so it passes False.
        """
        what = f"I({variable or 'x; y'})"
        limit = PLAUSIBLE_LOG_N * math.log(max(estimate.n, 2))
        if not math.isfinite(estimate.value) or not math.isfinite(estimate.stderr):
            raise ValueError(f"{self.name} gave a non-finite estimate of {what} ({estimate.value}); the data are "
                             "degenerate for this estimator: " + advice(self.preprocess))
        if estimate.value < -limit or (bounded_above and estimate.value > limit):
            raise ValueError(
                f"{self.name} estimated {what} = {estimate.value:.4g} nats, beyond what {estimate.n} samples "
                f"can support (|I| <= {PLAUSIBLE_LOG_N:g}·log N = {limit:.1f}): the estimate is meaningless; "
                + advice(self.preprocess))
        if estimate.value < -NEGATIVE_STDERRS * estimate.stderr:
            report(EstimateWarning(
                f"{self.name} estimated {what} = {estimate:.3f} nats, negative beyond {NEGATIVE_STDERRS:g} standard "
                "errors: the estimator is biased on these data; " + advice(self.preprocess), variable, "negative"))
        if labels is not None:
            ceiling = float(Estimate.from_terms(label_entropy_terms(labels), "plugin"))
            if estimate.value > ceiling + NEGATIVE_STDERRS * estimate.stderr:
                report(EstimateWarning(
                    f"{self.name} estimated {what} = {estimate:.3f} nats, above the entropy of the labels "
                    f"({ceiling:.3f} nats) beyond {NEGATIVE_STDERRS:g} standard errors: the estimator is biased on "
                    "these data; " + advice(self.preprocess), variable, "above-label-entropy"))
        return estimate


def clone(estimator: MutualInformationEstimator) -> MutualInformationEstimator:
    """A new estimator with the same parameters and none of the state (no warm-started models)."""
    return type(estimator)(**estimator.get_params())


class TermsEstimator(MutualInformationEstimator):
    """Base of the estimators whose estimate is the mean of per-sample terms (k-NN, kernel).

    A subclass implements :meth:`continuous_terms` and :meth:`continuous_discrete_terms` (and
    ``with_size`` if a setting depends on the sample size); the estimates, their standard errors
    (``stderr_method``) and the sample-size warning come from here.

    Args:
        preprocess, seed, device: see :class:`MutualInformationEstimator`.
        stderr_method: ``"blocks"`` (standard errors measured on disjoint blocks of the sample,
            the default) or ``"terms"`` (the per-sample terms' spread over √N); see the module
            docstring.
    """

    def __init__(self, preprocess: str, seed: int = 0, device: torch.device | str | None = None,
                 stderr_method: str = "blocks"):
        super().__init__(preprocess=preprocess, seed=seed, device=device)
        self.stderr_method = check_choice(stderr_method, "stderr_method", STDERR_METHODS)

    @abstractmethod
    def continuous_terms(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N,)`` pointwise MI terms for prepared ``x (N, dx)`` and ``y (N, dy)``; their mean is the estimate."""

    @abstractmethod
    def continuous_discrete_terms(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(N,)`` pointwise MI terms for prepared ``x (N, d)`` and int64 ``labels (N,)``."""

    def check_sample_size(self, n: int, dx: int, dy: int) -> None:
        warn_if_undersampled(n, dx, dy)

    def continuous_estimate(self, x: Prepared, y: Prepared) -> Estimate:
        return self.continuous_from_terms(x, y, self.continuous_terms(x.samples, y.samples))

    def continuous_from_terms(self, x: Prepared, y: Prepared, terms: torch.Tensor) -> Estimate:
        """The estimate whose per-sample terms of ``x`` and ``y`` are ``terms``, with its standard error."""
        estimate = Estimate.from_terms(terms, self.name)
        fixed = self.with_size(estimate.n)
        return self.with_block_stderr(estimate, lambda index: fixed.continuous_terms(
            self.resampled(x, index), self.resampled(y, index)))

    def continuous_discrete_estimate(self, x: Prepared, labels: torch.Tensor) -> Estimate:
        estimate = Estimate.from_terms(self.continuous_discrete_terms(x.samples, labels), self.name)
        fixed = self.with_size(int(torch.bincount(labels).min()), x.samples.shape[1])
        return self.with_block_stderr(estimate, lambda index: fixed.continuous_discrete_terms(
            self.resampled(x, index), labels[index]), labels)

    def with_block_stderr(self, estimate: Estimate, block_terms: Callable[[torch.Tensor], torch.Tensor],
                          labels: torch.Tensor | None = None) -> Estimate:
        """``estimate`` with its standard error measured on blocks (``stderr_method="blocks"``).

        ``block_terms(index)`` recomputes the per-sample terms on the samples at ``index`` with
        the full sample's settings; ``labels`` stratify the blocks. Unchanged with
        ``stderr_method="terms"`` or too few samples for two blocks.
        """
        if self.stderr_method != "blocks":
            return estimate
        stderr = block_stderr(lambda index: float(block_terms(index.to(self.device or "cpu")).mean()),
                              estimate.n, labels, self.seed)
        return estimate if stderr is None else dataclasses.replace(estimate, stderr=stderr)

    def resampled(self, x: Prepared, index: torch.Tensor) -> torch.Tensor:
        """The samples of ``x`` at ``index``, prepared as a sample of their own (ranks recomputed)."""
        samples = x.samples[index.to(x.samples.device)]
        if self.preprocess != "normal-scores":
            return samples
        return normal_scores(samples, self.seed, random=samples.shape[1] == 1)

    def with_size(self, n: int, d: int | None = None) -> TermsEstimator:
        """This estimator with every data-dependent setting fixed as for ``n`` samples (in ``d`` dimensions).

        Block estimates and the continuous–discrete case (H(X) and every H(X | Y=y) with the
        smallest class's settings) use it; estimators without such settings return themselves.
        """
        return self


class NeighbourOrder:
    """Mixin of the k-NN estimators: the neighbour order ``k`` and the samples it needs.

    ``k`` is an integer or ``"auto"``; :meth:`order` resolves it for a sample size and dimension.
    """

    k: int | str

    def order(self, n: int, d: int) -> int:
        """The neighbour order used for ``n`` samples in ``d`` dimensions."""
        raise NotImplementedError

    def min_samples(self, d: int) -> int:
        """Fewest samples an estimate (each class's, with labels) accepts in ``d`` dimensions."""
        return AUTO_MIN_SAMPLES if self.k == "auto" else int(self.k) + 1

    def sample_requirement(self, d: int) -> str:
        """Why :meth:`min_samples` samples are needed, for error messages."""
        if self.k == "auto":
            return f"k='auto' needs at least {AUTO_MIN_SAMPLES} samples per estimate (per class with labels)"
        return f"k={self.k} nearest neighbours need N > k"


def auto_order(preferred: int, n: int) -> int:
    """``preferred`` neighbours, but never more than a tenth of ``n`` samples (and at least one)."""
    return max(1, min(preferred, n // 10))


#: Relative amplitude (per-feature standard deviations) of the jitter that separates duplicates.
TIE_JITTER = 1e-8


def warn_if_undersampled(n: int, dx: int, dy: int) -> bool:
    """Warn (:class:`UndersampledWarning`) if ``n`` samples are few for ``dx + dy`` joint dimensions."""
    needed = SAMPLES_PER_DIMENSION * (dx + dy)
    if n >= needed:
        return False
    report(UndersampledWarning(
        f"{n} samples are few for {dx} + {dy} dimensions: non-parametric MI estimates need about "
        f"{SAMPLES_PER_DIMENSION} per joint dimension ({needed} here) to stay within a factor 1.5 of the "
        "truth on ibkit's known-MI battery, so the error may be larger than the standard error shows; "
        "use more samples or fewer dimensions (a compressor with smaller codes)", kind="undersampled"))
    return True


def break_ties(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Separate exactly duplicated samples by a tiny seeded jitter, with a warning.

    Nearest-neighbour distances of duplicates are 0 and their log is −inf. Following Kraskov et
    al., ties are broken by noise of ``TIE_JITTER`` standard deviations per feature, added once
    in the input space, so every entropy of one MI estimate (marginal, joint, per class) sees the
    same points and the ±log-scale terms cancel. Differential entropies of data with ties are
    still biased low (the true value is −∞), hence the warning. (Normal scores never tie.)

    Args:
        x: ``(N, d)`` float64 samples.
    """
    unique = torch.unique(x, dim=0).shape[0]
    if unique == x.shape[0]:
        return x
    report(EstimateWarning(
        f"{name} has {x.shape[0] - unique} duplicated samples; they are separated by jitter of "
        f"{TIE_JITTER:g} standard deviations. Estimates for data with ties are biased (continuous "
        "data, e.g. from a network with injected noise, avoids this).", name, "ties"))
    generator = torch.Generator(device=x.device).manual_seed(0)
    scale = x.std(dim=0).clamp_min(torch.finfo(torch.float64).tiny)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float64)
    return x + TIE_JITTER * scale * noise


def warn_if_degenerate(x: torch.Tensor, name: str, preprocess: str, seed: int = 0) -> bool:
    """Issue one :class:`DegenerateDataWarning` if ``x (N, d)`` is near-degenerate (see diagnostics).

    ``preprocess`` is the one already applied to ``x``; the advice depends on it.

    Returns:
        Whether ``x`` was flagged.
    """
    found = degeneracy(x, seed)
    if found is None or not (found.low_dimensional or found.clustered):
        return False
    if found.low_dimensional:
        kind = "low-dimensional"
        what = (f"lie near a ~{found.dimension:.1f}-dimensional set (a Gaussian sample would read "
                f"{found.reference_dimension:.1f})")
    else:
        kind = "clustered"
        what = (f"sit in tight clusters (nearest-neighbour distances {1 / found.distance_ratio:.0f}× below "
                "those of a Gaussian sample at the same covariance)")
    report(DegenerateDataWarning(
        f"{name}: its {x.shape[0]} samples in {x.shape[1]} dimensions {what}; entropy-based estimates can be "
        "off by whole nats. To fix it, " + advice(preprocess) + ".", name, kind))
    return True


def label_entropy_terms(codes: torch.Tensor) -> torch.Tensor:
    """``(N,)`` plug-in terms ``−log p(y_i)`` of label codes; their mean is H(Y) in nats."""
    counts = torch.bincount(codes).to(torch.float64)
    return math.log(codes.shape[0]) - counts[codes].log()


def plugin_mi_terms(x_codes: torch.Tensor, y_codes: torch.Tensor) -> torch.Tensor:
    """Pointwise plug-in MI ``log p(x,y) / (p(x) p(y))`` for label codes, ``(N,)`` float64."""
    n_y = int(y_codes.max()) + 1
    joint = x_codes * n_y + y_codes
    return label_entropy_terms(x_codes) + label_entropy_terms(y_codes) - label_entropy_terms(joint)


def class_indices(labels: torch.Tensor, min_size: int, name: str = "y") -> list[torch.Tensor]:
    """Indices of each class present in ``labels``; each class must have ``min_size`` samples."""
    groups = []
    for value in torch.unique(labels):
        index = torch.nonzero(labels == value).squeeze(1)
        if index.numel() < min_size:
            raise ValueError(
                f"class {int(value)} of {name} has {index.numel()} samples; every class needs at "
                f"least {min_size} for this estimator"
            )
        groups.append(index)
    return groups
