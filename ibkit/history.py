"""The information-plane history: one row per (epoch, layer), plus per-epoch timings.

Kept across epochs by :class:`ibkit.analysis.InformationPlaneAnalysis` (and the callback, which
saves it in checkpoints with ``state_dict``), written as CSV (one row per epoch and layer) and
JSON (rows, timings and settings). A failed estimate is stored as NaN, a gap in tables and plots.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ibkit.errors import Failure
from ibkit.plotting import plot_information_plane
from ibkit.report import write_csv

#: The two quantities of a plane point: its field prefix -> its name in messages and plots.
QUANTITIES = {"I_XL": "I(X;L)", "I_YL": "I(Y;L)"}


@dataclass(frozen=True)
class PlanePoint:
    """Estimates for one layer after one epoch, in nats.

    Per quantity ``q`` (``I_XL``, ``I_YL``):

    - ``q``: the estimate; NaN where it failed (a gap, with the reason in ``q_error``); for a
      censored point the lower bound ``log N``.
    - ``q_stderr``: its standard error (of the estimate itself, also for censored points).
    - ``q_method``: the estimator that produced it (``"wkl"``, ``"ksg"``, ...); one per curve.
    - ``q_censored``: the estimate exceeded ``log N``, more than N samples resolve; ``q`` is then
      ``log N`` and means "at least this much".
    - ``q_compression_loss``: the point is below a deeper layer's by more than 2 standard errors,
      which the data-processing inequality forbids for a chain of layers: information was lost
      in compression, so the value is a lower bound.
    - ``q_error``: why the estimate failed (empty when it did not).
    """

    epoch: int
    layer: str
    I_XL: float
    I_XL_stderr: float
    I_YL: float
    I_YL_stderr: float
    I_XL_method: str = ""
    I_YL_method: str = ""
    I_XL_censored: bool = False
    I_YL_censored: bool = False
    I_XL_compression_loss: bool = False
    I_YL_compression_loss: bool = False
    I_XL_error: str = ""
    I_YL_error: str = ""

    def lower_bound(self, quantity: str) -> bool:
        """Whether ``quantity``'s value is a lower bound (censored, or limited by compression)."""
        return getattr(self, f"{quantity}_censored") or getattr(self, f"{quantity}_compression_loss")


@dataclass(frozen=True)
class EpochTiming:
    """Wall-clock seconds spent analysing one epoch, by stage.

    ``x_compression_s`` is the one-off compression of the probe inputs, on the epoch that did it
    (``None`` on the others).
    """

    epoch: int
    capture_s: float
    compression_s: float
    estimation_s: float
    x_compression_s: float | None = None


@dataclass(frozen=True)
class EpochResult:
    """What analysing one epoch produced: a point per layer, the timing, and every failed step.

    ``failures`` holds data failures (the gaps, whose reasons are also on the points) and any
    other error, which the caller raises after recording and logging the epoch (:meth:`error`).
    """

    points: list[PlanePoint]
    timing: EpochTiming
    failures: list[Failure] = field(default_factory=list)

    @property
    def epoch(self) -> int:
        return self.timing.epoch

    def error(self) -> BaseException | None:
        """The first failure that is not a data error (a bug, CUDA out of memory), to be raised."""
        return next((failure.exception() for failure in self.failures if not failure.data), None)


COLUMNS = tuple(f.name for f in fields(PlanePoint))
#: The numeric and flag columns of :meth:`InformationPlaneHistory.as_arrays`.
ARRAY_COLUMNS = tuple(name for name in COLUMNS if name not in ("epoch", "layer")
                      and not name.endswith(("_method", "_error")))


