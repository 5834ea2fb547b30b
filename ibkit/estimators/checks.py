"""The checks every estimate passes: plausibility, degenerate variables, small samples.

Before it is returned, every MI estimate is checked (:func:`check_estimate`): a non-finite value or
one beyond ``±PLAUSIBLE_LOG_N·log N`` (no non-parametric estimator can resolve that much from N
samples) is a :class:`~ibkit.errors.DataError`; a value negative beyond ``NEGATIVE_STDERRS``
standard errors, or above the entropy of discrete labels, is a warning that the estimator is
biased on these data. Exactly duplicated samples are separated by a tiny jitter
(:func:`break_ties`), with a warning. Each continuous variable is also checked for degeneracy
(:mod:`ibkit.estimators.diagnostics`), with at most one warning per variable and call, and a
non-parametric estimate from fewer than ``SAMPLES_PER_DIMENSION`` samples per joint dimension
warns that its error may exceed what the standard error shows.
"""

from __future__ import annotations

import math

import torch

from ibkit.errors import DataError
from ibkit.estimators.diagnostics import (
    DegenerateDataWarning,
    EstimateWarning,
    UndersampledWarning,
    degeneracy,
    report,
)
from ibkit.estimators.discrete import label_entropy_terms
from ibkit.result import Estimate

#: |MI| above this multiple of log N is numerically meaningless for N samples: a DataError.
PLAUSIBLE_LOG_N = 2.0
#: An MI estimate more than this many standard errors below zero is reported as biased.
NEGATIVE_STDERRS = 3.0
#: Relative amplitude (per-feature standard deviations) of the jitter that separates duplicates.
TIE_JITTER = 1e-8
#: Samples per joint dimension (dx + dy) a non-parametric continuous–continuous estimate needs.
#: Measured on the known-MI battery at N = 1,000 (``ibkit bench battery --n 1000``): with at
#: least this many, the default call is within a factor 1.5 of the truth on 98 of 102 tasks
#: (softmax excluded); below it, on 13 of 18. Fewer samples give an :class:`UndersampledWarning`.
SAMPLES_PER_DIMENSION = 100


def advice(preprocess: str) -> str:
    """What a user can do about a degenerate variable or a biased estimate."""
    steps = ["inject a little noise into the network (ibkit.layers.AdditiveGaussianNoise)",
             "try method='ksg', the most robust to degenerate variables"]
    if preprocess != "normal-scores":
        steps.insert(0, "use preprocess='normal-scores' (it removes heavy tails and saturation per coordinate)")
    return "; ".join(steps)


def check_estimate(estimate: Estimate, method: str, preprocess: str, labels: torch.Tensor | None = None,
                   variable: str | None = None, bounded_above: bool = True) -> Estimate:
    """``estimate`` if plausible (see the module docstring), else a :class:`~ibkit.errors.DataError`.

    Args:
        estimate: an MI estimate of ``method`` on data preprocessed with ``preprocess``.
        labels: the discrete side's codes, if any (its plug-in entropy bounds the MI).
        variable: name used in messages (default: the estimate's pair).
        bounded_above: apply the ``+PLAUSIBLE_LOG_N·log N`` limit. The information plane turns
            estimates above ``log N`` into lower bounds itself, so it passes False.
    """
    what = f"I({variable or 'x; y'})"
    limit = PLAUSIBLE_LOG_N * math.log(max(estimate.n, 2))
    if not math.isfinite(estimate.value) or not math.isfinite(estimate.stderr):
        raise DataError(f"{method} gave a non-finite estimate of {what} ({estimate.value}); the data are "
                        "degenerate for this estimator: " + advice(preprocess))
    if estimate.value < -limit or (bounded_above and estimate.value > limit):
        raise DataError(
            f"{method} estimated {what} = {estimate.value:.4g} nats, beyond what {estimate.n} samples "
            f"can support (|I| <= {PLAUSIBLE_LOG_N:g}·log N = {limit:.1f}): the estimate is meaningless; "
            + advice(preprocess))
    if estimate.value < -NEGATIVE_STDERRS * estimate.stderr:
        report(EstimateWarning(
            f"{method} estimated {what} = {estimate:.3f} nats, negative beyond {NEGATIVE_STDERRS:g} standard "
            "errors: the estimator is biased on these data; " + advice(preprocess), variable, "negative"))
    if labels is not None:
        ceiling = float(Estimate.from_terms(label_entropy_terms(labels), "plugin"))
        if estimate.value > ceiling + NEGATIVE_STDERRS * estimate.stderr:
            report(EstimateWarning(
                f"{method} estimated {what} = {estimate:.3f} nats, above the entropy of the labels "
                f"({ceiling:.3f} nats) beyond {NEGATIVE_STDERRS:g} standard errors: the estimator is biased on "
                "these data; " + advice(preprocess), variable, "above-label-entropy"))
    return estimate


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
