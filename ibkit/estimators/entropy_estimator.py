"""Entropy-based estimators: MI as a sum of entropies, with the fallback for degenerate data."""

from __future__ import annotations

import copy
import dataclasses
from abc import abstractmethod
from typing import Any

import numpy as np
import torch

from ibkit.estimators.base import MutualInformationEstimator, Prepared
from ibkit.estimators.checks import NEGATIVE_STDERRS, break_ties, warn_if_degenerate
from ibkit.estimators.diagnostics import EstimateWarning, report
from ibkit.estimators.discrete import class_indices
from ibkit.estimators.ksg import KSG
from ibkit.estimators.preprocessing import AFFINE_PREPROCESSING, affine_normalise
from ibkit.estimators.terms import TermsEstimator, with_replicates
from ibkit.result import Estimate
from ibkit.validation import as_samples, check_choice, check_enough_samples

#: What entropy-based estimators may fall back to for degenerate variables: name -> class.
FALLBACKS = {"ksg": KSG}
#: A finer rung of continuous MI is taken when it reads more by over this many of its standard
#: errors (:meth:`EntropyEstimator.finest_resolved`). On the known-MI battery at N = 5,000 it never
#: moves a closed-form task, Gaussian copulas included, while 2 moves some.
RUNG_STDERRS = 3.0


