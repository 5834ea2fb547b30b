"""Standard errors from disjoint blocks of the sample: what every ``Estimate.stderr`` of a k-NN method means.

The spread of the per-sample terms over ``√N`` is the standard error of a mean of *independent*
terms. k-NN terms are not independent: neighbouring samples share neighbours, the rank transform
and the whitening are estimated from the whole sample, and at zero MI the estimate fluctuates
less than its terms do. Measured over 50 seeds (below), that formula is about 20 % too small in
the median, up to 45 % for weighted KL and twice for KSG at 4–8 dimensions per side, and 30 % too
large at MI = 0 in one dimension.

So the standard error is measured instead, by the method of batch means (as Holmes & Nemenman,
Phys. Rev. E 2019, do for KSG): the sample is split at random into ``B`` disjoint blocks of
``N/B`` samples, the whole estimate (ranks, whitening, neighbour searches) is recomputed on each
block with the neighbour orders of the full sample, and, since the variance of these estimators
falls like ``1/N``,

    SE² = Var_blocks(Î_b) / B,

averaged over ``R`` random partitions. ``B`` is as many blocks of at least ``MIN_BLOCK_SIZE``
samples as fit (at most ``MAX_BLOCKS``), ``R`` enough partitions for ``TARGET_DEGREES`` degrees of
freedom. With labels, every block keeps each class's share (stratified), so every class is
present in every block. The cost is ``R`` more estimates, each on ``B`` blocks of ``N/B``
samples, computed in parallel on the estimate's threads (``ibkit.threads``): from 4,000
samples on, two partitions of 8 blocks, about two more estimates. The standard error is itself an
estimate with at least ``TARGET_DEGREES`` degrees of freedom (±25 % from call to call); what is
calibrated is its mean. Below ``2·MIN_BLOCK_SIZE`` samples no
block plan exists and the term formula is used.

Calibration (``ibkit bench stderr``, 50 seeds per case; Gaussians with 1, 2, 4 and 8 dimensions
per side at MI 0, 1 and 3 nats, and labels from a quantised coordinate for the continuous–discrete
case; ``benchmarks/results/stderr``): the seed-to-seed standard deviation over the mean reported
SE, median over the 16 cases, is 1.07 / 1.05 / 0.97 for weighted KL at N = 1,000 / 2,000 / 10,000
and 1.11 / 1.11 / 1.09 for KSG; the term formula gives 1.17 / 1.18 / 1.04 and 1.42 / 1.36 / 1.25.
Where blocks miss: KSG at 4–8 dimensions per side and MI ≥ 1 at N = 10,000 (1.3–1.5 — its
variance falls more slowly than ``1/N`` while its bias is large, so blocks of ``N/8`` fluctuate
less than 8 times as much), and weighted KL at 8 + 8 dimensions and 3 nats (0.74–0.76, too wide).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from ibkit.result import Estimate
from ibkit.threads import estimate_threads, in_callers_context, one_thread_per_estimate

#: Smallest block, in samples (the neighbour orders of the full sample must fit in it).
MIN_BLOCK_SIZE = 500
MAX_BLOCKS = 8
#: Degrees of freedom of the variance estimate the partitions add up to (each partition costs
#: about one more estimate; one partition of ``MAX_BLOCKS`` blocks, seven degrees, made single
#: standard errors noisy enough to move borderline points of the known-truth plane battery).
TARGET_DEGREES = 8
STDERR_METHODS = ("blocks", "terms")


def block_plan(n: int) -> tuple[int, int] | None:
    """``(blocks B, partitions R)`` for ``n`` samples, or ``None`` when ``n < 2·MIN_BLOCK_SIZE``."""
    blocks = min(MAX_BLOCKS, n // MIN_BLOCK_SIZE)
    if blocks < 2:
        return None
    return blocks, math.ceil(TARGET_DEGREES / (blocks - 1))


def partitions(n: int, blocks: int, repeats: int, labels: torch.Tensor | None = None,
               seed: int = 0) -> list[list[torch.Tensor]]:
    """``repeats`` seeded random partitions of ``range(n)`` into ``blocks`` disjoint index blocks.

    With ``labels`` (``(n,)`` int64) every class is split evenly across the blocks.
    """
    generator = torch.Generator().manual_seed(seed)
    groups = [torch.arange(n)] if labels is None else \
        [torch.nonzero(labels.cpu() == value).squeeze(1) for value in torch.unique(labels.cpu())]
    out = []
    for _ in range(repeats):
        parts: list[list[torch.Tensor]] = [[] for _ in range(blocks)]
        for group in groups:
            shuffled = group[torch.randperm(group.numel(), generator=generator)]
            for block, chunk in enumerate(torch.tensor_split(shuffled, blocks)):
                parts[block].append(chunk)
        out.append([torch.cat(part).sort().values for part in parts])
    return out


def block_estimates(statistic: Callable[[torch.Tensor], torch.Tensor], n: int, labels: torch.Tensor | None = None,
                    seed: int = 0) -> torch.Tensor | None:
    """The block estimates behind a batch-means standard error (see the module docstring).

    Args:
        statistic: the estimate recomputed on the samples with the given ``(m,)`` indices: a
            scalar tensor, or ``(L,)`` for several estimates of the same sample at once.
        n: the sample size.
        labels: ``(n,)`` class codes to stratify the blocks by, if any.
        seed: seeds the partitions (the same seed, size and labels give the same blocks).

    Returns:
        ``(R, B)`` (or ``(R, B, L)``) float64 estimates, one per block of each partition, or
        ``None`` if ``n`` is too small for two blocks.
    """
    plan = block_plan(n)
    if plan is None:
        return None
    blocks, repeats = plan
    every_block = [index for partition in partitions(n, blocks, repeats, labels, seed) for index in partition]
    estimates = torch.stack([value.detach().double().cpu() for value in parallel_map(statistic, every_block)])
    return estimates.reshape(repeats, blocks, *estimates.shape[1:])


def stderr_of(replicates: torch.Tensor) -> float:
    """The standard error that ``replicates`` measure: block estimates ``(R, B)`` (batch means,
    ``SE² = mean over partitions of Var(blocks) / B``) or per-sample terms ``(N,)`` (``sd / √N``)."""
    if replicates.ndim == 2:
        return math.sqrt(float(replicates.var(dim=1, correction=1).mean()) / replicates.shape[1])
    return float(replicates.std(correction=1)) / math.sqrt(replicates.numel())


def paired_stderr(before: Estimate, after: Estimate) -> float | None:
    """The standard error of ``after − before`` for two estimates on the same sample (the
    information plane's successive epochs on one probe), from their paired replicates: the
    difference of each block's estimates (the same partitions), or of each sample's terms. What is
    common to both, the probe's own sampling, cancels. ``None`` when they were not measured alike.
    """
    first, second = before.diagnostics.get("replicates"), after.diagnostics.get("replicates")
    if first is None or second is None or first.shape != second.shape or first.ndim not in (1, 2):
        return None
    return stderr_of(second - first)


def parallel_map(function: Callable[[torch.Tensor], torch.Tensor], items: list[torch.Tensor]) -> list[torch.Tensor]:
    """``[function(item) for item in items]``, spread over the estimate's threads (``ibkit.threads``),
    each call running on one thread."""
    threads = min(estimate_threads(), len(items))
    if threads <= 1:
        return [function(item) for item in items]

    def one(item: torch.Tensor) -> torch.Tensor:
        with one_thread_per_estimate():
            return function(item)

    with ThreadPoolExecutor(threads, thread_name_prefix="ibkit-blocks") as pool:
        return list(pool.map(in_callers_context(one), items))
