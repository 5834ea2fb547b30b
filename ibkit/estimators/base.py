"""Shared machinery: validation, the three MI cases, and entropy-based MI.

Every estimator reduces its result to per-sample terms whose mean is the estimate; the
standard error is their standard deviation over √N (``Estimate.from_terms``). For mutual
information the pointwise terms are combined *before* averaging, so the standard error accounts
for the correlation between the entropy estimates rather than adding their errors.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from ibkit.result import Estimate
from ibkit.validation import as_labels, as_samples, check_enough_samples, check_same_length
from ibkit.whitening import covariance_spectrum, whiten


class MutualInformationEstimator(ABC):
    """Base class: ``mutual_information(x, y)`` for continuous and discrete variables.

    Subclasses implement the continuous–continuous and continuous–discrete cases on validated
    float64 tensors; the discrete–discrete case is the plug-in estimator for every method.

    Args:
        device: where to compute; default is the input's device (CPU for numpy input).
    """

    name: ClassVar[str]

    def __init__(self, device: torch.device | str | None = None):
        self.device = device

    def mutual_information(
        self, x: Any, y: Any, *, discrete_x: bool = False, discrete_y: bool = False
    ) -> Estimate:
        """Estimate I(X;Y) in nats from paired samples.

        Args:
            x: ``(N, dx)`` or ``(N,)`` samples; integer labels ``(N,)`` if ``discrete_x``.
            y: ``(N, dy)`` or ``(N,)`` samples; integer labels ``(N,)`` if ``discrete_y``.
            discrete_x, discrete_y: treat that side as discrete labels.

        Returns:
            ``Estimate`` (nats) with a standard error from the pointwise MI terms.
        """
        x_t = as_labels(x, "x", self.device) if discrete_x else break_ties(as_samples(x, "x", self.device), "x")
        y_t = as_labels(y, "y", self.device) if discrete_y else break_ties(as_samples(y, "y", self.device), "y")
        check_same_length(x_t, y_t)
        if discrete_x and discrete_y:
            terms = plugin_mi_terms(x_t, y_t)
            return Estimate.from_terms(terms, "plugin")
        if discrete_x:
            terms = self.continuous_discrete_terms(y_t, x_t)
        elif discrete_y:
            terms = self.continuous_discrete_terms(x_t, y_t)
        else:
            terms = self.continuous_terms(x_t, y_t)
        return Estimate.from_terms(terms, self.name)

    def estimate(self, x: Any, y: Any) -> float:
        """I(X;Y) in nats for continuous ``x`` and ``y`` (the "Beyond Normal" benchmark call)."""
        return float(self.mutual_information(x, y))

    @abstractmethod
    def continuous_terms(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N,)`` pointwise MI terms for float64 ``x (N, dx)`` and ``y (N, dy)``."""

    @abstractmethod
    def continuous_discrete_terms(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(N,)`` pointwise MI terms for float64 ``x (N, d)`` and int64 ``labels (N,)``."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


#: Relative amplitude (per-feature standard deviations) of the jitter that separates duplicates.
TIE_JITTER = 1e-8


def break_ties(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Separate exactly duplicated samples by a tiny seeded jitter, with a warning.

    Nearest-neighbour distances of duplicates are 0 and their log is −inf. Following Kraskov et
    al., ties are broken by noise of ``TIE_JITTER`` standard deviations per feature, added once
    in the input space, so every entropy of one MI estimate (marginal, joint, per class) sees the
    same points and the ±log-scale terms cancel. Differential entropies of data with ties are
    still biased low (the true value is −∞), hence the warning.

    Args:
        x: ``(N, d)`` float64 samples.
    """
    unique = torch.unique(x, dim=0).shape[0]
    if unique == x.shape[0]:
        return x
    warnings.warn(
        f"{name} has {x.shape[0] - unique} duplicated samples; they are separated by jitter of "
        f"{TIE_JITTER:g} standard deviations. Estimates for data with ties are biased (continuous "
        "data, e.g. from a network with injected noise, avoids this).",
        UserWarning,
        stacklevel=4,
    )
    generator = torch.Generator(device=x.device).manual_seed(0)
    scale = x.std(dim=0).clamp_min(torch.finfo(torch.float64).tiny)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float64)
    return x + TIE_JITTER * scale * noise


def plugin_mi_terms(x_codes: torch.Tensor, y_codes: torch.Tensor) -> torch.Tensor:
    """Pointwise plug-in MI ``log p(x,y) / (p(x) p(y))`` for label codes, ``(N,)`` float64."""
    n = x_codes.shape[0]
    n_y = int(y_codes.max()) + 1
    joint = x_codes * n_y + y_codes
    count = lambda codes: torch.bincount(codes).to(torch.float64)[codes]  # noqa: E731
    return torch.log(count(joint) * n / (count(x_codes) * count(y_codes)))


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


class EntropyEstimator(MutualInformationEstimator):
    """Base for differential-entropy estimators; MI follows from entropies.

    Continuous–continuous MI is ``H(X) + H(Y) − H(X,Y)``; continuous–discrete MI is
    ``H(X) − Σ_y p(y)·H(X | Y=y)`` with each conditional entropy estimated on its own class.

    Args:
        whiten: estimate on whitened data and add ``½·log det Σ`` (recommended: kNN and
            isotropic kernels are most accurate at unit covariance).
        device: where to compute; default is the input's device.
    """

    def __init__(self, whiten: bool = True, device: torch.device | str | None = None):
        super().__init__(device)
        self.whiten = whiten

    @property
    def min_samples(self) -> int:
        """Smallest sample count the estimator accepts."""
        return 2

    @property
    def sample_requirement(self) -> str:
        """Why ``min_samples`` samples are needed, for error messages."""
        return "leave-one-out density estimates need at least 2 samples"

    @abstractmethod
    def pointwise_log_density(self, x: torch.Tensor) -> torch.Tensor:
        """``(N,)`` float64 leave-one-out ``log p̂(x_i)`` for prepared ``(N, d)`` samples."""

    def entropy(self, x: Any) -> Estimate:
        """Differential entropy of ``x`` ``(N, d)`` in nats with its standard error."""
        return Estimate.from_terms(self.entropy_terms(break_ties(as_samples(x, "x", self.device), "x")), self.name)

    def entropy_terms(self, x: torch.Tensor, name: str = "x", whiten_first: bool | None = None) -> torch.Tensor:
        """``(N,)`` per-sample entropy terms ``−log p̂(x_i)`` (nats) for float64 ``(N, d)`` x.

        ``whiten_first`` overrides the estimator's ``whiten`` setting for this call.
        """
        check_enough_samples(x.shape[0], self.min_samples, name, self.sample_requirement)
        if self.whiten if whiten_first is None else whiten_first:
            x, log_scale = whiten(x, name)
        else:
            covariance_spectrum(x, name)
            log_scale = 0.0
        return log_scale - self.pointwise_log_density(x)

    def continuous_terms(
        self, x: torch.Tensor, y: torch.Tensor, x_terms: torch.Tensor | None = None,
        y_terms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pointwise ``h_X + h_Y − h_XY``; pass ``entropy_terms`` of x or y to reuse them."""
        x_terms = self.entropy_terms(x, "x") if x_terms is None else x_terms
        y_terms = self.entropy_terms(y, "y") if y_terms is None else y_terms
        return x_terms + y_terms - self.entropy_terms(torch.cat([x, y], dim=1), "(x, y)")

    def continuous_discrete_terms(
        self, x: torch.Tensor, labels: torch.Tensor, x_terms: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pointwise ``h_X − h_{X|Y=y_i}``; pass ``entropy_terms(x)`` to reuse it."""
        # One whitening for H(X) and every H(X | Y=y): the same affine map keeps the neighbour
        # geometry identical in all terms, so well-separated classes give exactly H(Y).
        if self.whiten:
            x, log_scale = whiten(x, "x")
        else:
            log_scale = 0.0
        if x_terms is None:
            x_terms = log_scale + self.entropy_terms(x, "x", whiten_first=False)
        terms = x_terms.clone()
        for index in class_indices(labels, self.min_samples):
            value = int(labels[index[0]])
            terms[index] -= log_scale + self.entropy_terms(x[index], f"x given label {value}", whiten_first=False)
        return terms
