"""Critics ``T(a, b)`` scoring every pair of a batch, for InfoNCE.

A critic maps two batches of embeddings ``a (B, d)`` (noisy view) and ``b (B, d)`` (clean view)
to the score matrix ``S (B, B)`` with ``S[i, j] = T(a_j, b_i)``: row ``i`` holds the scores of
every candidate ``a_j`` against the anchor ``b_i``, and the positive pairs are on the diagonal
(see :func:`ibkit.models.infonce.infonce_lower_bound`).
"""

from __future__ import annotations

import torch
from torch import nn

from ibkit.validation import check_positive_int


def _check_pair(a: torch.Tensor, b: torch.Tensor, dim: int) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape != b.shape or a.shape[1] != dim:
        raise ValueError(f"critic inputs must both have shape (B, {dim}), got {tuple(a.shape)} and {tuple(b.shape)}")


class ConcatCritic(nn.Module):
    """MLP on the concatenation ``[a; b]``: ``2d → hidden → hidden → 1`` with LeakyReLU.

    The first layer is linear in the concatenation, ``W[a; b] = W_a a + W_b b``, so it is applied
    to the ``B`` rows of each side once and broadcast over the ``B²`` pairs; the remaining layers
    run on all ``B² × hidden`` pair features (memory ``O(B²·hidden)``).

    Args:
        dim: embedding dimension ``d``.
        hidden: width of the two hidden layers.
    """

    def __init__(self, dim: int, hidden: int = 256):
        super().__init__()
        self.dim = check_positive_int(dim, "critic dim")
        check_positive_int(hidden, "critic hidden")
        self.joint = nn.Linear(2 * dim, hidden)
        self.head = nn.Sequential(nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Linear(hidden, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, B)``, ``[i, j] = T(a_j, b_i)``, for ``a, b`` of shape ``(B, d)``."""
        _check_pair(a, b, self.dim)
        weight_a, weight_b = self.joint.weight[:, : self.dim], self.joint.weight[:, self.dim :]
        from_a = a @ weight_a.T                          # (B, hidden): candidates, columns
        from_b = b @ weight_b.T + self.joint.bias        # (B, hidden): anchors, rows
        pairs = from_b[:, None, :] + from_a[None, :, :]  # (B, B, hidden)
        return self.head(pairs).squeeze(-1)


class SeparableCritic(nn.Module):
    """Separable (bilinear) critic ``T(a, b) = ⟨g(a), h(b)⟩ / k`` with MLP projectors ``g, h: d → k``.

    Cheaper than :class:`ConcatCritic` (``O(B·k)`` features and one ``B×B`` matrix product).

    Args:
        dim: embedding dimension ``d``.
        hidden: width of each projector's hidden layer.
        features: projection size ``k``.
    """

    def __init__(self, dim: int, hidden: int = 128, features: int = 128):
        super().__init__()
        self.dim = check_positive_int(dim, "critic dim")
        check_positive_int(hidden, "critic hidden")
        self.features = check_positive_int(features, "critic features")
        self.project_a = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, features))
        self.project_b = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, features))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, B)``, ``[i, j] = T(a_j, b_i)``, for ``a, b`` of shape ``(B, d)``."""
        _check_pair(a, b, self.dim)
        return self.project_b(b) @ self.project_a(a).T / self.features


CRITICS = {"mlp": ConcatCritic, "separable": SeparableCritic}


def make_critic(name: str, dim: int, hidden: int) -> nn.Module:
    """A critic by name: ``"mlp"`` (:class:`ConcatCritic`) or ``"separable"`` (:class:`SeparableCritic`)."""
    if name not in CRITICS:
        raise ValueError(f"unknown critic {name!r}; valid critics are {', '.join(CRITICS)}")
    return CRITICS[name](dim, hidden)
