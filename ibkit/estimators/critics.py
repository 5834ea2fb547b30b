"""Critics ``T(a, b)`` scoring every pair of a batch, for the variational MI bounds.

A critic maps two batches ``a (B, ...)`` and ``b (B, ...)`` to the score matrix ``S (B, B)`` with
``S[i, j] = T(a_j, b_i)``: row ``i`` holds the scores of every candidate ``a_j`` against the
anchor ``b_i``, the positive (joint) pairs are on the diagonal and the ``B² − B`` others are
pairs from the product of the marginals (see :mod:`ibkit.estimators.variational`).

* :class:`ConcatCritic`: an MLP on ``[a; b]`` for vectors (its first layer is applied to each
  side once and broadcast over the pairs);
* :class:`SeparableCritic`: ``⟨g(a), h(b)⟩``, cheaper;
* :class:`ConvCritic`: a small convolutional tower per side for images, then a
  :class:`ConcatCritic` head on the two feature vectors.
"""

from __future__ import annotations

import torch
from torch import nn

from ibkit.validation import check_choice, check_positive_int


def _check_pair(a: torch.Tensor, b: torch.Tensor, dim_a: int, dim_b: int) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0] or a.shape[1] != dim_a or b.shape[1] != dim_b:
        raise ValueError(f"critic inputs must have shapes (B, {dim_a}) and (B, {dim_b}), "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")


class ConcatCritic(nn.Module):
    """MLP on the concatenation ``[a; b]``: ``2d → hidden → hidden → 1`` with LeakyReLU.

    The first layer is linear in the concatenation, ``W[a; b] = W_a a + W_b b``, so it is applied
    to the ``B`` rows of each side once and broadcast over the ``B²`` pairs; the remaining layers
    run on all ``B² × hidden`` pair features (memory ``O(B²·hidden)``).

    Args:
        dim: dimension of ``a``.
        hidden: width of the two hidden layers.
        dim_b: dimension of ``b`` (default: ``dim``).
    """

    def __init__(self, dim: int, hidden: int = 256, dim_b: int | None = None):
        super().__init__()
        self.dim = check_positive_int(dim, "critic dim")
        self.dim_b = self.dim if dim_b is None else check_positive_int(dim_b, "critic dim_b")
        check_positive_int(hidden, "critic hidden")
        self.joint = nn.Linear(self.dim + self.dim_b, hidden)
        self.head = nn.Sequential(nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Linear(hidden, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, B)``, ``[i, j] = T(a_j, b_i)``, for ``a (B, dim)`` and ``b (B, dim_b)``."""
        _check_pair(a, b, self.dim, self.dim_b)
        weight_a, weight_b = self.joint.weight[:, : self.dim], self.joint.weight[:, self.dim :]
        from_a = a @ weight_a.T                          # (B, hidden): candidates, columns
        from_b = b @ weight_b.T + self.joint.bias        # (B, hidden): anchors, rows
        pairs = from_b[:, None, :] + from_a[None, :, :]  # (B, B, hidden)
        return self.head(pairs).squeeze(-1)


class SeparableCritic(nn.Module):
    """Separable (bilinear) critic ``T(a, b) = ⟨g(a), h(b)⟩ / k`` with MLP projectors ``g, h: d → k``.

    Cheaper than :class:`ConcatCritic` (``O(B·k)`` features and one ``B×B`` matrix product).

    Args:
        dim: dimension of ``a``.
        hidden: width of each projector's hidden layer.
        features: projection size ``k``.
        dim_b: dimension of ``b`` (default: ``dim``).
    """

    def __init__(self, dim: int, hidden: int = 128, features: int = 128, dim_b: int | None = None):
        super().__init__()
        self.dim = check_positive_int(dim, "critic dim")
        self.dim_b = self.dim if dim_b is None else check_positive_int(dim_b, "critic dim_b")
        check_positive_int(hidden, "critic hidden")
        self.features = check_positive_int(features, "critic features")
        self.project_a = nn.Sequential(nn.Linear(self.dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, features))
        self.project_b = nn.Sequential(nn.Linear(self.dim_b, hidden), nn.LeakyReLU(), nn.Linear(hidden, features))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, B)``, ``[i, j] = T(a_j, b_i)``, for ``a (B, dim)`` and ``b (B, dim_b)``."""
        _check_pair(a, b, self.dim, self.dim_b)
        return self.project_b(b) @ self.project_a(a).T / self.features


def conv_tower(channels: int, size: int, width: int = 16) -> nn.Sequential:
    """Conv 3×3 → MaxPool 2 → LeakyReLU blocks from ``size×size`` down to 4×4, then flattened."""
    layers: list[nn.Module] = []
    while size > 4:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.MaxPool2d(2), nn.LeakyReLU()]
        channels, size = width, size // 2
    return nn.Sequential(*layers, nn.Flatten())


class ConvCritic(nn.Module):
    """Image critic: a convolutional tower per side (:func:`conv_tower`), a :class:`ConcatCritic` head.

    Args:
        shape_a, shape_b: ``(C, H, W)`` of each side's images (square, H a power of 2 ≥ 4).
        width: channels of the conv layers.
        hidden: width of the head.
    """

    def __init__(self, shape_a: tuple[int, int, int], shape_b: tuple[int, int, int], width: int = 16,
                 hidden: int = 128):
        super().__init__()
        self.tower_a, self.tower_b = conv_tower(shape_a[0], shape_a[1], width), conv_tower(shape_b[0], shape_b[1], width)
        features = lambda shape, tower: tower(torch.zeros(1, *shape)).shape[1]  # noqa: E731
        self.head = ConcatCritic(features(shape_a, self.tower_a), hidden, features(shape_b, self.tower_b))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, B)``, ``[i, j] = T(a_j, b_i)``, for image batches ``a`` and ``b``."""
        return self.head(self.tower_a(a), self.tower_b(b))


CRITICS = {"mlp": ConcatCritic, "separable": SeparableCritic}


def make_critic(name: str, dim: int, hidden: int, dim_b: int | None = None) -> nn.Module:
    """A vector critic by name: ``"mlp"`` (:class:`ConcatCritic`) or ``"separable"`` (:class:`SeparableCritic`)."""
    return CRITICS[check_choice(name, "critic", CRITICS)](dim, hidden, dim_b=dim_b)
