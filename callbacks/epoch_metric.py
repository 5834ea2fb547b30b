"""The metric that colours the information plane: its value at every analysed epoch.

The paper (Butakov et al., ICLR 2024, Figure 5) colours each layer's trajectory by the change of
the training loss between consecutive epochs, which ties a compression phase to the fastest drop
of the loss. By default the mean training loss of the epoch is averaged here from what
``training_step`` returns (a loss tensor or a dict with ``"loss"``), whatever the module logs;
any other name is read from ``trainer.callback_metrics`` when the epoch is analysed.
"""

from __future__ import annotations

import math
from typing import Any

import torch

#: The metric name that means the mean training loss of the epoch, averaged by the callback.
TRAINING_LOSS = "loss"


class EpochMetric:
    """One metric's value per analysed epoch.

    Args:
        name: ``"loss"`` (:data:`TRAINING_LOSS`, the epoch's mean training loss) or the name of a
            logged metric (``trainer.callback_metrics``); ``None`` records nothing.
    """

    def __init__(self, name: str | None = TRAINING_LOSS):
        self.name = name
        self._sum: torch.Tensor | float = 0.0
        self._count = 0

    def update(self, outputs: Any) -> None:
        """Add one training batch's loss (``training_step``'s return value) to the epoch's mean.

        The sum stays on the loss's device (float64): no host synchronisation per training step.
        """
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self.name == TRAINING_LOSS and isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._sum, self._count = self._sum + loss.detach().reshape(()).double(), self._count + 1

    def value(self, trainer: Any) -> float:
        """The metric at the end of the epoch (NaN if unknown); starts the next epoch's mean."""
        if self.name == TRAINING_LOSS:
            value = float(self._sum) / self._count if self._count else math.nan
            self._sum, self._count = 0.0, 0
            return value
        metric = trainer.callback_metrics.get(self.name)
        return math.nan if metric is None else float(metric)
