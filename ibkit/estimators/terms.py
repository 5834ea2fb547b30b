"""Estimators whose estimate is the mean of per-sample terms (k-NN, kernel), with block standard errors.

The standard error is measured on disjoint blocks of the sample (``stderr_method="blocks"``, the
default; ``ibkit.estimators.resampling``), or is the terms' standard deviation over √N
(``"terms"``), which assumes independent terms and is 20–40 % too small for k-NN estimates.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Callable

import torch

from ibkit.estimators.base import MutualInformationEstimator, Prepared
from ibkit.estimators.checks import warn_if_undersampled
from ibkit.estimators.preprocessing import normal_scores
from ibkit.estimators.resampling import STDERR_METHODS, block_estimates, stderr_of
from ibkit.result import Estimate
from ibkit.validation import check_choice


def with_replicates(estimate: Estimate, blocks: torch.Tensor) -> Estimate:
    """``estimate`` with the standard error its block estimates ``(R, B)`` measure, kept as its replicates."""
    return dataclasses.replace(estimate, stderr=stderr_of(blocks), diagnostics={**estimate.diagnostics, "replicates": blocks})


class TermsEstimator(MutualInformationEstimator):
    """Base of the estimators whose estimate is the mean of per-sample terms (k-NN, kernel).

    A subclass implements :meth:`continuous_terms` and :meth:`continuous_discrete_terms` (and
    ``with_size`` if a setting depends on the sample size); the estimates, their standard errors
    (``stderr_method``) and the sample-size warning come from here.

    Args:
        preprocess, seed, device: see :class:`~ibkit.estimators.base.MutualInformationEstimator`.
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
        blocks = self.block_replicates(estimate.n, block_terms, labels)
        return estimate if blocks is None else with_replicates(estimate, blocks)

    def block_replicates(self, n: int, block_terms: Callable[[torch.Tensor], torch.Tensor],
                         labels: torch.Tensor | None = None) -> torch.Tensor | None:
        """The block estimates ``(R, B)`` of ``n`` samples (``(R, B, L)`` where ``block_terms``
        gives ``(m, L)`` terms of ``L`` estimates at once), or ``None`` with ``stderr_method="terms"``
        or too few samples for two blocks."""
        if self.stderr_method != "blocks":
            return None
        return block_estimates(lambda index: block_terms(index.to(self.device or "cpu")).mean(dim=0), n, labels, self.seed)

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
