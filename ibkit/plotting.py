"""Information-plane figures (matplotlib, Agg backend).

The information plane puts I(X;L) on the x axis and I(Y;L) on the y axis, in nats. Two figures:

- :func:`plot_layer_planes`, the paper's view (Butakov et al., ICLR 2024, Figure 5): one panel per
  layer, each the layer's trajectory over the analysed epochs, coloured by the epoch or by a
  per-epoch value such as the change of the training loss since the previous analysed epoch.
  :func:`plot_layer_cards` makes one compact figure per layer, legible in a TensorBoard card.
- :func:`plot_information_plane` (and :func:`plot_overview`, the same from the history's arrays):
  every layer in one panel, one marker shape per layer, thin lines joining the layers of an epoch.

Common to both: error bars of ±:data:`ERROR_BAR_STDERRS` standard errors (stated in the figure);
NaN entries are gaps (the point is skipped and its lines are broken there); dashed reference lines
at H(Y) and log N when given. A bound is drawn as a hollow marker with an arrow towards where the
truth may lie (:data:`BOUND_STYLES`): right for I(X;L) and up for I(Y;L) for a lower bound (grey:
the estimate exceeded what N samples resolve, censored at log N; red: below a deeper layer's,
which only compression can cause; purple: below 0 beyond its error, drawn at 0), left or down for
an upper bound (orange: capped at a computed bound such as H(Y)).

Figures are built on an Agg canvas without pyplot, so plotting never touches the global pyplot
state or the user's backend; a notebook still displays the returned ``Figure``. Sizes and fonts are
chosen for where each figure is read: the grid at about 1000 px (a notebook, the README,
TensorBoard's "actual size"), a one-layer card and the overview scaled into a TensorBoard image
card (350 px wide in the Images tab of TensorBoard 2.21, at most 375 x 215 px in Time Series).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerBase
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch
from matplotlib.ticker import MaxNLocator

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
#: Error bars are the estimate ± this many standard errors (about a 95 % interval), as the
#: ``ib_band/<layer>/<quantity>_lower``/``_upper`` band of the callback's TensorBoard scalars.
ERROR_BAR_STDERRS = 2.0
#: The quantities of a plane point: key prefix in ``InformationPlaneHistory.as_arrays()`` -> axis name.
QUANTITY_NAMES = {"I_XL": "I(X;L)", "I_YL": "I(Y;L)"}
#: Values of the ``*_trend`` arrays.
TRENDS = ("up", "down", "")
#: Colour of points and segments whose colour value is NaN (e.g. the loss change of the first epoch).
MISSING_COLOUR = "0.6"
REFERENCE_COLOURS = {"label_entropy": "tab:green", "log_n": "0.3"}


@dataclass(frozen=True)
class BoundStyle:
    """How one kind of bound is drawn: arrow colour, direction and legend text.

    ``lower`` bounds point right (I(X;L)) or up (I(Y;L)), towards larger truths; upper bounds
    point left or down.
    """

    colour: str
    lower: bool
    label: str


#: The flag suffixes of ``InformationPlaneHistory.as_arrays()`` (``I_XL_<kind>``) that mark bounds.
BOUND_STYLES = {
    "censored": BoundStyle("0.4", True, "lower bound: beyond log N"),
    "compression_loss": BoundStyle("tab:red", True, "lower bound: compression loss"),
    "negative": BoundStyle("tab:purple", True, "lower bound: estimate < 0, drawn at 0"),
    "capped": BoundStyle("tab:orange", False, "upper bound: capped at a bound (e.g. H(Y))"),
}
#: Kept for callers of the overview's first version: the lower-bound kinds' colours and labels.
LOWER_BOUND_COLOURS = {kind: style.colour for kind, style in BOUND_STYLES.items() if style.lower}
LOWER_BOUND_LABELS = {kind: style.label for kind, style in BOUND_STYLES.items() if style.lower}
#: Length of a bound arrow, in points.
ARROW_POINTS = 15.0


# ----------------------------------------------------------------------------------------------
# Input checks


def _as_grid(values: np.ndarray | Sequence, shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape (epochs, layers) = {shape}, got {array.shape}")
    return array


def _as_flags(values: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    """``(E, L)`` bools; ``None`` is all False, and so are NaN entries of a float array."""
    if values is None:
        return np.zeros(shape, dtype=bool)
    array = np.asarray(values)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape (epochs, layers) = {shape}, got {array.shape}")
    if array.dtype == bool:
        return array
    return np.nan_to_num(array.astype(float)) != 0


def _as_trends(values: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    """``(E, L)`` strings among :data:`TRENDS`; ``None`` (the key absent) is all empty."""
    if values is None:
        return np.full(shape, "", dtype=object)
    array = np.asarray(values, dtype=object)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape (epochs, layers) = {shape}, got {array.shape}")
    array = np.vectorize(lambda value: "" if value is None or value != value else str(value), otypes=[object])(array)
    unknown = sorted(set(array.ravel()) - set(TRENDS))
    if unknown:
        raise ValueError(f"{name} holds {unknown}; its values must be 'up', 'down' or ''")
    return array


@dataclass(frozen=True)
class PlaneArrays:
    """Checked arrays of an information-plane history (see :func:`plane_arrays`)."""

    epochs: np.ndarray  # (E,)
    layers: list[str]  # L names
    values: dict[str, np.ndarray]  # quantity -> (E, L) nats, NaN = gap
    stderrs: dict[str, np.ndarray]  # quantity -> (E, L) nats, NaN = no bar
    flags: dict[str, dict[str, np.ndarray]]  # quantity -> bound kind -> (E, L) bools
    trends: dict[str, np.ndarray]  # quantity -> (E, L) "up" / "down" / ""

    @property
    def finite(self) -> np.ndarray:
        """``(E, L)``: both coordinates are known (not a gap)."""
        return np.isfinite(self.values["I_XL"]) & np.isfinite(self.values["I_YL"])

    def bound(self) -> np.ndarray:
        """``(E, L)``: the point is drawn (not a gap) and some bound flag is set on either quantity."""
        out = np.zeros(self.values["I_XL"].shape, dtype=bool)
        for kinds in self.flags.values():
            for flag in kinds.values():
                out |= flag
        return out & self.finite


def plane_arrays(arrays: Mapping[str, Any]) -> PlaneArrays:
    """Check the dict of ``InformationPlaneHistory.as_arrays()`` and fill in the optional keys.

    Required: ``epochs`` ``(E,)``, ``layers`` (L names), ``I_XL`` and ``I_YL`` ``(E, L)`` floats
    in nats. Optional (absent means none): ``I_XL_stderr``/``I_YL_stderr`` (nats), the bound flags
    ``<quantity>_<kind>`` for every kind in :data:`BOUND_STYLES` (``(E, L)`` bools), and
    ``I_XL_trend``/``I_YL_trend`` (``(E, L)`` strings ``"up"``, ``"down"`` or ``""``).

    Raises:
        ValueError: a required key is missing, or an array has the wrong shape or values (the
            message names the key).
    """
    if not isinstance(arrays, Mapping):
        raise ValueError(f"arrays must be the dict of InformationPlaneHistory.as_arrays(), got {type(arrays).__name__}")
    missing = [key for key in ("epochs", "layers", "I_XL", "I_YL") if key not in arrays]
    if missing:
        raise ValueError(f"arrays is missing {missing}; expected the dict of InformationPlaneHistory.as_arrays()")
    epochs = np.asarray(arrays["epochs"])
    if epochs.ndim != 1 or epochs.size == 0:
        raise ValueError(f"arrays['epochs'] must have shape (E,) with E >= 1, got {epochs.shape}")
    layers = [str(name) for name in arrays["layers"]]
    if not layers:
        raise ValueError("arrays['layers'] names no layer")
    shape = (epochs.size, len(layers))
    values = {q: _as_grid(arrays[q], shape, f"arrays[{q!r}]") for q in QUANTITY_NAMES}
    stderrs = {q: np.full(shape, np.nan) if arrays.get(f"{q}_stderr") is None
               else _as_grid(arrays[f"{q}_stderr"], shape, f"arrays['{q}_stderr']") for q in QUANTITY_NAMES}
    flags = {q: {kind: _as_flags(arrays.get(f"{q}_{kind}"), shape, f"arrays['{q}_{kind}']") for kind in BOUND_STYLES}
             for q in QUANTITY_NAMES}
    trends = {q: _as_trends(arrays.get(f"{q}_trend"), shape, f"arrays['{q}_trend']") for q in QUANTITY_NAMES}
    return PlaneArrays(epochs, layers, values, stderrs, flags, trends)


def change_since_previous(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """The change of a per-epoch value since the previous analysed epoch, for ``colour=``.

    Args:
        values: ``(E,)`` a metric at each analysed epoch (e.g. the mean training loss), NaN where
            unknown.

    Returns:
        ``(E,)`` floats ``values[e] - values[e - 1]``; NaN for the first epoch and next to unknowns.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"values must have shape (E,), got {values.shape}")
    return np.concatenate([[np.nan], np.diff(values)])[: values.size]


