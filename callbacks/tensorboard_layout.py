"""TensorBoard helpers for the information-plane callback: scalar tags and the custom-scalars layout."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lightning.pytorch.loggers import Logger, TensorBoardLogger

#: Prefix of every tag the callback writes.
PREFIX = "ib"
FIGURE_TAG = f"{PREFIX}/information_plane"
TIMING_KEYS = ("capture_s", "compression_s", "estimation_s")


def scalar_tag(layer: str, quantity: str) -> str:
    """``ib/<layer>/<quantity>``, e.g. ``ib/fc1/I_XL`` or ``ib/fc1/I_YL_stderr``."""
    return f"{PREFIX}/{layer}/{quantity}"


def timing_tag(stage: str) -> str:
    """``ib/time/<stage>`` for a stage in :data:`TIMING_KEYS`."""
    return f"{PREFIX}/time/{stage}"


def custom_scalars_layout(layers: Sequence[str]) -> dict:
    """Layout for ``SummaryWriter.add_custom_scalars``: one chart of every layer's I(X;L), one of I(Y;L).

    The format is ``{category: {chart title: ["Multiline", [tags]]}}``; the writer turns it into
    the ``tensorboard.plugins.custom_scalar.layout_pb2.Layout`` protobuf.
    """
    charts = {}
    for quantity, title in (("I_XL", "I(X;L), nats"), ("I_YL", "I(Y;L), nats")):
        charts[title] = ["Multiline", [scalar_tag(layer, quantity) for layer in layers]]
    return {"information plane": charts}


def find_tensorboard(loggers: Iterable[Logger]) -> TensorBoardLogger | None:
    """The first ``TensorBoardLogger`` among the trainer's loggers, if any."""
    return next((logger for logger in loggers if isinstance(logger, TensorBoardLogger)), None)
