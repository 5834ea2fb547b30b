"""The plane at the scale of real networks: tied normal scores at the cost of a sort, randomized PCA
that matches the exact one, captures held once, a noisy readout for deterministic networks."""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from scipy.special import ndtri
from torch import nn

from ibkit import InformationPlaneAnalysis
from ibkit.capture import LayerRecorder, capture_activations
from ibkit.compression import PCA, units
from ibkit.compression.pca import column_moments
from ibkit.compression.units import _accelerator_scores, tied_normal_scores
from ibkit.estimators import collect_warnings
from ibkit.layers import readout_noise


def reference_scores(values: np.ndarray) -> np.ndarray:
    """Tied normal scores column by column, the slow obvious way (float64)."""
    n = values.shape[0]
    scores = ndtri(np.arange(1, n + 1) / (n + 1))
    out = np.empty(values.shape)
    for column in range(values.shape[1]):
        order = np.argsort(values[:, column] + 0.0, kind="stable")
        ordered = values[order, column] + 0.0
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])
        for start, stop in zip(starts[:-1], starts[1:]):
            out[order[start:stop], column] = scores[start:stop].mean()
    return out


def relu_layer(n: int = 400, width: int = 300, seed: int = 0) -> torch.Tensor:
    """A ReLU layer with every kind of tie: zeros, a constant unit, repeated values, −0.0, negatives."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.relu(torch.randn(n, width, generator=generator))
    values[:, 1] = 2.0
    values[::3, 2] = 0.75
    values[:, 3] = (4 * torch.randn(n, generator=generator)).round() / 4
    values[:7, 4] = -0.0
    values[:, 5] = -torch.rand(n, generator=generator)
    return values


def test_tied_normal_scores_match_the_slow_reference_on_every_path(monkeypatch):
    values = relu_layer()
    expected = reference_scores(values.double().numpy())
    np.testing.assert_allclose(tied_normal_scores(values).numpy(), expected, atol=2e-7)
    np.testing.assert_allclose(tied_normal_scores(values.double()).numpy(), expected, atol=1e-12)
    n = values.shape[0]
    scores = torch.special.ndtri(torch.arange(1, n + 1, dtype=torch.float64) / (n + 1))
    prefix = torch.cat([scores.new_zeros(1), scores.cumsum(0)])
    np.testing.assert_allclose(_accelerator_scores(values.T.contiguous() + 0.0, prefix).T.numpy(), expected, atol=2e-7)
    monkeypatch.setattr(units, "CHUNK_BYTES", 40 * n * 7)  # chunks of 7 columns, two threads
    with ThreadPoolExecutor(2) as pool:
        assert torch.equal(tied_normal_scores(values, pool), tied_normal_scores(values))
    assert tied_normal_scores(values).T.is_contiguous()  # stored unit by unit


def test_randomized_pca_finds_the_exact_axes_of_a_wide_layer():
    generator = torch.Generator().manual_seed(1)
    signal = torch.randn(1_500, 8, generator=generator) * torch.tensor([8.0, 7, 6, 5, 4, 3, 2, 1.5])
    layer = torch.relu(signal @ torch.randn(8, 2_000, generator=generator) / 8 + 0.3 * torch.randn(1_500, 2_000,
                                                                                              generator=generator))
    scores = tied_normal_scores(layer)
    exact, randomized = PCA(6, solver="exact").fit(scores), PCA(6).fit(scores)
    assert PCA(6)._randomized(1_500, 2_000, 6) and not PCA(6)._randomized(1_500, 300, 6)
    cosines = torch.linalg.svdvals(exact.components_ @ randomized.components_.T)
    assert float(cosines.min()) > 0.999
    torch.testing.assert_close(randomized.explained_variance_, exact.explained_variance_, rtol=1e-3, atol=0)
    codes, exact_codes = randomized.transform(scores), exact.transform(scores)
    assert float((codes.abs() - exact_codes.abs()).abs().max() / exact_codes.abs().max()) < 0.02
    assert torch.equal(PCA(6).fit_transform(scores), codes)  # seeded: the same codes every time


@pytest.mark.parametrize("layout", ["rows", "units"])
def test_column_moments_in_either_layout(layout):
    values = torch.randn(700, 90, generator=torch.Generator().manual_seed(2)) * 3 + 5
    data = values if layout == "rows" else values.T.contiguous().T
    mean, total = column_moments(data)
    torch.testing.assert_close(mean, values.double().mean(0))
    assert float(total) == pytest.approx(float(values.double().var(0).sum()), rel=1e-6)


def test_capture_holds_each_layer_once_unit_by_unit():
    net = nn.Sequential(nn.Linear(5, 40), nn.ReLU(), nn.Linear(40, 3))
    x = torch.randn(90, 5)
    captured = capture_activations(net, LayerRecorder({"1": net[1], "2": net[2]}), x, batch_size=32,
                                   noise_on=True, seed=0)
    assert captured["1"].shape == (90, 40) and captured["1"].T.is_contiguous()
    with torch.no_grad():
        torch.testing.assert_close(captured["1"], net[1](net[0](x)))


def test_a_noisy_readout_has_the_closed_form_mi_of_a_gaussian_channel():
    """L = A·X (deterministic, X Gaussian) read out as L + σ·s·ε: I(X; L + σsε) = ½ log det(I + C / (σ² diag C))."""
    generator = torch.Generator().manual_seed(3)
    a = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, -0.3], [0.2, 0.0, 1.0]], dtype=torch.float64)
    x = torch.randn(5_000, 3, generator=generator, dtype=torch.float64)
    labels = (x[:, 0] > 0).long()
    sigma = 0.4
    covariance = (a @ a.T).numpy()
    truth = 0.5 * np.linalg.slogdet(np.eye(3) + covariance / (sigma**2 * np.diag(covariance)[:, None]))[1]
    analysis = InformationPlaneAnalysis(x, labels, x_compressor=None, readout_noise=sigma)
    with collect_warnings():
        point = analysis.analyse_activations({"linear": x @ a.T}, epoch=0).points[0]
    assert abs(point.I_XL - truth) <= max(0.2, 3 * point.I_XL_stderr), (point.I_XL, truth)
    noisy = readout_noise(x @ a.T, sigma, torch.Generator().manual_seed(0))
    assert float((noisy - x @ a.T).std(0).div((x @ a.T).std(0)).sub(sigma).abs().max()) < 0.02


def test_a_deterministic_network_is_reported_once_and_readout_noise_silences_it():
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
    x, labels = torch.randn(300, 4), torch.randint(0, 3, (300,))
    analysis = InformationPlaneAnalysis(x, labels, x_compressor=None)
    with pytest.warns(UserWarning, match="deterministic functions of the input"), collect_warnings():
        analysis.analyse(net, epoch=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with collect_warnings():
            analysis.analyse(net, epoch=1)  # reported once
            InformationPlaneAnalysis(x, labels, x_compressor=None, readout_noise=0.1).analyse(net, epoch=0)
    assert math.isfinite(analysis.history.points(1)[0].I_XL)