# ----------------------------------------------------------------------------------------------
# Colours


@dataclass(frozen=True)
class _ColourScale:
    """What colours the points (one value per analysed epoch) and how values map to colours."""

    values: np.ndarray  # (E,) what is coloured, NaN = no colour
    norm: Normalize
    cmap: Colormap
    label: str
    integer: bool  # integer colour-bar ticks (epochs)

    def rgba(self) -> np.ndarray:
        """``(E, 4)`` colours, :data:`MISSING_COLOUR` where the value is NaN."""
        out = self.cmap(self.norm(np.nan_to_num(self.values)))
        out[~np.isfinite(self.values)] = matplotlib.colors.to_rgba(MISSING_COLOUR)
        return out

    def colorbar(self, fig: Figure, axes: Sequence, fonts: Mapping[str, float], wrap: int = 40) -> Any:
        """A colour bar right of ``axes``, labelled (wrapped at ``wrap`` characters) with what is coloured."""
        bar = fig.colorbar(ScalarMappable(norm=self.norm, cmap=self.cmap), ax=list(axes), fraction=0.05, pad=0.02,
                           aspect=25)
        bar.set_label(textwrap.fill(self.label, wrap), fontsize=fonts["label"])
        bar.locator = MaxNLocator(nbins=4, integer=self.integer)
        bar.update_ticks()
        bar.ax.tick_params(labelsize=fonts["tick"])
        return bar


