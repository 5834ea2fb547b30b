"""Information-plane figures (matplotlib, Agg backend).

The information plane puts I(X;L) on the x axis and I(Y;L) on the y axis (nats). One marker per
layer and epoch, coloured by epoch (with a colour bar), one marker shape per layer, thin lines
joining the layers of the same epoch, and ±stderr error bars. NaN entries are gaps: the point is
skipped and the epoch's line is broken there. A lower bound is drawn hollow with an arrow in the
direction it may grow (right for I(X;L), up for I(Y;L)): grey where the estimate exceeded what N
samples resolve (censored at log N), red where it sits below a deeper layer's, which only
compression can cause (the data-processing inequality).

Figures are built on an Agg canvas without pyplot, so plotting never touches the global pyplot
state or the user's backend; a notebook still displays the returned ``Figure``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
#: Arrow colour and legend text of the two kinds of lower bound.
LOWER_BOUND_COLOURS = {"censored": "0.45", "compression_loss": "tab:red"}
LOWER_BOUND_LABELS = {"censored": "lower bound: beyond log N", "compression_loss": "lower bound: compression loss"}


def _as_grid(values: np.ndarray | Sequence, shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape (epochs, layers) = {shape}, got {array.shape}")
    return array


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
) -> Figure:
    """Draw an information plane.

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

    Returns:
        A new ``Figure`` on an Agg canvas (``fig.savefig(...)`` to write it; not registered
        with pyplot, so it needs no closing).
    """
    i_xl = np.asarray(i_xl, dtype=float)
    if i_xl.ndim != 2:
        raise ValueError(f"i_xl must have shape (epochs, layers), got {i_xl.shape}")
    shape = i_xl.shape
    n_epochs, n_layers = shape
    i_yl = _as_grid(i_yl, shape, "i_yl")
    x_err = _as_grid(i_xl_stderr, shape, "i_xl_stderr") if i_xl_stderr is not None else np.zeros(shape)
    y_err = _as_grid(i_yl_stderr, shape, "i_yl_stderr") if i_yl_stderr is not None else np.zeros(shape)
    flags = {name: np.zeros(shape, dtype=bool) if value is None else _as_grid(value, shape, name).astype(bool)
             for name, value in (("i_xl_censored", i_xl_censored), ("i_yl_censored", i_yl_censored),
                                 ("i_xl_compression_loss", i_xl_compression_loss),
                                 ("i_yl_compression_loss", i_yl_compression_loss))}
    epochs = np.arange(n_epochs) if epochs is None else np.asarray(epochs)
    if epochs.shape != (n_epochs,):
        raise ValueError(f"epochs must have shape ({n_epochs},), got {epochs.shape}")
    layers = [f"L{j}" for j in range(n_layers)] if layers is None else list(layers)
    if len(layers) != n_layers:
        raise ValueError(f"layers must name {n_layers} layers, got {len(layers)}")

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colormap = matplotlib.colormaps[cmap]
    low, high = (float(epochs.min()), float(epochs.max())) if n_epochs else (0.0, 1.0)
    norm = Normalize(vmin=low, vmax=high if high > low else low + 1.0)
    for row in range(n_epochs):
        colour = colormap(norm(epochs[row]))
        ax.plot(i_xl[row], i_yl[row], "-", color=colour, linewidth=0.6, alpha=0.6, zorder=1)
        ok = np.isfinite(i_xl[row]) & np.isfinite(i_yl[row])
        ax.errorbar(i_xl[row, ok], i_yl[row, ok], xerr=np.nan_to_num(x_err[row, ok]), yerr=np.nan_to_num(y_err[row, ok]),
                    fmt="none", ecolor=colour, elinewidth=0.6, alpha=0.5, zorder=2)
    bounded = np.zeros(shape, dtype=bool)
    for flag in flags.values():
        bounded |= flag
    for column in range(n_layers):
        ok = np.isfinite(i_xl[:, column]) & np.isfinite(i_yl[:, column])
        marker = MARKERS[column % len(MARKERS)]
        for hollow in (False, True):
            rows = ok & (bounded[:, column] == hollow)
            if not rows.any():
                continue
            points = ax.scatter(i_xl[rows, column], i_yl[rows, column], c=epochs[rows], cmap=colormap, norm=norm,
                                marker=marker, s=28, edgecolors="black", linewidths=0.3, zorder=3)
            if hollow:  # the epoch colour moves to the outline
                points.set_facecolor("none")
                points.set_edgecolor(None)
                points.set_linewidth(1.0)
    _draw_lower_bounds(ax, i_xl, i_yl, flags)
    colorbar = fig.colorbar(ScalarMappable(norm=norm, cmap=colormap), ax=ax, label="epoch")
    colorbar.locator = MaxNLocator(integer=True)
    colorbar.update_ticks()
    handles = [Line2D([], [], linestyle="none", marker=MARKERS[j % len(MARKERS)], color="grey", label=name)
               for j, name in enumerate(layers)]
    for reason, colour in LOWER_BOUND_COLOURS.items():
        if any(flags[f"{q}_{reason}"].any() for q in ("i_xl", "i_yl")):
            handles.append(Line2D([], [], color=colour, marker=">", markersize=4, linewidth=1.0,
                                  label=LOWER_BOUND_LABELS[reason]))
    ax.legend(handles=handles, title="layer", fontsize="small", loc="best")
    ax.set_xlabel("I(X;L), nats")
    ax.set_ylabel("I(Y;L), nats")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _draw_lower_bounds(ax, i_xl: np.ndarray, i_yl: np.ndarray, flags: dict[str, np.ndarray]) -> None:
    """An arrow from every lower-bound point in the direction its quantity may grow."""
    finite = np.isfinite(i_xl) & np.isfinite(i_yl)
    if not finite.any():
        return
    span_x = max(float(np.ptp(i_xl[finite])), 1.0)
    span_y = max(float(np.ptp(i_yl[finite])), 0.5)
    for reason, colour in LOWER_BOUND_COLOURS.items():
        for quantity, (dx, dy) in (("i_xl", (0.06 * span_x, 0.0)), ("i_yl", (0.0, 0.06 * span_y))):
            for row, column in zip(*np.nonzero(flags[f"{quantity}_{reason}"] & finite)):
                ax.annotate("", xy=(i_xl[row, column] + dx, i_yl[row, column] + dy),
                            xytext=(i_xl[row, column], i_yl[row, column]), zorder=4,
                            arrowprops={"arrowstyle": "->", "color": colour, "linewidth": 1.0})
