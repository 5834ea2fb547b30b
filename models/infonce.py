"""The InfoNCE lower bound on mutual information from a ``B × B`` critic score matrix.

With scores ``S[i, j] = T(a_j, b_i)`` for a batch of ``B`` positive pairs ``(a_i, b_i)``,

    Î = log B − (1/B) Σ_i [ logsumexp_j S[i, j] − S[i, i] ]

(row-wise cross-entropy with the positives on the diagonal, all ``B²`` pairs used). ``Î`` is a
lower bound on ``I(a; b)`` in expectation for any critic, in nats, and can never exceed
``log B``: a batch of 256 caps it at 5.55 nats, whatever the true mutual information.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def infonce_lower_bound(scores: torch.Tensor) -> torch.Tensor:
    """InfoNCE estimate ``Î`` (nats, a 0-d tensor with gradient) from scores ``(B, B)``, ``B >= 2``.

    Raises:
        ValueError: ``scores`` is not a square matrix with at least 2 rows.
    """
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"scores must be a square (B, B) matrix, got shape {tuple(scores.shape)}")
    batch = scores.shape[0]
    if batch < 2:
        raise ValueError("InfoNCE needs a batch of at least 2 pairs (the other pairs are the negatives)")
    positives = torch.arange(batch, device=scores.device)
    return math.log(batch) - F.cross_entropy(scores, positives)