def _colour_scale(epochs: np.ndarray, colour: Any, label: str, centre: float | None, cmap: str | None) -> _ColourScale:
    """The epoch (sequential colours), or ``colour`` (diverging colours centred at ``centre``)."""
    if colour is None:
        values = epochs.astype(float)
        low, high = float(values.min()), float(values.max())
        return _ColourScale(values, Normalize(low, high if high > low else low + 1.0),
                            matplotlib.colormaps[cmap or "viridis"], label, True)
    values = np.asarray(colour, dtype=float)
    if values.shape != epochs.shape:
        raise ValueError(f"colour must have shape (epochs,) = {epochs.shape}, got {values.shape}")
    known = values[np.isfinite(values)]
    if centre is None:
        low, high = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
        norm = Normalize(low, high if high > low else low + 1.0)
        return _ColourScale(values, norm, matplotlib.colormaps[cmap or "viridis"], label, False)
    half = float(np.max(np.abs(known - centre))) if known.size else 1.0
    half = half if half > 0 else 1.0
    return _ColourScale(values, Normalize(centre - half, centre + half), matplotlib.colormaps[cmap or "coolwarm"],
                        label, False)


# ----------------------------------------------------------------------------------------------
# Drawing pieces (one panel)


def _draw_error_bars(ax, x: np.ndarray, y: np.ndarray, x_err: np.ndarray, y_err: np.ndarray, stderrs: float,
                     colour: Any = "0.55") -> None:
    """±``stderrs`` SE bars at the finite points of ``x``/``y`` (any shape; NaN SE draws no bar)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return
    ax.errorbar(x[ok], y[ok], xerr=stderrs * np.nan_to_num(x_err[ok]), yerr=stderrs * np.nan_to_num(y_err[ok]),
                fmt="none", ecolor=colour, elinewidth=0.9, alpha=0.7, zorder=2)


def _draw_segments(ax, x: np.ndarray, y: np.ndarray, rgba: np.ndarray) -> None:
    """Join consecutive points ``(E,)`` in epoch order; segment e-1 -> e takes colour ``rgba[e]``.

    A gap (NaN) breaks the line. A thin dark outline keeps pale colours visible on white.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    steps = [e for e in range(1, x.size) if ok[e - 1] and ok[e]]
    if not steps:
        return
    segments = [[(x[e - 1], y[e - 1]), (x[e], y[e])] for e in steps]
    lines = LineCollection(segments, colors=rgba[steps], linewidths=2.2, zorder=3, gid="trajectory")
    lines.set_path_effects([patheffects.Stroke(linewidth=3.4, foreground="0.35"), patheffects.Normal()])
    ax.add_collection(lines)


def _draw_points(ax, x: np.ndarray, y: np.ndarray, scale: _ColourScale, hollow: np.ndarray, marker: str = "o",
                 size: float = 46.0) -> None:
    """Points ``(E,)`` coloured by ``scale`` (grey where its value is NaN), filled, or hollow (white
    inside, coloured ring) where ``hollow``; NaN coordinates are skipped."""
    ok = np.isfinite(x) & np.isfinite(y)
    filled, bounded = ok & ~hollow, ok & hollow
    if filled.any():
        ax.scatter(x[filled], y[filled], c=scale.values[filled], cmap=scale.cmap.with_extremes(bad=MISSING_COLOUR),
                   norm=scale.norm, plotnonfinite=True, marker=marker, s=size, edgecolors="black", linewidths=0.6,
                   zorder=4, gid="points")
    if bounded.any():
        ax.scatter(x[bounded], y[bounded], facecolors="white", edgecolors="black", marker=marker, s=size * 1.9,
                   linewidths=0.6, zorder=4, gid="bound-points-outline")
        ax.scatter(x[bounded], y[bounded], facecolors="white", edgecolors=scale.rgba()[bounded], marker=marker, s=size,
                   linewidths=2.2, zorder=4, gid="bound-points")


