"""A plain Lightning MLP on scikit-learn's 8×8 digits, shared by the callback tests.

Nothing here comes from ibkit: it is the "any LightningModule" the callback must work with.
"""

from __future__ import annotations

import lightning as L
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits: standardised ``x (1797, 64)`` float32 and labels ``y (1797,)`` int64."""
    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)


def digits_loaders(n_val: int = 500, batch_size: int = 64) -> tuple[DataLoader, DataLoader]:
    """Train and validation loaders: a fixed split with the last ``n_val`` digits for validation."""
    x, y = digits_tensors()
    train = TensorDataset(x[:-n_val], y[:-n_val])
    val = TensorDataset(x[-n_val:], y[-n_val:])
    return (DataLoader(train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)),
            DataLoader(val, batch_size=256))


class NaNTap(nn.Module):
    """A side branch whose output is all NaN (never used downstream)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.full_like(h, float("nan"))


class ConstantTap(nn.Module):
    """A side branch whose output is constant across samples (never used downstream)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(h)


class DigitsMLP(L.LightningModule):
    """64 -> 32 -> 16 -> 10 MLP; top-level children ``hidden1``, ``hidden2``, ``out``.

    Args:
        lr: Adam learning rate (0 keeps the initial weights, for exact comparisons).
        taps: also run the NaN and constant side branches ``nan_tap`` and ``constant_tap``.
        tuple_output: ``hidden2`` returns ``(activation, pre-activation)`` instead of a tensor.
    """

    def __init__(self, lr: float = 1e-2, taps: bool = False, tuple_output: bool = False):
        super().__init__()
        self.lr = lr
        self.tuple_output = tuple_output
        self.hidden1 = nn.Sequential(nn.Linear(64, 32), nn.Tanh())
        self.hidden2 = TupleBlock(32, 16) if tuple_output else nn.Sequential(nn.Linear(32, 16), nn.Tanh())
        self.out = nn.Linear(16, 10)
        if taps:
            self.nan_tap = NaNTap()
            self.constant_tap = ConstantTap()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden1(x)
        if hasattr(self, "nan_tap"):
            self.nan_tap(h)
            self.constant_tap(h)
        h = self.hidden2(h)
        if self.tuple_output:
            h = h[0]
        return self.out(h)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class TupleBlock(nn.Module):
    """Linear + tanh returning ``(activation, pre-activation)``."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = self.linear(x)
        return torch.tanh(pre), pre


def seeded_model(seed: int = 0, **kwargs) -> DigitsMLP:
    """A ``DigitsMLP`` with weights fixed by ``seed``."""
    torch.manual_seed(seed)
    return DigitsMLP(**kwargs)
