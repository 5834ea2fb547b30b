"""The result type every estimator returns: a value in nats with its standard error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import torch


@dataclass(frozen=True)
class Estimate:
    """An entropy or mutual-information estimate.

    Attributes:
        value: the estimate, in nats.
        stderr: asymptotic standard error of ``value``, in nats (0 when not defined).
        method: the estimator's name (``"kl"``, ``"wkl"``, ...).
        n: number of samples the estimate used.
        diagnostics: what this call found besides the value, by key: ``"fallback_from"`` and
            ``"fallback_reason"`` (an entropy-based method handed the estimate to its fallback),
            ``"epochs"``, ``"best_epoch"``, ``"train_seconds"``, ``"validation_losses"`` (trained
            estimators), ``"closed_form_mi"``, ``"closed_form_spread"`` (MIENF), and
            ``"replicates"``: what its standard error was measured from, a tensor: the block
            estimates ``(R, B)`` of a block standard error or the per-sample terms ``(N,)`` of a
            term one (``ibkit.estimators.resampling.paired_stderr`` compares two estimates by them).
    """

    value: float
    stderr: float
    method: str
    n: int
    diagnostics: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_terms(cls, terms: torch.Tensor, method: str, offset: float = 0.0,
                   diagnostics: Mapping[str, Any] | None = None) -> Estimate:
        """Mean ± standard error of per-sample terms.

        Args:
            terms: ``(N,)`` per-sample contributions whose mean is the estimate (nats).
            method: estimator name recorded in the result.
            offset: constant added to the mean (e.g. a whitening correction), nats.
            diagnostics: see the class docstring.
        """
        terms = terms.to(torch.float64)
        n = terms.numel()
        value = float(terms.mean()) + offset
        stderr = float(terms.std(correction=1) / n**0.5) if n > 1 else 0.0
        return cls(value=value, stderr=stderr, method=method, n=n,
                   diagnostics={"replicates": terms.detach().cpu(), **dict(diagnostics or {})})

    def __float__(self) -> float:
        return self.value

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided normal confidence interval ``(low, high)`` at ``level`` (nats)."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        z = NormalDist().inv_cdf(0.5 + level / 2.0)
        return (self.value - z * self.stderr, self.value + z * self.stderr)

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        return f"{format(self.value, spec)} ± {format(self.stderr, spec)}"