def _draw_bound_arrows(ax, x: np.ndarray, y: np.ndarray, flags: Mapping[str, Mapping[str, np.ndarray]]) -> set[str]:
    """An arrow from every bound point towards where the truth may lie (:data:`BOUND_STYLES`).

    Args:
        x, y: point coordinates (any shape, the same as every flag array), NaN = gap.
        flags: quantity (``I_XL``/``I_YL``) -> bound kind -> bools.

    Returns:
        The bound kinds drawn.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    drawn = set()
    for quantity, kinds in flags.items():
        for kind, flag in kinds.items():
            style = BOUND_STYLES[kind]
            sign = 1.0 if style.lower else -1.0
            offset = (sign * ARROW_POINTS, 0.0) if quantity == "I_XL" else (0.0, sign * ARROW_POINTS)
            for index in zip(*np.nonzero(flag & ok)):
                ax.annotate("", xy=(x[index], y[index]), xytext=offset, textcoords="offset points", zorder=5,
                            arrowprops={"arrowstyle": "<|-", "color": style.colour, "linewidth": 1.6,
                                        "shrinkA": 0, "shrinkB": 4, "mutation_scale": 11},
                            gid=f"bound-{quantity}-{kind}")
                drawn.add(kind)
    return drawn


#: Trend marker per (quantity, direction): a filled triangle pointing the way the quantity moved.
TREND_MARKERS = {("I_XL", "up"): ">", ("I_XL", "down"): "<", ("I_YL", "up"): "^", ("I_YL", "down"): "v"}


def _draw_trends(ax, x: np.ndarray, y: np.ndarray, trends: Mapping[str, np.ndarray]) -> set[str]:
    """Filled triangles on the segment from the previous epoch's point where a change is significant.

    ``▶``/``◀``: I(X;L) rose/fell; ``▲``/``▼``: I(Y;L) rose/fell. Where both changed they sit at
    0.38 and 0.62 of the segment, otherwise at its middle. A change with no segment (a gap before
    it) is not drawn.

    Args:
        x, y: ``(E,)`` one layer's trajectory, NaN = gap.
        trends: quantity -> ``(E,)`` ``"up"``/``"down"``/``""``.

    Returns:
        The quantities whose changes were drawn.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    drawn = set()
    for e in range(1, x.size):
        marked = [(q, trends[q][e]) for q in QUANTITY_NAMES if trends[q][e]]
        if not (marked and ok[e - 1] and ok[e]):
            continue
        fractions = (0.5,) if len(marked) == 1 else (0.38, 0.62)
        for (quantity, direction), t in zip(marked, fractions):
            ax.scatter([x[e - 1] + t * (x[e] - x[e - 1])], [y[e - 1] + t * (y[e] - y[e - 1])],
                       marker=TREND_MARKERS[quantity, direction], s=85, c="black", edgecolors="white",
                       linewidths=0.8, zorder=6, gid=f"trend-{quantity}-{direction}")
            drawn.add(quantity)
    return drawn


def _draw_references(ax, label_entropy: float | None, log_n: float | None) -> None:
    """Dashed lines at I(Y;L) = H(Y) (horizontal) and I(X;L) = log N (vertical), when given."""
    if label_entropy is not None:
        ax.axhline(label_entropy, linestyle="--", linewidth=1.4, color=REFERENCE_COLOURS["label_entropy"], zorder=1,
                   gid="reference-label_entropy")
    if log_n is not None:
        ax.axvline(log_n, linestyle="--", linewidth=1.4, color=REFERENCE_COLOURS["log_n"], zorder=1,
                   gid="reference-log_n")


def _label_ends(ax, x: np.ndarray, y: np.ndarray, epochs: np.ndarray, fonts: Mapping[str, float]) -> None:
    """The epoch number next to the first and the last point of a trajectory ``(E,)``."""
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    for e in sorted({int(ok[0]), int(ok[-1])}) if ok.size else ():
        ax.annotate(f"{epochs[e]}", xy=(x[e], y[e]), xytext=(5, 4), textcoords="offset points",
                    fontsize=fonts["note"], color="0.15", zorder=7, gid="epoch-label")


def _label_references(ax, label_entropy: float | None, log_n: float | None, fonts: Mapping[str, float]) -> None:
    """``H(Y)`` and ``log N`` written at the ends of their dashed lines (for figures whose legend
    does not name them)."""
    if label_entropy is not None:
        ax.annotate("H(Y)", xy=(0.0, label_entropy), xycoords=("axes fraction", "data"), xytext=(3, 2),
                    textcoords="offset points", ha="left", va="bottom", fontsize=fonts["note"],
                    color=REFERENCE_COLOURS["label_entropy"], gid="reference-text")
    if log_n is not None:
        ax.annotate("log N", xy=(log_n, 0.0), xycoords=("data", "axes fraction"), xytext=(-3, 3),
                    textcoords="offset points", ha="right", va="bottom", fontsize=fonts["note"],
                    color=REFERENCE_COLOURS["log_n"], gid="reference-text")