class EntropyEstimator(TermsEstimator):
    """Base for differential-entropy estimators; MI follows from entropies.

    Continuous–continuous MI is ``H(X) + H(Y) − H(X,Y)``; continuous–discrete MI is
    ``H(X) − Σ_y p(y)·H(X | Y=y)`` with each conditional entropy estimated on its own class.

    Each entropy is estimated at a normalised scale and corrected by the log-determinant:
    ``"whiten"`` (and ``"normal-scores"``, after the rank transform of each variable) whitens
    every term (the marginals and the joint each with its own covariance), ``"standardize"``
    scales each coordinate, ``"none"`` uses the samples as they are.

    A degenerate variable (samples near a lower-dimensional set or in tight clusters, see
    :mod:`ibkit.estimators.diagnostics`) has a differential entropy near −∞ that no k-NN or
    kernel estimate gets right, and an entropy-based MI can be off by whole nats (negative,
    typically). With ``fallback="ksg"`` the continuous–continuous MI of such variables is the
    KSG estimate instead, which never estimates an entropy, with a warning; so is any entropy-based
    estimate negative beyond ``NEGATIVE_STDERRS`` standard errors, a value no MI can take and the
    sure sign of degeneracy the check missed. The continuous–
    discrete case keeps the entropy-based estimate: its marginal and class-conditional terms
    share one normalisation, so clusters that follow the labels give exactly ``H(Y)``.

    Args:
        preprocess: see :class:`MutualInformationEstimator` (for an entropy, normal scores mean
            whitening: :meth:`entropy`).
        fallback: ``"ksg"`` or ``None`` (estimate degenerate variables as any others).
        seed, device, stderr_method: see :class:`~ibkit.estimators.terms.TermsEstimator`.
    """

    def __init__(self, preprocess: str, fallback: str | None = "ksg", seed: int = 0,
                 device: torch.device | str | None = None, stderr_method: str = "blocks"):
        super().__init__(preprocess=preprocess, seed=seed, device=device, stderr_method=stderr_method)
        self.fallback = check_choice(fallback, "fallback", (None, *FALLBACKS))
        #: The fallback's estimator, built once (same preprocessing, seed, device and standard errors).
        self._fallback = None if fallback is None else FALLBACKS[fallback](
            preprocess=preprocess, seed=seed, device=device, stderr_method=stderr_method)

    def min_samples(self, d: int) -> int:
        """Smallest sample count the estimator accepts in ``d`` dimensions."""
        return 2

    def sample_requirement(self, d: int) -> str:
        """Why ``min_samples(d)`` samples are needed, for error messages."""
        return "leave-one-out density estimates need at least 2 samples"

    @property
    def term_normalisation(self) -> str:
        """The affine normalisation of every entropy term (``"whiten"`` for normal or smooth scores)."""
        return self.preprocess if self.preprocess in AFFINE_PREPROCESSING else "whiten"

    def reference_bias(self, n: int, d: int) -> float:
        """Known bias (nats) of the entropy estimate of ``n`` normalised samples in ``d`` dimensions.

        Subtracted from entropies and continuous–continuous MI; 0 unless a subclass knows it.
        """
        return 0.0

    def reference_biases(self, n: int, d: int) -> np.ndarray:
        """``(L,)`` known biases of the ``L`` rungs of :meth:`rung_log_densities` (nats)."""
        return np.array([self.reference_bias(n, d)])

    @abstractmethod
    def pointwise_log_density(self, x: torch.Tensor) -> torch.Tensor:
        """``(N,)`` float64 leave-one-out ``log p̂(x_i)`` for normalised ``(N, d)`` samples."""

    def rung_log_densities(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, L)`` leave-one-out ``log p̂(x_i)`` at ``L`` resolutions, coarse to fine (the rungs of
        continuous MI, :meth:`finest_resolved`); one, :meth:`pointwise_log_density`, unless a
        subclass has more."""
        return self.pointwise_log_density(x)[:, None]

    def entropy(self, x: Any) -> Estimate:
        """Differential entropy of ``x`` ``(N, d)`` in nats with its standard error.

        Only affine normalisations keep an entropy (with their log-determinant), so an estimator
        with ``preprocess="normal-scores"`` or ``"smooth-scores"`` whitens here instead: its
        ``term_normalisation``.
        """
        samples = break_ties(as_samples(x, "x", self.device), "x")
        warn_if_degenerate(samples, "x", self.term_normalisation, self.seed)
        bias = self.reference_bias(*samples.shape)
        estimate = Estimate.from_terms(self.entropy_terms(samples, "x"), self.name, offset=-bias)
        fixed = self.with_size(*samples.shape)
        return self.with_block_stderr(estimate, lambda index: fixed.entropy_terms(samples[index], "x"))

    def entropy_terms(self, x: torch.Tensor, name: str = "x", normalise: bool = True) -> torch.Tensor:
        """``(N,)`` per-sample entropy terms ``−log p̂(x_i)`` (nats) for prepared ``(N, d)`` x.

        ``normalise=False`` skips the term's own normalisation (the caller has normalised ``x``).
        """
        check_enough_samples(x.shape[0], self.min_samples(x.shape[1]), name, self.sample_requirement(x.shape[1]))
        log_scale = 0.0
        if normalise:
            x, log_scale = affine_normalise(x, self.term_normalisation, name)
        return log_scale - self.pointwise_log_density(x)

    def rung_terms(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        """``(N, L)`` per-sample entropy terms at each rung of :meth:`rung_log_densities` for prepared ``x``."""
        check_enough_samples(x.shape[0], self.min_samples(x.shape[1]), name, self.sample_requirement(x.shape[1]))
        x, log_scale = affine_normalise(x, self.term_normalisation, name)
        return log_scale - self.rung_log_densities(x)

    def shared(self, variable: Prepared) -> Prepared:
        """``variable`` with its own entropy terms (every rung) kept for every MI estimate it enters."""
        return variable._replace(terms=self.rung_terms(variable.samples, variable.name))

    def for_method(self, method: str | None) -> MutualInformationEstimator:
        """This estimator (``None``: free to fall back), itself without its fallback (its own name),
        or its fallback's estimator (the fallback's name)."""
        if method is None:
            return self
        if method == self.name:
            fixed = copy.copy(self)
            fixed.fallback = fixed._fallback = None
            return fixed
        if self._fallback is not None and method == self._fallback.name:
            return self._fallback
        raise ValueError(f"method {method!r} is neither {self.name!r} nor its fallback ({self.fallback!r})")

    def continuous_estimate(self, x: Prepared, y: Prepared) -> Estimate:
        """The (unchecked) continuous estimate: entropy-based, or the fallback's where that fails.

        Entropy terms kept on a prepared variable (:meth:`shared`) are reused.
        """
        if self._fallback is not None and (x.degenerate or y.degenerate):
            return self._fall_back(x, y, "a variable is degenerate (see the warning above)")
        estimate = self.finest_resolved(x, y, self.continuous_rung_terms(x.samples, y.samples, x.terms, y.terms))
        if self._fallback is not None and estimate.value < -NEGATIVE_STDERRS * estimate.stderr:
            return self._fall_back(x, y, f"its estimate {estimate:.3f} nats is negative beyond {NEGATIVE_STDERRS:g} "
                                         "standard errors, which no MI can be")
        return estimate

    def _fall_back(self, x: Prepared, y: Prepared, reason: str) -> Estimate:
        report(EstimateWarning(
            f"{self.name}: {reason}, so I(x; y) is the {self.fallback} estimate instead "
            f"(fallback={self.fallback!r}; fallback=None keeps {self.name})", kind="fallback"))
        estimate = self._fallback.continuous_estimate(x, y)
        return dataclasses.replace(estimate, diagnostics={**estimate.diagnostics, "fallback_from": self.name,
                                                          "fallback_reason": reason})

    def finest_resolved(self, x: Prepared, y: Prepared, rungs: torch.Tensor) -> Estimate:
        """The estimate at the finest rung of ``rungs`` ``(N, L)`` (MI terms, coarse to fine) that
        the data resolve, with its standard error.

        Starting from the coarsest, rung ``j`` replaces the current one when it reads more MI by
        over ``RUNG_STDERRS`` of its own standard errors (``ibkit.estimators.knn``: a finer
        neighbour order smooths less of the dependence away, and on Gaussian copulas every rung is
        unbiased, so only noise separates them). Its diagnostics say which rung: ``"rung"`` (0 is
        the coarsest, ``k="auto"``'s :func:`~ibkit.estimators.knn.auto_k`).
        """
        fixed = self.with_size(x.samples.shape[0])
        blocks = self.block_replicates(x.samples.shape[0], lambda index: fixed.continuous_rung_terms(
            self.resampled(x, index), self.resampled(y, index)))
        estimates = [Estimate.from_terms(rungs[:, rung], self.name) for rung in range(rungs.shape[1])]
        if blocks is not None:
            estimates = [with_replicates(estimate, blocks[..., rung]) for rung, estimate in enumerate(estimates)]
        if len(estimates) == 1:
            return estimates[0]
        chosen = 0
        for rung in range(1, len(estimates)):
            if estimates[rung].value - estimates[chosen].value > RUNG_STDERRS * estimates[rung].stderr:
                chosen = rung
        return dataclasses.replace(estimates[chosen], diagnostics={**estimates[chosen].diagnostics, "rung": chosen})

    def continuous_terms(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Pointwise ``h_X + h_Y − h_XY`` minus the reference biases, at the coarsest rung."""
        return self.continuous_rung_terms(x, y)[:, 0]

    def continuous_rung_terms(
        self, x: torch.Tensor, y: torch.Tensor, x_terms: torch.Tensor | None = None,
        y_terms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(N, L)`` pointwise ``h_X + h_Y − h_XY`` minus the reference biases, at every rung;
        pass ``rung_terms`` of x or y to reuse them."""
        x_terms = self.rung_terms(x, "x") if x_terms is None else x_terms
        y_terms = self.rung_terms(y, "y") if y_terms is None else y_terms
        n, dx, dy = x.shape[0], x.shape[1], y.shape[1]
        bias = self.reference_biases(n, dx) + self.reference_biases(n, dy) - self.reference_biases(n, dx + dy)
        joint = self.rung_terms(torch.cat([x, y], dim=1), "(x, y)")
        return x_terms + y_terms - joint - torch.as_tensor(bias, dtype=joint.dtype, device=joint.device)

    def continuous_discrete_terms(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Pointwise ``h_X − h_{X|Y=y_i}`` for prepared ``x (N, d)`` and label codes ``(N,)``."""
        classes = class_indices(labels, self.min_samples(x.shape[1]))
        estimator = self.with_size(min(index.numel() for index in classes), x.shape[1])
        # One normalisation and one neighbour order for H(X) and every H(X | Y=y): the neighbour
        # geometry is then identical in all terms, so well-separated classes give exactly H(Y).
        x, log_scale = affine_normalise(x, self.term_normalisation, "x")
        terms = log_scale + estimator.entropy_terms(x, "x", normalise=False)
        for index in classes:
            value = int(labels[index[0]])
            terms[index] -= log_scale + estimator.entropy_terms(x[index], f"x given label {value}", normalise=False)
        return terms
