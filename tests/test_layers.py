"""AdditiveGaussianNoise: when it is active, the scale of its noise, reproducibility, switches."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ibkit.layers import AdditiveGaussianNoise, eval_noise, noise_layers


def test_train_mode_adds_noise_and_eval_mode_is_identity():
    layer = AdditiveGaussianNoise(0.1)
    x = torch.randn(64, 8)
    assert not torch.equal(layer(x), x)
    layer.eval()
    assert layer(x) is x


def test_enabled_on_eval_switches_noise_at_runtime():
    layer = AdditiveGaussianNoise(0.1, enabled_on_eval=True).eval()
    x = torch.randn(64, 8)
    assert not torch.equal(layer(x), x)
    layer.enabled_on_eval = False
    assert torch.equal(layer(x), x)
    layer.enabled_on_eval = True
    assert layer.active and not torch.equal(layer(x), x)


def test_relative_noise_std_is_sigma_times_abs_signal():
    sigma = 0.05
    values = torch.tensor([-3.0, -0.5, 0.0, 0.25, 2.0], dtype=torch.float64)
    x = values.repeat(200_000, 1)
    layer = AdditiveGaussianNoise(sigma, relative=True, generator=torch.Generator().manual_seed(0))
    noise = layer(x) - x
    std = noise.std(dim=0)
    torch.testing.assert_close(std, sigma * values.abs(), rtol=0.01, atol=0.0)
    assert torch.equal(noise[:, 2], torch.zeros(200_000, dtype=torch.float64))  # zeros stay zero
    assert abs(float(noise.mean())) < 1e-3


def test_absolute_noise_std_is_sigma_whatever_the_signal():
    sigma = 0.3
    x = torch.tensor([-100.0, 0.0, 5.0], dtype=torch.float64).repeat(200_000, 1)
    layer = AdditiveGaussianNoise(sigma, relative=False, generator=torch.Generator().manual_seed(1))
    std = (layer(x) - x).std(dim=0)
    torch.testing.assert_close(std, torch.full((3,), sigma, dtype=torch.float64), rtol=0.01, atol=0.0)


def test_sigma_zero_is_identity_in_training():
    layer = AdditiveGaussianNoise(0.0, enabled_on_eval=True)
    x = torch.randn(16, 4)
    assert torch.equal(layer(x), x)
    assert not layer.active


def test_generator_makes_noise_reproducible():
    x = torch.randn(32, 5)
    first = AdditiveGaussianNoise(0.1, generator=torch.Generator().manual_seed(7))(x)
    second = AdditiveGaussianNoise(0.1, generator=torch.Generator().manual_seed(7))(x)
    other = AdditiveGaussianNoise(0.1, generator=torch.Generator().manual_seed(8))(x)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_gradient_flows_through_relative_scale():
    x = torch.rand(10, 3, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    y = AdditiveGaussianNoise(0.2, relative=True)(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y / x).detach())  # d/dx x(1 + σε) = 1 + σε


def test_output_keeps_shape_and_dtype():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    y = AdditiveGaussianNoise(0.1)(x)
    assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("sigma", [-0.1, math.nan, math.inf, "0.1", None, True])
def test_invalid_sigma_is_rejected(sigma):
    with pytest.raises(ValueError, match="sigma"):
        AdditiveGaussianNoise(sigma)


def test_sigma_setter_validates():
    layer = AdditiveGaussianNoise(0.1)
    layer.sigma = 0.2
    assert layer.sigma == 0.2
    with pytest.raises(ValueError, match="sigma"):
        layer.sigma = -1.0


def test_integer_input_is_rejected():
    with pytest.raises(ValueError, match="floating-point"):
        AdditiveGaussianNoise(0.1)(torch.arange(4))


def test_bad_generator_is_rejected():
    with pytest.raises(ValueError, match="generator"):
        AdditiveGaussianNoise(0.1, generator=0)


def test_extra_repr_shows_settings():
    text = repr(AdditiveGaussianNoise(0.001, relative=False, enabled_on_eval=True))
    assert "sigma=0.001" in text and "relative=False" in text and "enabled_on_eval=True" in text


def test_eval_noise_context_sets_and_restores_every_layer():
    model = nn.Sequential(
        AdditiveGaussianNoise(0.1), nn.Linear(4, 4), AdditiveGaussianNoise(0.1, enabled_on_eval=True)
    ).eval()
    assert len(list(noise_layers(model))) == 2
    x = torch.randn(8, 4)
    with torch.no_grad():
        clean = model[1](x)
        with eval_noise(model):
            assert all(layer.enabled_on_eval for layer in noise_layers(model))
            assert not torch.equal(model(x), clean)
        assert [layer.enabled_on_eval for layer in noise_layers(model)] == [False, True]
        with pytest.raises(RuntimeError), eval_noise(model, enabled=False):
            assert torch.equal(model(x), clean)
            raise RuntimeError("boom")
        assert [layer.enabled_on_eval for layer in noise_layers(model)] == [False, True]


@pytest.mark.gpu
def test_cpu_generator_with_cuda_input():
    x = torch.randn(16, 4, device="cuda")
    first = AdditiveGaussianNoise(0.1, generator=torch.Generator().manual_seed(3))(x)
    second = AdditiveGaussianNoise(0.1, generator=torch.Generator().manual_seed(3))(x)
    assert first.device == x.device and torch.equal(first, second)