def _style_axes(ax, xlabel: bool, ylabel: bool, fonts: Mapping[str, float], ticks: int = 4) -> None:
    """Few ticks, the axis labels where asked, a light grid and room for the bound arrows."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=ticks))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=ticks))
    ax.tick_params(labelsize=fonts["tick"])
    if xlabel:
        ax.set_xlabel(f"{QUANTITY_NAMES['I_XL']}, nats", fontsize=fonts["label"])
    if ylabel:
        ax.set_ylabel(f"{QUANTITY_NAMES['I_YL']}, nats", fontsize=fonts["label"])
    ax.margins(0.12)
    ax.grid(alpha=0.3)


# ----------------------------------------------------------------------------------------------
# Legend


@dataclass(frozen=True)
class _BoundKey:
    """Legend key of a bound kind: a hollow marker with its arrow."""

    style: BoundStyle


class _BoundKeyHandler(HandlerBase):
    """Draws a :class:`_BoundKey`: a ring with an arrow leaving it right (lower) or left (upper bound)."""

    def create_artists(self, legend, orig_handle, xdescent, ydescent, width, height, fontsize, trans):
        style = orig_handle.style
        y = height / 2 - ydescent
        left, right = -xdescent + 0.25 * width, -xdescent + 0.95 * width
        start, end = (left, right) if style.lower else (right, left)
        ring = Line2D([start], [y], linestyle="none", marker="o", markersize=0.55 * fontsize, markerfacecolor="white",
                      markeredgecolor="black", markeredgewidth=1.2, transform=trans)
        arrow = FancyArrowPatch((start, y), (end, y), arrowstyle="-|>", mutation_scale=0.9 * fontsize,
                                color=style.colour, linewidth=1.6, shrinkA=4, shrinkB=0, transform=trans)
        return [arrow, ring]


def _legend_entries(kinds: set[str], trend_quantities: set[str], missing_colour: bool, *,
                    references: Mapping[str, float | None] | None = None,
                    stderrs: float | None = None) -> tuple[list, list[str]]:
    """Handles and labels of the marker kinds that occur (bound kinds, trend quantities, NaN colour).

    With ``stderrs``, a first entry for the points and their error bars; with ``references``
    (``label_entropy``/``log_n`` -> value or None), one per reference line drawn.
    """
    handles: list = []
    labels: list[str] = []
    if stderrs is not None:
        handles.append(Line2D([], [], color="0.35", linewidth=2.2, marker="o", markersize=7, markerfacecolor="0.7",
                              markeredgecolor="black"))
        labels.append(f"estimate ± {stderrs:g} SE, epochs in order")
    names = {"label_entropy": "H(Y)", "log_n": "log N"}
    for key, value in (references or {}).items():
        if value is not None:
            handles.append(Line2D([], [], linestyle="--", linewidth=1.4, color=REFERENCE_COLOURS[key]))
            labels.append(f"{names[key]} = {value:.2f} nats")
    for kind, style in BOUND_STYLES.items():
        if kind in kinds:
            handles.append(_BoundKey(style))
            labels.append(style.label)
    for quantity, (up, down) in (("I_XL", ("▶", "◀")), ("I_YL", ("▲", "▼"))):
        if quantity in trend_quantities:
            handles.append(Line2D([], [], linestyle="none", marker=TREND_MARKERS[quantity, "up"], markersize=9,
                                  color="black"))
            labels.append(f"{QUANTITY_NAMES[quantity]} {up} rose / {down} fell, significant")
    if missing_colour:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=8, markerfacecolor=MISSING_COLOUR,
                              markeredgecolor="black"))
        labels.append("no colour value")
    return handles, labels


# ----------------------------------------------------------------------------------------------
# Figures


def _grid_shape(n_layers: int, max_columns: int = 3) -> tuple[int, int]:
    """Rows and columns for ``n_layers`` panels: one row up to ``max_columns``, 2x2 for four."""
    columns = 2 if n_layers == 4 and max_columns >= 2 else min(n_layers, max_columns)
    return math.ceil(n_layers / columns), columns


def _draw_layer_panel(ax, plane: PlaneArrays, j: int, scale: _ColourScale, *, stderrs: float,
                      label_entropy: float | None, log_n: float | None,
                      fonts: Mapping[str, float]) -> tuple[set[str], set[str]]:
    """Layer ``j``'s trajectory on ``ax``; returns the bound kinds and trend quantities drawn."""
    x, y = plane.values["I_XL"][:, j], plane.values["I_YL"][:, j]
    _draw_references(ax, label_entropy, log_n)
    _draw_error_bars(ax, x, y, plane.stderrs["I_XL"][:, j], plane.stderrs["I_YL"][:, j], stderrs)
    _draw_segments(ax, x, y, scale.rgba())
    _draw_points(ax, x, y, scale, plane.bound()[:, j])
    kinds = _draw_bound_arrows(ax, x, y, {q: {k: f[:, j] for k, f in plane.flags[q].items()} for q in QUANTITY_NAMES})
    trends = _draw_trends(ax, x, y, {q: plane.trends[q][:, j] for q in QUANTITY_NAMES})
    _label_ends(ax, x, y, plane.epochs, fonts)
    return kinds, trends


def _select_layers(plane: PlaneArrays, layers: Sequence[str] | None) -> list[int]:
    """Column indices of ``layers`` (all, in order, when None)."""
    if layers is None:
        return list(range(len(plane.layers)))
    if isinstance(layers, str) or not layers:
        raise ValueError(f"layers must be a non-empty list of layer names, got {layers!r}")
    unknown = [name for name in layers if name not in plane.layers]
    if unknown:
        raise ValueError(f"layers names {unknown}, not among the recorded layers {plane.layers}")
    return [plane.layers.index(name) for name in layers]


#: Font sizes in points of a figure of several panels (read at about 1000 px: TensorBoard's
#: "actual size", a notebook, the README; about 0.35x as a TensorBoard card thumbnail).
GRID_FONTS = {"title": 15, "panel": 14, "label": 13, "tick": 12, "legend": 12, "note": 11}
#: Inches of a one-panel figure: at 100 dpi 580 x 360 px, which TensorBoard 2.21 shows at about
#: 0.6x in both image views (Images: 350 px wide; Time Series: within 375 x 215 px).
CARD_SIZE = (5.8, 3.6)
#: Font sizes in points of a one-panel figure: 13 pt is about 11 px in the card.
CARD_FONTS = {"title": 15, "panel": 15, "label": 14, "tick": 13, "legend": 13, "note": 13}
#: Font sizes in points of the all-layers overview (6.4 x 4.8 in by default, a card in TensorBoard).
OVERVIEW_FONTS = {"title": 14, "panel": 14, "label": 13, "tick": 12, "legend": 10, "note": 12}


