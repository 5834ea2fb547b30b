"""The information-plane figures: per-layer panels, cards, the overview, and what each marker means."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from ibkit.history import EpochTiming, InformationPlaneHistory, PlanePoint
from ibkit.plotting import (
    BOUND_STYLES,
    CARD_SIZE,
    QUANTITY_NAMES,
    change_since_previous,
    plot_layer_cards,
    plot_layer_planes,
    plot_overview,
)

LAYERS = ["L1", "L2", "L3", "probs"]
H_Y, LOG_N = math.log(10), math.log(500)


def base_arrays(n_epochs: int = 5) -> dict:
    """5 epochs x 4 layers in the format of ``InformationPlaneHistory.as_arrays()`` before the new
    flags (no ``_capped``, ``_negative`` or ``_trend`` keys)."""
    rng = np.random.default_rng(0)
    shape = (n_epochs, len(LAYERS))
    arrays = {"epochs": np.arange(n_epochs) * 2, "layers": list(LAYERS),
              "I_XL": rng.uniform(2.0, 5.0, shape), "I_YL": rng.uniform(0.5, 2.0, shape),
              "I_XL_stderr": np.full(shape, 0.1), "I_YL_stderr": np.full(shape, 0.05)}
    for quantity in QUANTITY_NAMES:
        arrays[f"{quantity}_censored"] = np.zeros(shape, dtype=bool)
        arrays[f"{quantity}_compression_loss"] = np.zeros(shape, dtype=bool)
    return arrays


def full_arrays(n_epochs: int = 5) -> dict:
    """``base_arrays`` with the new keys, all unset."""
    arrays = base_arrays(n_epochs)
    shape = arrays["I_XL"].shape
    for quantity in QUANTITY_NAMES:
        arrays[f"{quantity}_capped"] = np.zeros(shape, dtype=bool)
        arrays[f"{quantity}_negative"] = np.zeros(shape, dtype=bool)
        arrays[f"{quantity}_trend"] = np.full(shape, "", dtype=object)
    return arrays


def tagged(fig, prefix: str) -> list:
    """Artists of every panel whose gid starts with ``prefix``."""
    return [artist for ax in fig.axes for artist in ax.get_children() if (artist.get_gid() or "").startswith(prefix)]


def legend_texts(fig) -> list[str]:
    return [text.get_text() for legend in fig.legends for text in legend.get_texts()]


def renders(fig) -> bool:
    fig.savefig(io.BytesIO(), format="png")
    return True


def test_one_panel_per_layer_in_a_grid_with_a_shared_colour_bar():
    fig = plot_layer_planes(full_arrays())
    panels, colour_bar = fig.axes[:-1], fig.axes[-1]
    assert len(fig.axes) == len(LAYERS) + 1
    assert [ax.get_title() for ax in panels] == LAYERS
    assert [ax.get_subplotspec().get_geometry()[:2] for ax in panels] == [(2, 2)] * 4  # four layers: 2x2
    assert colour_bar.get_ylabel() == "epoch"
    assert panels[2].get_xlabel() == "I(X;L), nats" and panels[0].get_ylabel() == "I(Y;L), nats"
    assert any("± 2 SE" in text for text in legend_texts(fig))  # the error bars say what they are
    assert renders(fig)
    six = dict(full_arrays(), layers=[*LAYERS, "a", "b"])
    for key in ("I_XL", "I_YL", "I_XL_stderr", "I_YL_stderr"):
        six[key] = np.tile(six[key], (1, 2))[:, :6]
    six = {key: value for key, value in six.items() if not key.endswith(("_censored", "_compression_loss", "_capped",
                                                                          "_negative", "_trend"))}
    assert plot_layer_planes(six).axes[0].get_subplotspec().get_geometry()[:2] == (2, 3)


def test_gaps_are_skipped_and_break_the_line():
    arrays = full_arrays()
    arrays["I_XL"][2, 1] = np.nan
    fig = plot_layer_planes(arrays)
    panel = fig.axes[1]
    points = [artist for artist in panel.get_children() if artist.get_gid() == "points"]
    assert sum(len(collection.get_offsets()) for collection in points) == 4
    (trajectory,) = [artist for artist in panel.get_children() if artist.get_gid() == "trajectory"]
    assert len(trajectory.get_segments()) == 2  # 0-1 and 3-4; the gap at 2 breaks 1-2 and 2-3
    assert all(np.isfinite(segment).all() for segment in trajectory.get_segments())
    other = [artist for artist in fig.axes[0].get_children() if artist.get_gid() == "trajectory"]
    assert len(other[0].get_segments()) == 4


def test_reference_lines_at_the_given_values_in_every_panel():
    fig = plot_layer_planes(full_arrays(), label_entropy=H_Y, log_n=LOG_N)
    for ax in fig.axes[:-1]:
        (horizontal,) = [a for a in ax.get_children() if a.get_gid() == "reference-label_entropy"]
        (vertical,) = [a for a in ax.get_children() if a.get_gid() == "reference-log_n"]
        assert horizontal.get_ydata()[0] == pytest.approx(H_Y) and vertical.get_xdata()[0] == pytest.approx(LOG_N)
        low, high = ax.get_ylim()
        assert low < H_Y < high and ax.get_xlim()[0] < LOG_N < ax.get_xlim()[1]  # visible
    assert "H(Y) = 2.30 nats" in legend_texts(fig) and "log N = 6.21 nats" in legend_texts(fig)
    plain = plot_layer_planes(full_arrays())
    assert not tagged(plain, "reference") and not any("H(Y)" in text for text in legend_texts(plain))


def test_colour_by_a_per_epoch_change_with_its_label():
    loss = np.array([2.3, 1.2, 0.8, 0.7, 0.75])
    change = change_since_previous(loss)
    assert np.isnan(change[0]) and change[1:] == pytest.approx([-1.1, -0.4, -0.1, 0.05])
    fig = plot_layer_planes(full_arrays(), colour=change, colour_label="Δ training loss")
    colour_bar = fig.axes[-1]
    assert colour_bar.get_ylabel() == "Δ training loss"
    low, high = colour_bar.get_ylim()
    assert low == pytest.approx(-high) and high == pytest.approx(1.1)  # diverging, centred at 0
    assert "no colour value" in legend_texts(fig)  # the first epoch has no change
    assert "no colour value" not in legend_texts(plot_layer_planes(full_arrays()))
    with pytest.raises(ValueError, match="colour must have shape"):
        plot_layer_planes(full_arrays(), colour=[1.0, 2.0])


@pytest.mark.parametrize("quantity", list(QUANTITY_NAMES))
@pytest.mark.parametrize("kind", list(BOUND_STYLES))
def test_each_bound_kind_is_drawn_only_where_flagged(kind, quantity):
    arrays = full_arrays()
    arrays[f"{quantity}_{kind}"][3, 2] = True
    fig = plot_layer_planes(arrays)
    arrows = tagged(fig, "bound-I_")
    assert [arrow.get_gid() for arrow in arrows] == [f"bound-{quantity}-{kind}"]
    assert arrows[0] in fig.axes[2].texts  # in its layer's panel
    dx, dy = arrows[0].xyann  # the arrow's far end, in points from the point
    sign = 1 if BOUND_STYLES[kind].lower else -1  # lower bounds point right/up, upper bounds left/down
    assert (np.sign(dx), np.sign(dy)) == ((sign, 0) if quantity == "I_XL" else (0, sign))
    (hollow,) = tagged(fig, "bound-points")[-1:]
    assert len(hollow.get_offsets()) == 1 and tuple(hollow.get_offsets()[0]) == (
        arrays["I_XL"][3, 2], arrays["I_YL"][3, 2])
    texts = legend_texts(fig)
    assert BOUND_STYLES[kind].label in texts
    assert not [style.label for other, style in BOUND_STYLES.items() if other != kind and style.label in texts]
    assert renders(fig)


def test_no_flags_no_bound_or_trend_markers():
    fig = plot_layer_planes(full_arrays())
    assert not tagged(fig, "bound") and not tagged(fig, "trend")
    assert not [label for label in legend_texts(fig) if "bound" in label or "significant" in label]


def test_significant_changes_are_triangles_on_the_segment():
    arrays = full_arrays()
    arrays["I_XL_trend"][2, 0] = "down"
    arrays["I_YL_trend"][2, 0] = "up"
    arrays["I_YL_trend"][4, 3] = "down"
    fig = plot_layer_planes(arrays)
    marks = {artist.get_gid(): artist for artist in tagged(fig, "trend")}
    assert sorted(marks) == ["trend-I_XL-down", "trend-I_YL-down", "trend-I_YL-up"]
    x, y = arrays["I_XL"][:, 3], arrays["I_YL"][:, 3]
    (mark,) = marks["trend-I_YL-down"].get_offsets()
    assert tuple(mark) == pytest.approx(((x[3] + x[4]) / 2, (y[3] + y[4]) / 2))  # the middle of segment 3 -> 4
    assert any("I(X;L)" in text and "significant" in text for text in legend_texts(fig))
    assert any("I(Y;L)" in text and "significant" in text for text in legend_texts(fig))
    arrays["I_XL"][1, 0] = np.nan  # no segment into epoch 2 of L1: its changes have nowhere to go
    assert sorted(artist.get_gid() for artist in tagged(plot_layer_planes(arrays), "trend")) == ["trend-I_YL-down"]


def test_arrays_without_the_new_keys_and_from_a_history():
    fig = plot_layer_planes(base_arrays(), label_entropy=H_Y, log_n=LOG_N)
    assert len(fig.axes) == len(LAYERS) + 1 and not tagged(fig, "bound") and renders(fig)
    history = InformationPlaneHistory()
    for epoch in range(3):
        points = [PlanePoint(epoch, name, 3.0 - 0.1 * epoch + j, 0.1, 1.0 + 0.2 * epoch, 0.05,
                             I_XL_censored=(epoch == 2 and j == 0)) for j, name in enumerate(["a", "b"])]
        history.record(points, EpochTiming(epoch, 0.0, 0.0, 0.0))
    fig = plot_layer_planes(history.as_arrays(), log_n=LOG_N)
    assert [ax.get_title() for ax in fig.axes[:-1]] == ["a", "b"]
    assert [arrow.get_gid() for arrow in tagged(fig, "bound-I_")] == ["bound-I_XL-censored"]


def test_bad_input_names_the_argument():
    arrays = full_arrays()
    with pytest.raises(ValueError, match=r"arrays\['I_YL'\] must have shape \(epochs, layers\) = \(5, 4\)"):
        plot_layer_planes(dict(arrays, I_YL=arrays["I_YL"][:, :3]))
    with pytest.raises(ValueError, match=r"arrays\['I_XL_capped'\]"):
        plot_layer_planes(dict(arrays, I_XL_capped=np.zeros((4, 4), dtype=bool)))
    with pytest.raises(ValueError, match=r"arrays\['I_YL_trend'\] holds \['sideways'\]"):
        plot_layer_planes(dict(arrays, I_YL_trend=np.full((5, 4), "sideways", dtype=object)))
    with pytest.raises(ValueError, match=r"arrays is missing \['I_YL'\]"):
        plot_layer_planes({key: value for key, value in arrays.items() if key != "I_YL"})
    with pytest.raises(ValueError, match="layers names"):
        plot_layer_planes(arrays, layers=["L9"])
    with pytest.raises(ValueError, match="arrays must be the dict"):
        plot_layer_planes([1, 2, 3])


def test_cards_one_compact_figure_per_layer():
    arrays = full_arrays()
    arrays["I_YL_capped"][4, 1] = True
    cards = plot_layer_cards(arrays, label_entropy=H_Y, log_n=LOG_N, colour_label="epoch")
    assert list(cards) == LAYERS
    card = cards["L2"]
    assert len(card.axes) == 2 and tuple(card.get_size_inches()) == pytest.approx(CARD_SIZE)
    assert card.axes[0].get_title(loc="left").startswith("L2") and card.axes[1].get_ylabel() == "epoch"
    assert [arrow.get_gid() for arrow in tagged(card, "bound-I_")] == ["bound-I_YL-capped"]
    assert legend_texts(card) == ["≤ capped"]  # only the kinds that occur; the reference lines are labelled
    assert sorted(text.get_text() for text in tagged(card, "reference-text")) == ["H(Y)", "log N"]
    assert not cards["L1"].legends and renders(card)


def test_overview_draws_new_bounds_and_reference_lines():
    arrays = full_arrays()
    arrays["I_YL_capped"][1, 0] = True
    arrays["I_XL_negative"][0, 3] = True
    fig = plot_overview(arrays, label_entropy=H_Y, log_n=LOG_N)
    ax = fig.axes[0]
    assert sorted(arrow.get_gid() for arrow in tagged(fig, "bound-I_")) == ["bound-I_XL-negative",
                                                                           "bound-I_YL-capped"]
    texts = [text.get_text() for text in ax.get_legend().get_texts()]
    assert texts == [*LAYERS, BOUND_STYLES["negative"].label, BOUND_STYLES["capped"].label]
    assert [line.get_ydata()[0] for line in tagged(fig, "reference-label_entropy")] == [pytest.approx(H_Y)]
    assert [line.get_xdata()[0] for line in tagged(fig, "reference-log_n")] == [pytest.approx(LOG_N)]
    assert ax.get_title() == "Information plane, epochs 0–8" and renders(fig)
