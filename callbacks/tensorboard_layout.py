"""TensorBoard for the information-plane callback: scalar tags, the metrics of an epoch, the layout."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lightning.pytorch.loggers import Logger, TensorBoardLogger

from ibkit.history import QUANTITIES, EpochResult, EpochTiming, PlanePoint

#: Prefix of every tag the callback writes but the error bars'.
PREFIX = "ib"
#: Prefix of the standard errors and band ends, kept out of the estimates' group in TensorBoard's
#: Scalars tab (it groups charts by the first part of the tag; the custom-scalars margin charts
#: draw each band around its estimate).
BAND_PREFIX = "ib_band"
FIGURE_TAG = f"{PREFIX}/information_plane"
#: Group of the one-layer figures (``ib/planes/<layer>``), each legible in a TensorBoard card.
CARDS = f"{PREFIX}/planes"
#: Text tag of the per-epoch table: every point's value, method and lower-bound flags.
POINTS_TAG = f"{PREFIX}/points"
TIMING_KEYS = ("capture_s", "compression_s", "estimation_s")
#: The plotted band is the estimate ± this many standard errors.
BAND_STDERRS = 2.0


def scalar_tag(layer: str, quantity: str) -> str:
    """``ib/<layer>/<quantity>``, e.g. ``ib/fc1/I_XL``: the tag of an estimate."""
    return f"{PREFIX}/{layer}/{quantity}"


def band_tag(layer: str, quantity: str, part: str) -> str:
    """``ib_band/<layer>/<quantity>_<part>`` for ``part`` in ``stderr``, ``lower``, ``upper``, e.g.
    ``ib_band/fc1/I_XL_lower``: the standard error of an estimate, or an end of its ±2 SE band."""
    return f"{BAND_PREFIX}/{layer}/{quantity}_{part}"


def card_tag(layer: str) -> str:
    """``ib/planes/<layer>``: the tag of one layer's information-plane card."""
    return f"{CARDS}/{layer}"


def timing_tag(stage: str) -> str:
    """``ib/time/<stage>`` for a stage in :data:`TIMING_KEYS` (or ``x_compression_s``, ``blocked_s``)."""
    return f"{PREFIX}/time/{stage}"


def plane_metrics(points: Sequence[PlanePoint], timing: EpochTiming) -> dict[str, float]:
    """Scalars of one analysed epoch: per layer and quantity the value, its standard error and the
    ``lower``/``upper`` ends of the ±2 SE band (NaN gaps are left out), plus the analysis times
    (the one-off compression of the probe inputs on the epoch that did it)."""
    metrics = {}
    for point in points:
        for quantity in QUANTITIES:
            value, stderr = getattr(point, quantity), getattr(point, f"{quantity}_stderr")
            if value != value:  # NaN is a gap: not logged
                continue
            metrics[scalar_tag(point.layer, quantity)] = value
            metrics[band_tag(point.layer, quantity, "stderr")] = stderr
            metrics[band_tag(point.layer, quantity, "lower")] = value - BAND_STDERRS * stderr
            metrics[band_tag(point.layer, quantity, "upper")] = value + BAND_STDERRS * stderr
    for stage in TIMING_KEYS:
        metrics[timing_tag(stage)] = getattr(timing, stage)
    if timing.x_compression_s is not None:
        metrics[timing_tag("x_compression_s")] = timing.x_compression_s
    return metrics


def points_table(points: Sequence[PlanePoint]) -> str:
    """A markdown table of one epoch's points for TensorBoard's text tab.

    Each cell reads ``value ± SE (method)``, then what qualifies it: ``≥``/``≤`` for a lower/upper
    bound with its reason (beyond log N, below 0, compression, above H(Y)), and ``↑``/``↓`` for a
    significant change since the previous analysed epoch; a gap gives its error.
    """
    header = "| layer | " + " | ".join(QUANTITIES.values()) + " |\n|---|" + "---|" * len(QUANTITIES)
    rows = [header]
    for point in points:
        rows.append(f"| {point.layer} | " + " | ".join(point_cell(point, quantity) for quantity in QUANTITIES) + " |")
    return "\n".join(rows)


#: The reasons a value is a bound, by flag: (lower or upper bound, what the table says).
BOUND_REASONS = {"censored": ("≥", "beyond log N"), "negative": ("≥", "below 0"),
                 "compression_loss": ("≥", "compression"), "capped": ("≤", "above H(Y)")}
TREND_ARROWS = {"up": " ↑", "down": " ↓", "": ""}


def point_cell(point: PlanePoint, quantity: str) -> str:
    """One quantity of a point as the text table shows it (see :func:`points_table`)."""
    value, stderr = getattr(point, quantity), getattr(point, f"{quantity}_stderr")
    if value != value:
        return f"gap: {getattr(point, f'{quantity}_error') or 'not estimated'}"
    bounds = [(sign, reason) for flag, (sign, reason) in BOUND_REASONS.items() if getattr(point, f"{quantity}_{flag}")]
    sign = bounds[0][0] + " " if bounds else ""
    note = f", bound: {' and '.join(reason for _, reason in bounds)}" if bounds else ""
    arrow = TREND_ARROWS[getattr(point, f"{quantity}_trend")]
    return f"{sign}{value:.3f} ± {stderr:.3f}{arrow} ({getattr(point, f'{quantity}_method')}{note})"


def summary_line(result: EpochResult) -> str:
    """The one console line of an analysed epoch: each layer's ``I(X;L)/I(Y;L)`` (nats; ``≥``/``≤``
    for bounds, ``↑``/``↓`` for significant changes, ``gap``) and the analysis time."""
    def short(point: PlanePoint, quantity: str) -> str:
        value = getattr(point, quantity)
        if value != value:
            return "gap"
        sign = "≤" if point.upper_bound(quantity) else "≥" if point.lower_bound(quantity) else ""
        return f"{sign}{value:.2f}{TREND_ARROWS[getattr(point, f'{quantity}_trend')].strip()}"

    timing = result.timing
    seconds = timing.capture_s + timing.compression_s + timing.estimation_s
    layers = ", ".join(f"{point.layer} {short(point, 'I_XL')}/{short(point, 'I_YL')}" for point in result.points)
    return f"InformationPlane epoch {result.epoch}, I(X;L)/I(Y;L) nats: {layers} ({seconds:.1f} s)"


def custom_scalars_layout(layers: Sequence[str]) -> dict:
    """Layout for ``SummaryWriter.add_custom_scalars``: per quantity, one margin chart per layer.

    Each chart draws the estimate with its ±2 SE band (``["Margin", [value, lower, upper]]``,
    exact tags). The format is ``{category: {chart title: [chart type, tags]}}``; the writer turns
    it into the ``tensorboard.plugins.custom_scalar.layout_pb2.Layout`` protobuf.
    """
    layout = {}
    for quantity, title in QUANTITIES.items():
        layout[f"{title} ± {BAND_STDERRS:g} SE, nats"] = {
            layer: ["Margin", [scalar_tag(layer, quantity), band_tag(layer, quantity, "lower"),
                               band_tag(layer, quantity, "upper")]]
            for layer in layers
        }
    return layout


def find_tensorboard(loggers: Iterable[Logger]) -> TensorBoardLogger | None:
    """The first ``TensorBoardLogger`` among the trainer's loggers, if any."""
    return next((logger for logger in loggers if isinstance(logger, TensorBoardLogger)), None)