def plot_layer_planes(
    arrays: Mapping[str, Any],
    *,
    layers: Sequence[str] | None = None,
    colour: Sequence[float] | np.ndarray | None = None,
    colour_label: str = "epoch",
    colour_centre: float | None = 0.0,
    cmap: str | None = None,
    label_entropy: float | None = None,
    log_n: float | None = None,
    stderrs: float = ERROR_BAR_STDERRS,
    title: str | None = None,
    max_columns: int = 3,
    figsize: tuple[float, float] | None = None,
    dpi: float = 100,
) -> Figure:
    """One information plane per layer: each layer's trajectory over the analysed epochs.

    Each panel shows one layer: its points in epoch order joined by segments, error bars of
    ±``stderrs`` standard errors, bounds as hollow markers with arrows (:data:`BOUND_STYLES`),
    significant changes since the previous analysed epoch as filled triangles on the segment
    (``▶``/``◀`` I(X;L) rose/fell, ``▲``/``▼`` I(Y;L) rose/fell), the first and last epoch numbers
    next to their points, and dashed reference lines at H(Y) and log N. A colour bar shared by the
    panels says what the colour is; the legend lists only the marker kinds that occur.

    Several layers make a grid (up to ``max_columns`` per row) with a full legend below, sized to
    be read at about 1000 px wide. A single layer (``layers=[name]``) makes a compact figure sized
    for a TensorBoard image card (about 350 px wide): its reference lines are labelled on the
    panel, the error-bar width is in its title, and its legend (right) shows only bound, trend and
    missing-colour markers.

    Args:
        arrays: the dict of ``InformationPlaneHistory.as_arrays()``: ``epochs`` ``(E,)``,
            ``layers`` (L names), ``I_XL``/``I_YL`` and their ``_stderr`` ``(E, L)`` in nats (NaN
            marks a gap: the point is skipped and the line broken), the ``(E, L)`` bool flags
            ``<quantity>_censored``, ``_compression_loss``, ``_negative``, ``_capped``, and the
            ``(E, L)`` strings ``<quantity>_trend`` (``"up"``, ``"down"``, ``""``). Absent optional
            keys mean no flags, no trends, no error bars (see :func:`plane_arrays`).
        layers: names of the layers to draw, in panel order; default all, in recorded order.
        colour: ``(E,)`` value per analysed epoch that colours its point and the segment arriving
            at it, e.g. ``change_since_previous(train_loss)``; NaN draws grey. Default: the epoch.
        colour_label: what the colour is, the colour bar's label (say so when ``colour`` is given,
            e.g. ``"Δ training loss"``).
        colour_centre: for ``colour``, centre a diverging colour map (``coolwarm``) at this value
            with limits symmetric around it; ``None`` maps min..max on ``viridis``. Ignored for
            the epoch.
        cmap: a matplotlib colour map name instead of those defaults.
        label_entropy: H(Y) in nats, drawn as a horizontal dashed line in every panel.
        log_n: log N in nats (the resolution limit of N samples), a vertical dashed line.
        stderrs: error bars are ± this many standard errors (stated in the figure).
        title: figure title; default "Information plane per layer, epochs <first>–<last>" for a
            grid, none for one layer (the panel's title names the layer and the epochs).
        max_columns: panels per row at most (four layers make a 2x2 grid).
        figsize: inches; default 3.3 x 2.8 per panel plus room for the colour bar, title and
            legend, or :data:`CARD_SIZE` for one layer.
        dpi: pixels per inch of the rendered image (TensorBoard logs it at this resolution).

    Returns:
        A new ``Figure`` on an Agg canvas (not registered with pyplot, so it needs no closing):
        ``fig.axes`` holds the panels in order, then the colour bar's axes.

    Raises:
        ValueError: ``arrays`` lacks a required key or an array has the wrong shape (the message
            names it), ``layers`` names an unknown layer, or ``colour`` is not ``(E,)``.
    """
    plane = plane_arrays(arrays)
    columns_drawn = _select_layers(plane, layers)
    scale = _colour_scale(plane.epochs, colour, colour_label, colour_centre, cmap)
    single = len(columns_drawn) == 1
    fonts = CARD_FONTS if single else GRID_FONTS
    rows, columns = _grid_shape(len(columns_drawn), max_columns)
    if figsize is None:
        figsize = CARD_SIZE if single else (3.3 * columns + 1.3, 2.8 * rows + 1.9)
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(h_pad=0.04, w_pad=0.04, hspace=0.03, wspace=0.03)
    kinds: set[str] = set()
    trend_quantities: set[str] = set()
    axes = []
    for panel, j in enumerate(columns_drawn):
        ax = fig.add_subplot(rows, columns, panel + 1)
        axes.append(ax)
        drawn_kinds, drawn_trends = _draw_layer_panel(ax, plane, j, scale, stderrs=stderrs,
                                                      label_entropy=label_entropy, log_n=log_n, fonts=fonts)
        kinds |= drawn_kinds
        trend_quantities |= drawn_trends
        _style_axes(ax, xlabel=panel + columns >= len(columns_drawn), ylabel=panel % columns == 0, fonts=fonts,
                    ticks=3 if single else 4)
        if single:
            ax.set_title(f"{plane.layers[j]}  (bars ± {stderrs:g} SE)", fontsize=fonts["panel"], loc="left")
            _label_references(ax, label_entropy, log_n, fonts)
        else:
            ax.set_title(plane.layers[j], fontsize=fonts["panel"])
    scale.colorbar(fig, axes, fonts, wrap=24 if single else 40)
    missing = bool((~np.isfinite(scale.values)[:, None] & plane.finite[:, columns_drawn]).any())
    if single:
        handles, labels = _legend_entries(kinds, trend_quantities, missing)
        if handles:
            fig.legend(handles, [_short_label(label) for label in labels], loc="outside lower center", frameon=False,
                       ncols=min(len(labels), 3), fontsize=fonts["legend"], handler_map={_BoundKey: _BoundKeyHandler()},
                       handlelength=1.8, handletextpad=0.4, columnspacing=1.0, borderaxespad=0.1)
    else:
        handles, labels = _legend_entries(kinds, trend_quantities, missing, stderrs=stderrs,
                                          references={"label_entropy": label_entropy, "log_n": log_n})
        fig.legend(handles, labels, loc="outside lower center", ncols=min(2, len(labels)), frameon=False,
                   fontsize=fonts["legend"], handler_map={_BoundKey: _BoundKeyHandler()}, handlelength=2.4,
                   columnspacing=1.5)
        if title is None:
            title = f"Information plane per layer, epochs {plane.epochs[0]}–{plane.epochs[-1]}"
    if title:
        fig.suptitle(title, fontsize=fonts["title"])
    return fig


