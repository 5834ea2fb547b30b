"""Where an analysed epoch goes: every logger's scalars, TensorBoard's figures (the per-layer grid,
and one card per layer, legible at TensorBoard's default image size), layout and table, and the
history files ``information_plane.csv``/``.json`` in the log directory (rank 0 only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from ibkit.callbacks.tensorboard_layout import (
    FIGURE_TAG,
    POINTS_TAG,
    card_tag,
    custom_scalars_layout,
    find_tensorboard,
    plane_metrics,
    points_table,
    summary_line,
    timing_tag,
)
from ibkit.history import EpochResult, InformationPlaneHistory


class PlaneLogger:
    """Logs analysed epochs to a trainer's loggers and writes the history files.

    Args:
        log_figure: log the information-plane figure to TensorBoard every analysed epoch.
    """

    def __init__(self, log_figure: bool = True):
        self.log_figure = log_figure
        self.log_dir: str | None = None
        self._layout_written = False

    def setup(self, trainer: Any) -> None:
        """Start a run: the log directory, and a warning when no TensorBoard logger is attached."""
        self.log_dir = trainer.log_dir
        self._layout_written = False
        if find_tensorboard(trainer.loggers) is None:
            rank_zero_warn(
                "InformationPlane: no TensorBoardLogger attached; the information plane is written "
                f"only to information_plane.csv/.json in {self.log_dir} (scalars still go to any "
                "other logger)",
                category=UserWarning,
            )

    def log(self, trainer: Any, result: EpochResult, history: InformationPlaneHistory,
            settings: Callable[[], dict[str, Any]]) -> None:
        """Log one analysed epoch's points and timings, then rewrite the history files.

        ``settings()`` gives the JSON file's settings. An epoch that failed before it was recorded
        (no points) logs nothing.
        """
        if not result.points:
            return
        rank_zero_info(summary_line(result))
        metrics = plane_metrics(result.points, result.timing)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=result.epoch)
        tensorboard = find_tensorboard(trainer.loggers)
        if tensorboard is not None:
            writer = tensorboard.experiment
            if not self._layout_written:
                writer.add_custom_scalars(custom_scalars_layout([point.layer for point in result.points]))
                self._layout_written = True
            writer.add_text(POINTS_TAG, points_table(result.points), global_step=result.epoch)
            if self.log_figure:
                writer.add_figure(FIGURE_TAG, history.figure(), global_step=result.epoch, close=True)
                for layer, card in history.cards().items():
                    writer.add_figure(card_tag(layer), card, global_step=result.epoch, close=True)
        if self.log_dir is not None:
            history.write(self.log_dir, settings=settings())

    @staticmethod
    def log_blocked(trainer: Any, epoch: int, seconds: float) -> None:
        """Log how long the training loop waited for ``epoch``'s analysis (``ib/time/blocked_s``)."""
        for logger in trainer.loggers:
            logger.log_metrics({timing_tag("blocked_s"): seconds}, step=epoch)
