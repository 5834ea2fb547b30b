"""Compressors: PCA against scikit-learn, autoencoders that learn, shared interface and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SklearnPCA

from ibkit.compression import PCA, AutoencoderCompressor, AutoencoderModule, Compressor


def correlated_data(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)


def surface_in_ten_dims(n: int, seed: int) -> torch.Tensor:
    """Points on a smooth 2-D surface in R^10, ``tanh(z A)`` with ``z ~ U(-1, 1)^2``; float32."""
    z = 2 * torch.rand(n, 2, generator=torch.Generator().manual_seed(seed)) - 1
    mixing = torch.randn(2, 10, generator=torch.Generator().manual_seed(100))
    return torch.tanh(z @ mixing)


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Gaussian blobs at random positions, ``(n, 1, size, size)``."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, 2, generator=g)
    grid = torch.linspace(0, 1, size)
    rows = (grid[None, :, None] - centre[:, 0, None, None]) ** 2
    cols = (grid[None, None, :] - centre[:, 1, None, None]) ** 2
    return torch.exp(-10 * (rows + cols)).unsqueeze(1)


# ------------------------------------------------------------------------------------- PCA


@pytest.mark.parametrize("n,d", [(500, 20), (40, 60)])  # covariance path and thin-SVD path
def test_pca_matches_sklearn_up_to_sign(n, d):
    x = correlated_data(n, d, seed=0)
    ours = PCA(5).fit(x)
    reference = SklearnPCA(5).fit(x)
    codes = ours.transform(x).numpy()
    expected = reference.transform(x)
    signs = np.sign((codes * expected).sum(axis=0))
    np.testing.assert_allclose(codes * signs, expected, atol=1e-9)
    np.testing.assert_allclose(ours.explained_variance_ratio_.numpy(), reference.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(ours.explained_variance_.numpy(), reference.explained_variance_, rtol=1e-9)


def test_pca_is_deterministic_with_largest_loading_positive():
    x = torch.as_tensor(correlated_data(300, 12, seed=1), dtype=torch.float32)
    first = PCA(4).fit(x)
    second = PCA(4).fit(x.clone())
    assert torch.equal(first.transform(x), second.transform(x))
    components = first.components_
    largest = components.gather(1, components.abs().argmax(dim=1, keepdim=True))
    assert bool((largest > 0).all())
    flipped = PCA(4).fit(-x)  # mirrored data: same axes, same signs, mirrored codes
    torch.testing.assert_close(flipped.transform(-x), -first.transform(x), rtol=1e-5, atol=1e-5)


def test_pca_components_are_orthonormal_and_sorted():
    pca = PCA(6).fit(correlated_data(400, 10, seed=2))
    gram = pca.components_ @ pca.components_.T
    torch.testing.assert_close(gram, torch.eye(6, dtype=torch.float64))
    assert bool((pca.explained_variance_[:-1] >= pca.explained_variance_[1:]).all())


def test_pca_full_rank_round_trip_keeps_feature_shape():
    x = torch.as_tensor(correlated_data(200, 24, seed=3)).reshape(200, 2, 3, 4)
    pca = PCA(24).fit(x)
    assert pca.feature_shape_ == (2, 3, 4)
    torch.testing.assert_close(pca.inverse_transform(pca.transform(x)), x)
    torch.testing.assert_close(pca.explained_variance_ratio_.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_pca_caps_components_at_number_of_features():
    pca = PCA(10).fit(correlated_data(50, 3, seed=4))
    assert pca.n_components == 10 and pca.n_components_ == 3
    assert pca.transform(correlated_data(7, 3, seed=5)).shape == (7, 3)


def test_pca_on_numpy_and_tensors_keeps_device_and_dtype():
    x = correlated_data(100, 6, seed=6)
    from_numpy = PCA(2).fit_transform(x)
    assert isinstance(from_numpy, torch.Tensor) and from_numpy.device.type == "cpu"
    assert from_numpy.dtype == torch.float64
    from_float32 = PCA(2).fit_transform(torch.as_tensor(x, dtype=torch.float32))
    assert from_float32.dtype == torch.float32
    torch.testing.assert_close(from_float32, from_numpy.float(), rtol=1e-4, atol=1e-4)
    from_ints = PCA(2).fit_transform(np.arange(60).reshape(20, 3) % 7)
    assert from_ints.dtype == torch.get_default_dtype()


@pytest.mark.parametrize("n_components", [0, -1, 2.5, True, "3", None])
def test_pca_rejects_bad_n_components(n_components):
    with pytest.raises(ValueError, match="n_components"):
        PCA(n_components)


def test_pca_rejects_bad_input():
    x = correlated_data(30, 4, seed=7)
    x_nan = x.copy()
    x_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        PCA(2).fit(x_nan)
    with pytest.raises(ValueError, match="not fitted"):
        PCA(2).transform(x)
    with pytest.raises(ValueError, match="constant"):
        PCA(2).fit(np.ones((10, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        PCA(2).fit(x[:1])
    fitted = PCA(2).fit(x)
    with pytest.raises(ValueError, match="features"):
        fitted.transform(correlated_data(5, 3, seed=8))
    with pytest.raises(ValueError, match="NaN or inf"):
        fitted.transform(x_nan)
    with pytest.raises(ValueError, match="codes must have shape"):
        fitted.inverse_transform(torch.zeros(4, 3))


# ----------------------------------------------------------------------------- autoencoders


def test_compressors_share_the_interface():
    for compressor in (PCA(2), AutoencoderCompressor(2)):
        assert isinstance(compressor, Compressor)
        assert compressor.n_components == 2 and not compressor.is_fitted


def test_mlp_autoencoder_learns_and_is_reproducible(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything Lightning wrote would land here
    x = surface_in_ten_dims(256, seed=0)
    settings = dict(max_epochs=20, batch_size=32, lr=3e-3, seed=3)
    untrained = AutoencoderCompressor(2, max_epochs=0, seed=3).fit(x)
    rng_state = torch.get_rng_state()
    first = AutoencoderCompressor(2, **settings).fit(x)
    assert torch.equal(torch.get_rng_state(), rng_state), "fit must not disturb the global RNG"
    second = AutoencoderCompressor(2, **settings).fit(x.numpy())
    assert first.architecture_ == "mlp" and isinstance(first.module_, AutoencoderModule)
    assert first.reconstruction_error(x) < 0.25 * untrained.reconstruction_error(x)
    codes = first.transform(x)
    assert codes.shape == (256, 2) and bool((codes.abs() < 1).all())
    assert torch.equal(codes, second.transform(x))
    other_seed = AutoencoderCompressor(2, **{**settings, "seed": 4}).fit(x)
    assert not torch.equal(codes, other_seed.transform(x))
    assert list(tmp_path.iterdir()) == []


def test_conv_autoencoder_learns_images():
    x = images(128, 8)
    untrained = AutoencoderCompressor(2, max_epochs=0).fit(x)
    trained = AutoencoderCompressor(2, max_epochs=20, batch_size=32, lr=3e-3).fit(x)
    assert trained.architecture_ == "conv"
    assert trained.reconstruction_error(x) < 0.4 * untrained.reconstruction_error(x)
    # the error is in input units: the mean absolute difference of the reconstructions
    reconstruction = trained.inverse_transform(trained.transform(x))
    assert reconstruction.shape == x.shape
    direct = float((reconstruction - x).abs().mean())
    assert trained.reconstruction_error(x) == pytest.approx(direct, rel=1e-4)


@pytest.mark.parametrize("size", [8, 16, 28, 32])
def test_conv_autoencoder_handles_image_sizes(size):
    x = images(24, size)
    compressor = AutoencoderCompressor(3, max_epochs=1, batch_size=8).fit(x)
    codes = compressor.transform(x)
    assert codes.shape == (24, 3) and bool((codes.abs() < 1).all())
    assert compressor.inverse_transform(codes).shape == (24, 1, size, size)
    assert math.isfinite(compressor.reconstruction_error(x, loss="mse"))


def test_conv_autoencoder_takes_single_channel_images_without_channel_axis():
    x = images(20, 12).squeeze(1)  # (N, H, W)
    compressor = AutoencoderCompressor(2, max_epochs=1, batch_size=8).fit(x)
    assert compressor.architecture_ == "conv"
    assert compressor.transform(x).shape == (20, 2)
    assert compressor.inverse_transform(compressor.transform(x)).shape == (20, 12, 12)


def test_mlp_architecture_flattens_images():
    x = images(20, 8)
    compressor = AutoencoderCompressor(2, architecture="mlp", max_epochs=1).fit(x)
    assert compressor.architecture_ == "mlp"
    assert compressor.transform(x.flatten(1)).shape == (20, 2)
    assert compressor.inverse_transform(compressor.transform(x)).shape == (20, 1, 8, 8)


def test_compressors_leave_the_process_state_alone():
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    compressor = AutoencoderCompressor(2, max_epochs=3, progress=False).fit(surface_in_ten_dims(64, seed=0))
    PCA(2).fit_transform(torch.randn(20, 50, generator=torch.Generator().manual_seed(0)))
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)
    assert len(compressor.loss_history_) == 3 and all(math.isfinite(v) for v in compressor.loss_history_)


def test_autoencoder_trains_under_inference_mode():
    x = surface_in_ten_dims(64, seed=1)
    with torch.inference_mode():
        compressor = AutoencoderCompressor(2, max_epochs=2).fit(x)
        codes = compressor.transform(x)
    assert codes.shape == (64, 2)


def test_autoencoder_transform_matches_module_encode():
    x = surface_in_ten_dims(64, seed=2)
    compressor = AutoencoderCompressor(2, max_epochs=1, loss="mse").fit(x)
    with torch.no_grad():
        torch.testing.assert_close(compressor.transform(x.double()).float(), compressor.module_.encode(x))
    assert compressor.transform(x.double()).dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_components=0), "n_components"),
        (dict(architecture="resnet"), "architecture"),
        (dict(loss="huber"), "loss"),
        (dict(max_epochs=-1), "max_epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), "lr"),
        (dict(code_noise=-0.1), "code_noise"),
        (dict(seed=1.5), "seed"),
        (dict(hidden=()), "hidden"),
        (dict(channels=(4, 0)), "channels"),
    ],
)
def test_autoencoder_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AutoencoderCompressor(**{"n_components": 2, **kwargs})


def test_autoencoder_rejects_bad_input():
    x = surface_in_ten_dims(16, seed=3)
    with pytest.raises(ValueError, match="not fitted"):
        AutoencoderCompressor(2).transform(x)
    bad = x.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        AutoencoderCompressor(2).fit(bad)
    with pytest.raises(ValueError, match="conv autoencoder needs images"):
        AutoencoderCompressor(2, architecture="conv").fit(x)
    with pytest.raises(ValueError, match="constant"):
        AutoencoderCompressor(2).fit(torch.ones(8, 3))
    fitted = AutoencoderCompressor(2, max_epochs=1).fit(x)
    with pytest.raises(ValueError, match="features"):
        fitted.transform(x[:, :4])
    with pytest.raises(ValueError, match="loss"):
        fitted.reconstruction_error(x, loss="huber")


@pytest.mark.gpu
def test_compressors_keep_cuda_device():
    x = torch.as_tensor(correlated_data(500, 16, seed=9), dtype=torch.float32, device="cuda")
    assert PCA(3).fit_transform(x).device == x.device
    compressor = AutoencoderCompressor(3, max_epochs=2, device="cuda").fit(x)
    assert compressor.transform(x).device == x.device