def plot_layer_cards(arrays: Mapping[str, Any], **kwargs: Any) -> dict[str, Figure]:
    """One compact figure per layer, ``{layer name: Figure}`` in recorded order, for TensorBoard.

    TensorBoard 2.21 shows an image in a card about 350 px wide (Images tab; at most 375 x 215 px
    in Time Series), where a grid of panels cannot be read; logged as ``<prefix>/<layer>`` the
    cards themselves make the grid. Each is ``plot_layer_planes(arrays, layers=[name], **kwargs)``.
    """
    plane = plane_arrays(arrays)
    return {name: plot_layer_planes(arrays, layers=[name], **kwargs) for name in plane.layers}


#: Legend texts of a one-panel figure, where room is short.
SHORT_LABELS = {
    BOUND_STYLES["censored"].label: "≥ beyond log N",
    BOUND_STYLES["compression_loss"].label: "≥ compression",
    BOUND_STYLES["negative"].label: "≥ below 0",
    BOUND_STYLES["capped"].label: "≤ capped",
    "I(X;L) ▶ rose / ◀ fell, significant": "sig. Δ I(X;L)",
    "I(Y;L) ▲ rose / ▼ fell, significant": "sig. Δ I(Y;L)",
    "no colour value": "no colour",
}


def _short_label(label: str) -> str:
    return SHORT_LABELS.get(label, label)


