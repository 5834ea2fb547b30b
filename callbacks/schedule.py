"""When the information-plane callback analyses: which epochs, and at which point of an epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ibkit.validation import check_positive_int


class EpochSchedule:
    """The epochs to analyse: ``0, n, 2n, …`` (``every_n_epochs``) or an explicit list (``epochs``).

    An epoch is analysed once its training batches are done and before its checkpoint is
    written: at the end of the validation that closes the epoch, or at the end of the training
    epoch when no validation closes it (:func:`closes_epoch`), whichever comes first.

    Raises:
        ValueError: both arguments, a non-positive ``every_n_epochs`` or a negative epoch.
    """

    def __init__(self, every_n_epochs: int | None = None, epochs: Sequence[int] | None = None):
        if every_n_epochs is not None and epochs is not None:
            raise ValueError("give either every_n_epochs or epochs, not both")
        self.every_n_epochs = 1 if every_n_epochs is None else check_positive_int(every_n_epochs, "every_n_epochs")
        if epochs is not None and any(isinstance(e, bool) or not isinstance(e, int) or e < 0 for e in epochs):
            raise ValueError(f"epochs must be non-negative integers, got {list(epochs)!r}")
        self.epochs = None if epochs is None else sorted(set(epochs))

    def __contains__(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) is analysed."""
        if self.epochs is not None:
            return epoch in self.epochs
        return epoch % self.every_n_epochs == 0


def closes_epoch(trainer: Any) -> bool:
    """Whether the validation that just ended ran after the epoch's last training batch.

    Lightning writes an epoch's checkpoint at the end of that validation when validation runs
    more often than once per epoch, or not every epoch; analysing there keeps the checkpoint's
    history complete. A sanity check or a mid-epoch validation does not close the epoch.
    """
    return (not trainer.sanity_checking and trainer.state.fn == "fit"
            and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)