class InformationPlaneHistory:
    """Epoch-indexed record of information-plane points; re-recording an epoch replaces it.

    Safe to record from one thread (a background analysis) while another reads.
    """

    def __init__(self) -> None:
        self._points: dict[int, list[PlanePoint]] = {}
        self._timings: dict[int, EpochTiming] = {}
        self._methods: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()

    def record(self, points: Sequence[PlanePoint], timing: EpochTiming) -> None:
        """Store one epoch's points (all layers) and timings, replacing that epoch if present."""
        epochs = {point.epoch for point in points} | {timing.epoch}
        if len(epochs) != 1:
            raise ValueError(f"one record must hold a single epoch, got epochs {sorted(epochs)}")
        with self._lock:
            self._points[timing.epoch] = list(points)
            self._timings[timing.epoch] = timing
            for key, method in curve_methods(points).items():
                self._methods.setdefault(key, method)

    @property
    def epochs(self) -> list[int]:
        """Recorded epochs, ascending."""
        with self._lock:
            return sorted(self._points)

    def __contains__(self, epoch: int) -> bool:
        return epoch in self._points

    def __len__(self) -> int:
        return len(self._points)

    def rows(self) -> list[PlanePoint]:
        """All points, by epoch then layer order."""
        with self._lock:
            return [point for epoch in self.epochs for point in self._points[epoch]]

    def points(self, epoch: int) -> list[PlanePoint]:
        """The points of one recorded epoch, in layer order."""
        return list(self._points[epoch])

    def timings(self) -> list[EpochTiming]:
        """Per-epoch timings, by epoch."""
        with self._lock:
            return [self._timings[epoch] for epoch in self.epochs]

    def timing(self, epoch: int) -> EpochTiming:
        """The timing of one recorded epoch."""
        return self._timings[epoch]

    def layers(self) -> list[str]:
        """Layer names in first-seen order."""
        return list(dict.fromkeys(point.layer for point in self.rows()))

    def as_arrays(self) -> dict[str, Any]:
        """The history as arrays for plotting.

        Returns:
            ``epochs (E,)`` ints, ``layers`` list of L names, ``I_XL``, ``I_XL_stderr``,
            ``I_YL``, ``I_YL_stderr`` each ``(E, L)`` float arrays (NaN for gaps), nats, and the
            flags ``I_XL_censored``, ``I_XL_compression_loss`` (and for ``I_YL``) as ``(E, L)``
            bool arrays (False for gaps).
        """
        epochs, layers = self.epochs, self.layers()
        column = {name: i for i, name in enumerate(layers)}
        out: dict[str, Any] = {"epochs": np.asarray(epochs, dtype=int), "layers": layers}
        for key in ARRAY_COLUMNS:
            flag = key.endswith(("_censored", "_compression_loss"))
            out[key] = np.zeros((len(epochs), len(layers)), dtype=bool) if flag else \
                np.full((len(epochs), len(layers)), np.nan)
        for row, epoch in enumerate(epochs):
            for point in self._points[epoch]:
                for key in ARRAY_COLUMNS:
                    out[key][row, column[point.layer]] = getattr(point, key)
        return out

    def methods(self) -> dict[tuple[str, str], str]:
        """``(layer, quantity) -> method`` of the first recorded estimate of each curve."""
        with self._lock:
            return dict(self._methods)

    def figure(self) -> Figure:
        """The information plane of every recorded epoch (see ``ibkit.plotting.plot_information_plane``).

        Raises:
            ValueError: nothing has been recorded yet.
        """
        if not self._points:
            raise ValueError("the information-plane history is empty: no epoch has been analysed")
        arrays = self.as_arrays()
        return plot_information_plane(
            arrays["I_XL"], arrays["I_YL"], epochs=arrays["epochs"], layers=arrays["layers"],
            i_xl_stderr=arrays["I_XL_stderr"], i_yl_stderr=arrays["I_YL_stderr"],
            i_xl_censored=arrays["I_XL_censored"], i_yl_censored=arrays["I_YL_censored"],
            i_xl_compression_loss=arrays["I_XL_compression_loss"],
            i_yl_compression_loss=arrays["I_YL_compression_loss"],
            title=f"Information plane, epochs {arrays['epochs'][0]}–{arrays['epochs'][-1]}",
        )

    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state for checkpoints."""
        return {
            "points": [asdict(point) for point in self.rows()],
            "timings": [asdict(timing) for timing in self.timings()],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the history with a saved one."""
        points: dict[int, list[PlanePoint]] = {}
        for point in state.get("points", []):
            points.setdefault(int(point["epoch"]), []).append(PlanePoint(**point))
        timings = {int(timing["epoch"]): EpochTiming(**timing) for timing in state.get("timings", [])}
        with self._lock:
            self._points, self._timings = points, timings
            self._methods = curve_methods(self.rows())

    def write(self, directory: str, stem: str = "information_plane", settings: Mapping[str, Any] | None = None) -> tuple[str, str]:
        """Write ``<stem>.csv`` (points) and ``<stem>.json`` (points, timings, settings).

        Returns:
            The CSV and JSON paths.
        """
        os.makedirs(directory, exist_ok=True)
        csv_path = os.path.join(directory, f"{stem}.csv")
        json_path = os.path.join(directory, f"{stem}.json")
        write_csv(csv_path, [asdict(point) for point in self.rows()], columns=COLUMNS)
        document = {"settings": dict(settings or {}), **self.state_dict()}
        with open(json_path, "w") as handle:
            json.dump(_json_safe(document), handle, indent=1)
        return csv_path, json_path


def curve_methods(rows: Sequence[PlanePoint]) -> dict[tuple[str, str], str]:
    """``(layer, quantity) -> method`` of the first estimate of each curve among ``rows`` (in epoch order)."""
    found: dict[tuple[str, str], str] = {}
    for point in rows:
        for quantity in QUANTITIES:
            method = getattr(point, f"{quantity}_method")
            if method:
                found.setdefault((point.layer, quantity), method)
    return found


def _json_safe(value: Any) -> Any:
    """Replace NaN/inf floats by ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value