def plot_information_plane(
    i_xl: np.ndarray,
    i_yl: np.ndarray,
    *,
    epochs: Sequence[int] | np.ndarray | None = None,
    layers: Sequence[str] | None = None,
    i_xl_stderr: np.ndarray | None = None,
    i_yl_stderr: np.ndarray | None = None,
    i_xl_censored: np.ndarray | None = None,
    i_yl_censored: np.ndarray | None = None,
    i_xl_compression_loss: np.ndarray | None = None,
    i_yl_compression_loss: np.ndarray | None = None,
    cmap: str = "viridis",
    title: str = "Information plane",
    figsize: tuple[float, float] = (6.4, 4.8),
    i_xl_negative: np.ndarray | None = None,
    i_yl_negative: np.ndarray | None = None,
    i_xl_capped: np.ndarray | None = None,
    i_yl_capped: np.ndarray | None = None,
    label_entropy: float | None = None,
    log_n: float | None = None,
    stderrs: float = ERROR_BAR_STDERRS,
    dpi: float = 100,
) -> Figure:
    """Draw every layer in one information plane (the all-layers overview).

    One marker per layer and epoch, coloured by epoch (with a colour bar), one marker shape per
    layer, thin lines joining the layers of the same epoch, error bars of ±``stderrs`` standard
    errors, bounds as hollow markers with arrows (:data:`BOUND_STYLES`), and dashed reference
    lines at H(Y) and log N when given. :func:`plot_layer_planes` is the per-layer view.

    Args:
        i_xl: ``(E, L)`` I(X;L) in nats for E epochs and L layers; NaN marks a gap.
        i_yl: ``(E, L)`` I(Y;L) in nats.
        epochs: ``(E,)`` epoch numbers for the colour scale; default ``0..E-1``.
        layers: L layer names for the legend; default ``L0..``.
        i_xl_stderr, i_yl_stderr: ``(E, L)`` standard errors (nats) drawn as error bars.
        i_xl_censored, i_yl_censored: ``(E, L)`` bools: the value is a lower bound at log N.
        i_xl_compression_loss, i_yl_compression_loss: ``(E, L)`` bools: the value is a lower bound
            limited by compression (below a deeper layer's).
        cmap: matplotlib colour map for the epochs.
        title: axes title.
        figsize: figure size in inches.
        i_xl_negative, i_yl_negative: ``(E, L)`` bools: the estimate was below 0 beyond its error;
            the value (0) is a lower bound.
        i_xl_capped, i_yl_capped: ``(E, L)`` bools: the estimate exceeded a computed upper bound
            (e.g. H(Y)); the value is that bound, an upper bound.
        label_entropy: H(Y) in nats, a horizontal dashed line labelled ``H(Y)``.
        log_n: log N in nats, a vertical dashed line labelled ``log N``.
        stderrs: error bars are ± this many standard errors (stated in the legend's title).
        dpi: pixels per inch of the rendered image.

    Returns:
        A new ``Figure`` on an Agg canvas (``fig.savefig(...)`` to write it; not registered
        with pyplot, so it needs no closing). ``fig.axes`` is the plane, then the colour bar.
    """
    i_xl = np.asarray(i_xl, dtype=float)
    if i_xl.ndim != 2:
        raise ValueError(f"i_xl must have shape (epochs, layers), got {i_xl.shape}")
    shape = i_xl.shape
    n_epochs, n_layers = shape
    i_yl = _as_grid(i_yl, shape, "i_yl")
    x_err = _as_grid(i_xl_stderr, shape, "i_xl_stderr") if i_xl_stderr is not None else np.zeros(shape)
    y_err = _as_grid(i_yl_stderr, shape, "i_yl_stderr") if i_yl_stderr is not None else np.zeros(shape)
    given = {"I_XL": {"censored": i_xl_censored, "compression_loss": i_xl_compression_loss, "negative": i_xl_negative,
                      "capped": i_xl_capped},
             "I_YL": {"censored": i_yl_censored, "compression_loss": i_yl_compression_loss, "negative": i_yl_negative,
                      "capped": i_yl_capped}}
    flags = {q: {kind: _as_flags(value, shape, f"{q.lower()}_{kind}") for kind, value in kinds.items()}
             for q, kinds in given.items()}
    epochs = np.arange(n_epochs) if epochs is None else np.asarray(epochs)
    if epochs.shape != (n_epochs,):
        raise ValueError(f"epochs must have shape ({n_epochs},), got {epochs.shape}")
    layers = [f"L{j}" for j in range(n_layers)] if layers is None else list(layers)
    if len(layers) != n_layers:
        raise ValueError(f"layers must name {n_layers} layers, got {len(layers)}")

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    scale = _colour_scale(epochs, None, "epoch", None, cmap) if n_epochs else None
    rgba = scale.rgba() if scale is not None else np.zeros((0, 4))
    _draw_references(ax, label_entropy, log_n)
    for row in range(n_epochs):
        ax.plot(i_xl[row], i_yl[row], "-", color=rgba[row], linewidth=0.8, alpha=0.6, zorder=1)
    _draw_error_bars(ax, i_xl, i_yl, x_err, y_err, stderrs, colour="0.6")
    bounded = np.zeros(shape, dtype=bool)
    for kinds in flags.values():
        for flag in kinds.values():
            bounded |= flag
    for column in range(n_layers):
        _draw_points(ax, i_xl[:, column], i_yl[:, column], scale, bounded[:, column],
                     marker=MARKERS[column % len(MARKERS)], size=36)
    drawn = _draw_bound_arrows(ax, i_xl, i_yl, flags)
    _label_references(ax, label_entropy, log_n, OVERVIEW_FONTS)
    if scale is not None:
        scale.colorbar(fig, [ax], OVERVIEW_FONTS)
    handles = [Line2D([], [], linestyle="none", marker=MARKERS[j % len(MARKERS)], markersize=7, color="grey",
                      markeredgecolor="black", label=name) for j, name in enumerate(layers)]
    labels = list(layers)
    for kind, style in BOUND_STYLES.items():
        if kind in drawn:
            handles.append(_BoundKey(style))
            labels.append(style.label)
    ax.legend(handles, labels, title=f"layer (bars ± {stderrs:g} SE)", fontsize=OVERVIEW_FONTS["legend"],
              title_fontsize=OVERVIEW_FONTS["legend"], loc="best", handler_map={_BoundKey: _BoundKeyHandler()})
    _style_axes(ax, xlabel=True, ylabel=True, fonts=OVERVIEW_FONTS)
    ax.margins(0.06)
    ax.set_title(title, fontsize=OVERVIEW_FONTS["title"])
    return fig


def plot_overview(arrays: Mapping[str, Any], *, label_entropy: float | None = None, log_n: float | None = None,
                  title: str | None = None, **kwargs: Any) -> Figure:
    """:func:`plot_information_plane` of the dict of ``InformationPlaneHistory.as_arrays()``.

    Every bound flag present in ``arrays`` is drawn (see :func:`plane_arrays` for the keys; absent
    ones mean none). ``title`` defaults to "Information plane, epochs <first>–<last>"; other keyword
    arguments go to :func:`plot_information_plane`.
    """
    plane = plane_arrays(arrays)
    flags = {f"{q.lower()}_{kind}": flag for q, kinds in plane.flags.items() for kind, flag in kinds.items()}
    if title is None:
        title = f"Information plane, epochs {plane.epochs[0]}–{plane.epochs[-1]}"
    return plot_information_plane(
        plane.values["I_XL"], plane.values["I_YL"], epochs=plane.epochs, layers=plane.layers,
        i_xl_stderr=plane.stderrs["I_XL"], i_yl_stderr=plane.stderrs["I_YL"], label_entropy=label_entropy, log_n=log_n,
        title=title, **flags, **kwargs)
