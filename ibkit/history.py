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
import torch
from matplotlib.figure import Figure

from ibkit.errors import Failure
from ibkit.plotting import change_since_previous, plot_layer_cards, plot_layer_planes, plot_overview
from ibkit.report import write_csv
from ibkit.result import Estimate

#: The two quantities of a plane point: its field prefix -> its name in messages and plots.
QUANTITIES = {"I_XL": "I(X;L)", "I_YL": "I(Y;L)"}


@dataclass(frozen=True, eq=False)
class PlanePoint:
    """Estimates for one layer after one epoch, in nats.

    Per quantity ``q`` (``I_XL``, ``I_YL``):

    - ``q``: the estimate; NaN where it failed (a gap, with the reason in ``q_error``); for a
      bounded point (below) the bound it crossed.
    - ``q_stderr``: its standard error (of the estimate itself, also for bounded points).
    - ``q_method``: the estimator that produced it (``"wkl"``, ``"ksg"``, ...); one per curve.
    - ``q_censored``: the estimate exceeded ``log N``, more than N samples resolve; ``q`` is then
      ``log N`` and means "at least this much".
    - ``q_capped``: the estimate exceeded a computed upper bound, the probe's label entropy H(Y)
      for I(Y;L); ``q`` is then that bound and means "at most this much" (the estimator is biased
      upward there).
    - ``q_negative``: the estimate was below 0 by more than 2 standard errors, which no MI can be;
      ``q`` is then 0, a lower bound.
    - ``q_compression_loss``: the point is below a deeper layer's by more than 2 standard errors,
      which the data-processing inequality forbids for a chain of layers: information was lost
      in compression, so the value is a lower bound.
    - ``q_change_stderr``: the standard error of the change since the layer's previous analysed
      epoch, from the paired replicates of the two estimates on the same probe (NaN for the first).
    - ``q_trend``: ``"up"`` or ``"down"`` where that change is significant (beyond
      ``ibkit.bounds.TREND_STDERRS`` of its standard errors, neither point bounded), else ``""``.
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
    I_XL_capped: bool = False
    I_YL_capped: bool = False
    I_XL_negative: bool = False
    I_YL_negative: bool = False
    I_XL_change_stderr: float = math.nan
    I_YL_change_stderr: float = math.nan
    I_XL_trend: str = ""
    I_YL_trend: str = ""

    def __eq__(self, other: object) -> bool:
        """Field by field, a NaN (a gap, or the first epoch's change) equal to a NaN."""
        if not isinstance(other, PlanePoint):
            return NotImplemented
        pairs = ((getattr(self, f.name), getattr(other, f.name)) for f in fields(PlanePoint))
        return all(a == b or (a != a and b != b) for a, b in pairs)

    __hash__ = None  # equal points need not be the same object

    def lower_bound(self, quantity: str) -> bool:
        """Whether ``quantity``'s value is a lower bound (censored, negative, or limited by compression)."""
        return any(getattr(self, f"{quantity}_{flag}") for flag in ("censored", "negative", "compression_loss"))

    def upper_bound(self, quantity: str) -> bool:
        """Whether ``quantity``'s value is an upper bound (capped at H(Y))."""
        return getattr(self, f"{quantity}_capped")


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
#: The flag, number and trend columns of :meth:`InformationPlaneHistory.as_arrays`.
FLAG_COLUMNS = tuple(f.name for f in fields(PlanePoint) if f.type == "bool")
NUMBER_COLUMNS = tuple(f.name for f in fields(PlanePoint) if f.type == "float")
TREND_COLUMNS = tuple(f"{quantity}_trend" for quantity in QUANTITIES)


class InformationPlaneHistory:
    """Epoch-indexed record of information-plane points; re-recording an epoch replaces it.

    Besides the points and timings it keeps what the figures and the next epoch need: the plane's
    reference values (the probe's label entropy H(Y) and log N), a logged metric per analysed epoch
    (the training loss, which colours the figure), and each curve's latest estimate (its
    replicates give the next epoch's change a paired standard error). Safe to record from one
    thread (a background analysis) while another reads.
    """

    def __init__(self) -> None:
        self._points: dict[int, list[PlanePoint]] = {}
        self._timings: dict[int, EpochTiming] = {}
        self._methods: dict[tuple[str, str], str] = {}
        self._latest: dict[tuple[str, str], tuple[int, Estimate]] = {}
        self._metrics: dict[int, dict[str, float]] = {}
        self.references: dict[str, float] = {}
        self._lock = threading.RLock()

    def record(self, points: Sequence[PlanePoint], timing: EpochTiming,
               estimates: Mapping[tuple[str, str], Estimate] | None = None) -> None:
        """Store one epoch's points (all layers) and timings, replacing that epoch if present, and
        its raw ``(layer, quantity) -> Estimate`` for the next epoch's changes."""
        epochs = {point.epoch for point in points} | {timing.epoch}
        if len(epochs) != 1:
            raise ValueError(f"one record must hold a single epoch, got epochs {sorted(epochs)}")
        with self._lock:
            self._points[timing.epoch] = list(points)
            self._timings[timing.epoch] = timing
            for key, method in curve_methods(points).items():
                self._methods.setdefault(key, method)
            for key, estimate in (estimates or {}).items():
                if key not in self._latest or self._latest[key][0] <= timing.epoch:
                    self._latest[key] = (timing.epoch, estimate)

    def previous(self, layer: str, quantity: str, epoch: int) -> Estimate | None:
        """The latest recorded estimate of ``layer``'s ``quantity`` before ``epoch``, if any."""
        with self._lock:
            found = self._latest.get((layer, quantity))
        return found[1] if found is not None and found[0] < epoch else None

    def record_metric(self, epoch: int, name: str, value: float) -> None:
        """Keep a metric of an analysed epoch (e.g. its mean training loss)."""
        with self._lock:
            self._metrics.setdefault(epoch, {})[name] = float(value)

    def metric(self, name: str) -> np.ndarray:
        """``(E,)`` values of a recorded metric at the recorded epochs (NaN where it is missing)."""
        with self._lock:
            return np.array([self._metrics.get(epoch, {}).get(name, math.nan) for epoch in self.epochs])

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
            ``epochs (E,)`` ints, ``layers`` list of L names, and per :class:`PlanePoint` column
            an ``(E, L)`` array: the values and standard errors as floats (NaN for gaps, nats),
            the flags (``I_XL_censored``, ``I_YL_capped``, ...) as bools (False for gaps), the
            trends (``I_XL_trend``, ``I_YL_trend``) as strings (``""`` for gaps).
        """
        epochs, layers = self.epochs, self.layers()
        column = {name: i for i, name in enumerate(layers)}
        shape = (len(epochs), len(layers))
        out: dict[str, Any] = {"epochs": np.asarray(epochs, dtype=int), "layers": layers}
        out |= {key: np.zeros(shape, dtype=bool) for key in FLAG_COLUMNS}
        out |= {key: np.full(shape, np.nan) for key in NUMBER_COLUMNS}
        out |= {key: np.full(shape, "", dtype=object) for key in TREND_COLUMNS}
        for row, epoch in enumerate(epochs):
            for point in self._points[epoch]:
                for key in (*FLAG_COLUMNS, *NUMBER_COLUMNS, *TREND_COLUMNS):
                    out[key][row, column[point.layer]] = getattr(point, key)
        return out

    def methods(self) -> dict[tuple[str, str], str]:
        """``(layer, quantity) -> method`` of the first recorded estimate of each curve."""
        with self._lock:
            return dict(self._methods)

    def figure(self, kind: str = "layers", colour_metric: str | None = None, **kwargs: Any) -> Figure:
        """The information plane of every recorded epoch, with the probe's H(Y) and log N drawn.

        Args:
            kind: ``"layers"``, one panel per layer (the paper's view,
                ``ibkit.plotting.plot_layer_planes``), or ``"overview"``, every layer in one panel.
            colour_metric: colour the per-layer trajectories by the change of this recorded metric
                since the previous analysed epoch (default: the metric recorded, the callback's
                mean training loss; by epoch when none is).
            **kwargs: passed to the plotting function.

        Raises:
            ValueError: nothing has been recorded yet, or an unknown ``kind``.
        """
        if kind == "overview":
            return plot_overview(self._plot_arrays(), **self._references())
        if kind != "layers":
            raise ValueError(f"figure kind must be 'layers' or 'overview', got {kind!r}")
        return plot_layer_planes(self._plot_arrays(), **self._references(), **self._colour(colour_metric), **kwargs)

    def cards(self, colour_metric: str | None = None) -> dict[str, Figure]:
        """One small figure per layer (``ibkit.plotting.plot_layer_cards``), as :meth:`figure` colours
        them: legible at TensorBoard's default image size, where the grid is a thumbnail."""
        return plot_layer_cards(self._plot_arrays(), **self._references(), **self._colour(colour_metric))

    def _plot_arrays(self) -> dict[str, Any]:
        if not self._points:
            raise ValueError("the information-plane history is empty: no epoch has been analysed")
        return self.as_arrays()

    def _references(self) -> dict[str, float | None]:
        return {"label_entropy": self.references.get("label_entropy"), "log_n": self.references.get("log_n")}

    def _colour(self, metric: str | None) -> dict[str, Any]:
        """The colouring: by the change of ``metric`` (default: the one recorded), or by epoch."""
        with self._lock:
            metric = metric or next((name for values in self._metrics.values() for name in values), None)
        if metric is None:
            return {}
        return {"colour": change_since_previous(self.metric(metric)),
                "colour_label": f"change of {metric} since the previous analysed epoch"}

    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state for checkpoints: points, timings, references, metrics, and each curve's
        latest estimate with its replicates (nested lists)."""
        with self._lock:
            latest = [{"layer": layer, "quantity": quantity, "epoch": epoch, "value": estimate.value,
                       "stderr": estimate.stderr, "method": estimate.method, "n": estimate.n,
                       "replicates": _as_list(estimate.diagnostics.get("replicates"))}
                      for (layer, quantity), (epoch, estimate) in self._latest.items()]
            return {**self.document(), "latest": latest}

    def document(self) -> dict[str, Any]:
        """Points, timings, references and metrics as plain Python (the JSON file's content)."""
        with self._lock:
            return {"points": [asdict(point) for point in self.rows()],
                    "timings": [asdict(timing) for timing in self.timings()],
                    "references": dict(self.references),
                    "metrics": {str(epoch): dict(values) for epoch, values in sorted(self._metrics.items())}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the history with a saved one (older checkpoints lack the newer entries)."""
        points: dict[int, list[PlanePoint]] = {}
        for point in state.get("points", []):
            points.setdefault(int(point["epoch"]), []).append(PlanePoint(**point))
        timings = {int(timing["epoch"]): EpochTiming(**timing) for timing in state.get("timings", [])}
        latest = {(entry["layer"], entry["quantity"]): (int(entry["epoch"]), Estimate(
            entry["value"], entry["stderr"], entry["method"], entry["n"],
            {} if entry["replicates"] is None else {"replicates": torch.tensor(entry["replicates"], dtype=torch.float64)}))
            for entry in state.get("latest", [])}
        with self._lock:
            self._points, self._timings, self._latest = points, timings, latest
            self._methods = curve_methods(self.rows())
            self.references = dict(state.get("references", {}))
            self._metrics = {int(epoch): dict(values) for epoch, values in state.get("metrics", {}).items()}

    def write(self, directory: str, stem: str = "information_plane", settings: Mapping[str, Any] | None = None) -> tuple[str, str]:
        """Write ``<stem>.csv`` (points) and ``<stem>.json`` (points, timings, references, metrics, settings).

        Returns:
            The CSV and JSON paths.
        """
        os.makedirs(directory, exist_ok=True)
        csv_path = os.path.join(directory, f"{stem}.csv")
        json_path = os.path.join(directory, f"{stem}.json")
        write_csv(csv_path, [asdict(point) for point in self.rows()], columns=COLUMNS)
        document = {"settings": dict(settings or {}), **self.document()}
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


def _as_list(values: torch.Tensor | None) -> list | None:
    return None if values is None else values.tolist()


def _json_safe(value: Any) -> Any:
    """Replace NaN/inf floats by ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value
