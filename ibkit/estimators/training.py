"""What the trained estimators (MIENF, MINE, NWJ, InfoNCE) share: the split, the settings, the loop.

A trained estimator fits a network on part of the sample and estimates on another, so that an
estimate is never read off the data it was fitted to: seeded training (70 %), validation (10 %,
early stopping) and test (20 %, the estimate) parts. :class:`TrainedEstimator` holds the
optimiser settings and the loop: Adam on shuffled mini-batches of the training part, the
validation loss after every epoch, the best weights kept, and a stop after ``patience`` epochs
without improvement. It trains with autograd on even under ``torch.no_grad`` (a Lightning hook),
on the inputs' device, and draws every random number from private generators
(``ibkit.randomness``), never from torch's process-wide one, so it is safe in any thread.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ibkit.errors import DataError
from ibkit.estimators.base import MutualInformationEstimator, Prepared
from ibkit.estimators.preprocessing import AFFINE_PREPROCESSING, affine_normalise
from ibkit.randomness import seeded
from ibkit.validation import check_number, check_positive_int

#: Shares of the samples for training and validation; the rest is the test part.
TRAIN_SHARE, VALIDATION_SHARE = 0.7, 0.1
#: Fewest samples an estimate accepts (each part needs a few).
MIN_SAMPLES = 30


@dataclass(frozen=True)
class Fit:
    """What one training run did: the per-call diagnostics of a trained estimate.

    Attributes:
        epochs: epochs trained.
        best_epoch: the epoch whose weights were kept.
        seconds: wall-clock training time.
        validation_losses: the validation loss after every epoch.
        records: ``record(model)`` after every epoch, if a recorder was given.
    """

    epochs: int
    best_epoch: int
    seconds: float
    validation_losses: list[float]
    records: list[float]

    def diagnostics(self) -> dict[str, Any]:
        """The ``Estimate.diagnostics`` entries of this run."""
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "train_seconds": self.seconds,
                "validation_losses": list(self.validation_losses)}


@dataclass
class Split:
    """Seeded training/validation/test index tensors of one estimate."""

    train: torch.Tensor
    validation: torch.Tensor
    test: torch.Tensor

    @classmethod
    def of(cls, n: int, seed: int) -> Split:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_train, n_validation = int(TRAIN_SHARE * n), max(1, int(VALIDATION_SHARE * n))
        return cls(order[:n_train], order[n_train:n_train + n_validation], order[n_train + n_validation:])


class TrainedEstimator(MutualInformationEstimator):
    """Base of the estimators that train a network: settings and the training loop.

    A model trained here has ``loss(*batch) -> scalar`` (minimised) and may have
    ``validation_loss(*batch)`` (default: ``loss``), called on the validation part.

    ``preprocess="auto"`` means ``AUTO_VECTOR_PREPROCESS`` for vectors (normal scores, unless a
    subclass's model undoes heavy tails itself) and standardisation for images (ranks of pixels,
    with their many ties, would be broken at random).

    Args:
        max_epochs: most training epochs (early stopping usually ends sooner).
        patience: epochs without a better validation loss before stopping.
        batch_size: training batch size.
        lr: Adam learning rate.
        warm_start: start each estimate from the model of the previous one with the same
            variable names and shapes (the information-plane callback's layers across epochs).
            This is the estimator's one piece of state: the trained models, kept by variable
            names and shapes; :func:`~ibkit.estimators.base.clone` starts without them.
        progress: show a progress bar over the epochs.
        preprocess, seed, device: see ``MutualInformationEstimator``.

    Every estimate carries its training run in ``Estimate.diagnostics`` (:meth:`Fit.diagnostics`).
    """

    #: What ``preprocess="auto"`` does to vectors.
    AUTO_VECTOR_PREPROCESS = "normal-scores"

    def __init__(self, *, max_epochs: int, patience: int, batch_size: int, lr: float, warm_start: bool,
                 progress: bool, preprocess: str, seed: int, device: torch.device | str | None):
        super().__init__(preprocess=self.AUTO_VECTOR_PREPROCESS if preprocess == "auto" else preprocess, seed=seed, device=device)
        self.preprocess = preprocess
        self.max_epochs = check_positive_int(max_epochs, "max_epochs")
        self.patience = check_positive_int(patience, "patience")
        self.batch_size = check_positive_int(batch_size, "batch_size", minimum=2)
        self.lr = check_number(lr, "lr", minimum=0.0, open_interval=True)
        self.warm_start = bool(warm_start)
        self.progress = bool(progress)
        self._models: dict[tuple, nn.Module] = {}

    def prepare(self, data: Any, name: str) -> Prepared:
        """As every estimator's, with ``preprocess="auto"`` resolved for the variable's shape."""
        if self.preprocess != "auto":
            return super().prepare(data, name)
        image = hasattr(data, "shape") and len(data.shape) == 4
        concrete = copy.copy(self)
        concrete.preprocess = "standardize" if image else self.AUTO_VECTOR_PREPROCESS
        return MutualInformationEstimator.prepare(concrete, data, name)

    def _inputs(self, variable: Prepared) -> torch.Tensor:
        """float32 network inputs, normalised, in the variable's own shape (images stay images).

        Vectors get the affine ``preprocess`` (or are standardised after normal scores); images are
        centred per pixel and divided by their overall standard deviation, which keeps the pixels
        in place and tolerates constant ones.
        """
        n = variable.samples.shape[0]
        if n < MIN_SAMPLES:
            raise DataError(f"{variable.name} has {n} samples; {self.name} needs at least {MIN_SAMPLES} (it trains "
                             "on 70 % of them and estimates on a held-out 20 %)")
        if len(variable.shape) == 3:
            samples = variable.samples
            data = (samples - samples.mean(0)) / samples.std().clamp_min(torch.finfo(samples.dtype).tiny)
            return data.reshape(n, *variable.shape).float()
        normalisation = self.preprocess if self.preprocess in AFFINE_PREPROCESSING else "standardize"
        return affine_normalise(variable.samples, normalisation, variable.name)[0].float()

    def _model(self, key: tuple, build: Callable[[], nn.Module],
               renew: Callable[[nn.Module], nn.Module] | None = None) -> nn.Module:
        """A new seeded model from ``build``, or with ``warm_start`` the previous one under ``key``,
        passed through ``renew`` if given (which re-places the layers fitted to the data, e.g. a
        flow's marginal splines, on the new sample)."""
        if self.warm_start and key in self._models:
            previous = self._models[key]
            return previous if renew is None else renew(previous)
        with seeded(self.seed):
            model = build()
        if self.warm_start:
            self._models[key] = model
        return model

    def _fit(self, model: nn.Module, data: Sequence[torch.Tensor], split: Split,
             record: Callable[[nn.Module], float] | None = None) -> Fit:
        """Adam on the training part with early stopping on the validation loss; the best weights stay.

        ``record(model)`` is called after every epoch (e.g. the closed-form MI) into ``Fit.records``.
        """
        # Training needs autograd even when called under no_grad/inference_mode (a Lightning hook);
        # cloning outside inference mode turns inference tensors into normal ones.
        with torch.inference_mode(False), torch.enable_grad():
            data = [tensor.clone() for tensor in data]
            return self._train(model, data, split, record)

    def _train(self, model: nn.Module, data: Sequence[torch.Tensor], split: Split,
               record: Callable[[nn.Module], float] | None) -> Fit:
        device = data[0].device
        model.to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=self.lr)
        generator = torch.Generator().manual_seed(self.seed)
        train = [tensor[split.train] for tensor in data]
        validation = [tensor[split.validation] for tensor in data]
        best, best_state, best_epoch, records, losses, stale = math.inf, None, 0, [], [], 0
        started = time.perf_counter()
        epochs = tqdm(range(self.max_epochs), desc=self.name, unit="epoch", disable=not self.progress,
                      file=sys.stderr)
        for epoch in epochs:
            model.train()
            for index in torch.randperm(train[0].shape[0], generator=generator).split(self.batch_size):
                if index.numel() < 2:
                    continue
                index = index.to(device)
                loss = model.loss(*(tensor[index] for tensor in train))
                if not torch.isfinite(loss):
                    raise DataError(f"{self.name}: the training loss became {float(loss)} at epoch {epoch}; the "
                                     "data may lie on a lower-dimensional set (add a little noise) or lr is too high")
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            model.eval()
            with torch.no_grad():
                score = float(getattr(model, "validation_loss", model.loss)(*validation))
            losses.append(score)
            if record is not None:
                records.append(record(model))
            epochs.set_postfix(validation_loss=f"{score:.3f}")
            if score < best - 1e-4:
                best, best_state, stale, best_epoch = score, copy.deepcopy(model.state_dict()), 0, epoch
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is None:
            raise DataError(f"{self.name}: the validation loss was never finite; the model could not fit")
        model.load_state_dict(best_state)
        model.eval()
        return Fit(epoch + 1, best_epoch, time.perf_counter() - started, losses, records)
