"""Bounds drawn and enforced, and significant phases marked, on layers whose MI is known."""

from __future__ import annotations

import math

import pytest
import torch

from ibkit import InformationPlaneAnalysis
from ibkit.benchmarks.phases import PATH_NOISE, path
from ibkit.bounds import bounded_fields, label_entropy, trend_fields
from ibkit.callbacks.tensorboard_layout import points_table, summary_line
from ibkit.estimators import collect_warnings
from ibkit.estimators.resampling import paired_stderr
from ibkit.history import EpochResult, EpochTiming, InformationPlaneHistory, PlanePoint
from ibkit.result import Estimate


def estimate(value: float, stderr: float = 0.05, replicates: torch.Tensor | None = None, n: int = 1_000) -> Estimate:
    return Estimate(value, stderr, "wkl", n, {} if replicates is None else {"replicates": replicates})


def test_values_beyond_a_bound_are_recorded_as_the_bound_with_their_flag():
    ceiling = math.log(10)
    capped = bounded_fields("I_YL", estimate(2.45), ceiling)
    assert capped["I_YL"] == ceiling and capped["I_YL_capped"] and not capped["I_YL_censored"]
    negative = bounded_fields("I_XL", estimate(-0.2), None)
    assert negative["I_XL"] == 0.0 and negative["I_XL_negative"]
    assert not bounded_fields("I_XL", estimate(-0.05), None)["I_XL_negative"]  # within its error
    censored = bounded_fields("I_XL", estimate(9.0, n=1_000), None)
    assert censored["I_XL"] == pytest.approx(math.log(1_000)) and censored["I_XL_censored"]
    assert label_entropy(torch.arange(10).repeat(5)) == pytest.approx(math.log(10))


def test_a_paired_change_uses_the_same_blocks_and_marks_only_beyond_its_error():
    blocks = torch.randn(2, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    before, after = estimate(1.0, replicates=1.0 + 0.1 * blocks), estimate(1.3, replicates=1.3 + 0.1 * blocks)
    assert paired_stderr(before, after) == pytest.approx(0.0, abs=1e-12)  # what both share cancels
    shifted = estimate(1.3, replicates=1.3 + 0.1 * blocks + 0.02 * blocks.flip(1))
    fields = trend_fields("I_XL", before, shifted, None)
    assert fields["I_XL_trend"] == "up" and 0 < fields["I_XL_change_stderr"] < 0.1
    first = trend_fields("I_XL", None, after, None)
    assert math.isnan(first["I_XL_change_stderr"]) and first["I_XL_trend"] == ""
    assert trend_fields("I_YL", before, estimate(2.9, replicates=2.9 + 0.1 * blocks), 2.3)["I_YL_trend"] == ""  # capped
    assert paired_stderr(before, estimate(1.0, replicates=torch.zeros(5))) is None  # measured differently


def test_every_change_of_a_known_path_is_marked_in_its_direction():
    rows = path(5_000, seed=0)
    assert len(rows) == 2 * (len(PATH_NOISE) - 1)
    wrong = [row for row in rows if row["trend"] != row["expected"]]
    assert not wrong, wrong


def test_the_history_keeps_the_trend_reference_across_a_checkpoint():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2_000, 3, generator=generator, dtype=torch.float64)
    labels = (x[:, 0] > 0).long()
    analysis = InformationPlaneAnalysis(x, labels, x_compressor=None)
    with collect_warnings():
        analysis.analyse_activations({"L": x + 0.5 * torch.randn(2_000, 3, generator=generator, dtype=torch.float64)}, 0)
        history = InformationPlaneHistory()
        history.load_state_dict(analysis.history.state_dict())
        resumed = InformationPlaneAnalysis(x, labels, x_compressor=None, history=history)
        point = resumed.analyse_activations({"L": x + 0.1 * torch.randn(2_000, 3, generator=generator,
                                                                      dtype=torch.float64)}, 1).points[0]
    assert point.I_XL_trend == "up" and math.isfinite(point.I_XL_change_stderr)
    assert history.references["label_entropy"] == pytest.approx(math.log(2), abs=0.01)


def test_tables_and_the_console_line_say_what_each_value_is():
    point = PlanePoint(epoch=3, layer="L2", I_XL=4.0, I_XL_stderr=0.1, I_YL=math.log(10), I_YL_stderr=0.04,
                       I_XL_method="wkl", I_YL_method="wkl", I_YL_capped=True, I_XL_trend="down",
                       I_XL_change_stderr=0.05)
    table = points_table([point])
    assert "4.000 ± 0.100 ↓ (wkl)" in table and "≤ 2.303 ± 0.040 (wkl, bound: above H(Y))" in table
    line = summary_line(EpochResult([point], EpochTiming(3, 0.5, 1.0, 2.0)))
    assert line == "InformationPlane epoch 3, I(X;L)/I(Y;L) nats: L2 4.00↓/≤2.30 (3.5 s)"
