"""Synthetic data with known MI: closed forms, sample statistics, rasterisers and input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ibkit.synthetic import (
    LATENT_DIMS,
    correlated_gaussians,
    correlated_image_pairs,
    correlation_from_mi,
    cube,
    gaussian_blob_images,
    marginal_images,
    mi_from_correlation,
    normal_to_uniform,
    random_rotation,
    rectangle_images,
    render_images,
    segments_to_uniform,
    uniform_to_normal,
    uniform_to_segments,
)

N_LARGE = 20_000


def gaussian_mi_from_samples(x: torch.Tensor, y: torch.Tensor) -> float:
    """Plug-in Gaussian MI, 1/2 log(det Sx det Sy / det S), from the sample covariance (nats)."""
    joint = torch.cat([x, y], dim=1).T.cov()
    dx = x.shape[1]
    logdet = lambda m: torch.linalg.slogdet(m)[1].item()  # noqa: E731
    return 0.5 * (logdet(joint[:dx, :dx]) + logdet(joint[dx:, dx:]) - logdet(joint))


# --- rho <-> MI -------------------------------------------------------------------------------


def test_correlation_mi_closed_form_and_round_trip():
    assert mi_from_correlation(math.sqrt(1 - math.exp(-2.0)), 1) == pytest.approx(1.0, rel=1e-12)
    assert correlation_from_mi(0.0, 3) == 0.0
    mi = np.linspace(0.0, 10.0, 41)
    for m in (1, 2, 5):
        rho = correlation_from_mi(mi, m)
        assert isinstance(rho, np.ndarray) and rho.shape == mi.shape
        assert np.all((rho >= 0) & (rho < 1))
        # rho near 1 holds 1 - rho^2 = exp(-2 mi / m) to ~1e-16 / 2e-9 relative at mi = 10, m = 1
        np.testing.assert_allclose(mi_from_correlation(rho, m), mi, rtol=1e-7, atol=1e-12)
    assert isinstance(correlation_from_mi(2.0, 2), float)


@pytest.mark.parametrize(
    "call",
    [
        lambda: correlation_from_mi(-0.1, 1),
        lambda: correlation_from_mi([1.0, -1.0], 2),
        lambda: correlation_from_mi(float("nan"), 1),
        lambda: correlation_from_mi(1.0, 0),
        lambda: correlation_from_mi(1.0, 1.5),
        lambda: mi_from_correlation(1.0, 1),
        lambda: mi_from_correlation(-0.2, 1),
        lambda: mi_from_correlation(0.5, 0),
    ],
)
def test_correlation_mi_bad_inputs(call):
    with pytest.raises(ValueError):
        call()


# --- correlated Gaussians ---------------------------------------------------------------------


def test_unmixed_pairs_have_requested_correlation():
    mi, dim_x, dim_y = 3.0, 4, 3
    x, y = correlated_gaussians(N_LARGE, mi, dim_x, dim_y, mix=False, seed=0)
    rho = correlation_from_mi(mi, 3)
    cross = torch.corrcoef(torch.cat([x, y], dim=1).T)[:dim_x, dim_x:]
    expected = torch.zeros(dim_x, dim_y, dtype=torch.float64)
    expected[:3, :3] = rho * torch.eye(3, dtype=torch.float64)
    # correlation standard error is (1 - rho^2) / sqrt(N) <= 0.007 at N = 20k
    torch.testing.assert_close(cross, expected, atol=0.03, rtol=0)


@pytest.mark.parametrize(
    "mi,dim_x,dim_y,mix", [(0.0, 2, 2, True), (1.0, 1, 1, False), (2.0, 3, 5, True), (4.0, 4, 4, True)]
)
def test_sample_gaussian_mi_matches_requested(mi, dim_x, dim_y, mix):
    x, y = correlated_gaussians(N_LARGE, mi, dim_x, dim_y, mix=mix, seed=1)
    assert x.shape == (N_LARGE, dim_x) and y.shape == (N_LARGE, dim_y)
    assert x.dtype == y.dtype == torch.float64
    # plug-in sd is about sqrt(m) * rho / sqrt(N) <= 0.015 here; bias about dim_x * dim_y / (2N)
    assert gaussian_mi_from_samples(x, y) == pytest.approx(mi, abs=0.05)


def test_marginals_are_standard_normal():
    x, y = correlated_gaussians(N_LARGE, 2.0, 3, 3, mix=True, seed=2)
    for side in (x, y):
        assert side.mean(0).abs().max() < 4 / math.sqrt(N_LARGE)
        torch.testing.assert_close(side.T.cov(), torch.eye(3, dtype=torch.float64), atol=0.05, rtol=0)
        assert stats.kstest(side[:, 0].numpy(), "norm").pvalue > 1e-3


def test_mixing_rotates_without_changing_mi():
    x, y = correlated_gaussians(N_LARGE, 2.0, 3, 3, mix=True, seed=3)
    cross = torch.corrcoef(torch.cat([x, y], dim=1).T)[:3, 3:]
    off_diagonal = cross - torch.diag(torch.diagonal(cross))
    assert off_diagonal.abs().max() > 0.1  # the pairs are no longer coordinate-aligned


def test_random_rotation_is_orthogonal():
    q = random_rotation(6, torch.Generator().manual_seed(0))
    torch.testing.assert_close(q @ q.T, torch.eye(6, dtype=torch.float64))


def test_seed_determinism():
    a = correlated_gaussians(100, 1.0, 3, seed=7)
    b = correlated_gaussians(100, 1.0, 3, seed=7)
    c = correlated_gaussians(100, 1.0, 3, seed=8)
    d = correlated_gaussians(100, 1.0, 3, seed=torch.Generator().manual_seed(7))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert all(torch.equal(u, v) for u, v in zip(a, d))
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_samples=10, mi=-1.0, dim_x=2),
        dict(n_samples=10, mi=float("inf"), dim_x=2),
        dict(n_samples=0, mi=1.0, dim_x=2),
        dict(n_samples=10, mi=1.0, dim_x=0),
        dict(n_samples=10, mi=1.0, dim_x=2, dim_y=-1),
        dict(n_samples=10, mi=[1.0, 2.0], dim_x=2),
        dict(n_samples=10, mi=1.0, dim_x=2, seed="zero"),
    ],
)
def test_correlated_gaussians_bad_inputs(kwargs):
    with pytest.raises(ValueError):
        correlated_gaussians(**kwargs)


def test_invertible_maps():
    z = torch.linspace(-6, 6, 101, dtype=torch.float64)
    u = normal_to_uniform(z)
    assert bool(((u > 0) & (u < 1)).all()) and bool((u.diff() > 0).all())
    assert normal_to_uniform(torch.tensor(0.0)).item() == 0.5
    quantile_975 = torch.tensor(1.959963984540054, dtype=torch.float64)
    assert normal_to_uniform(quantile_975).item() == pytest.approx(0.975, abs=1e-12)
    torch.testing.assert_close(uniform_to_normal(u), z)
    z_sample = torch.randn(5000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sample = normal_to_uniform(z_sample)
    assert stats.kstest(sample.numpy(), "uniform").pvalue > 1e-3
    c = cube(z)
    assert bool((c.diff() > 0).all())
    torch.testing.assert_close(torch.sign(c) * c.abs() ** (1 / 3), z)


# --- rasterisers ------------------------------------------------------------------------------


def test_rectangle_pixel_sums_equal_areas():
    size = 16
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, size - 1, size=(200, 2))
    ends = starts + rng.uniform(1e-3, 1, size=(200, 2)) * (size - starts)
    coords = np.stack([starts[:, 0], ends[:, 0], starts[:, 1], ends[:, 1]], axis=1)
    images = rectangle_images(coords, size)
    assert images.shape == (200, 1, size, size) and images.dtype == torch.float32
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    areas = (ends[:, 0] - starts[:, 0]) * (ends[:, 1] - starts[:, 1])
    np.testing.assert_allclose(images.double().sum(dim=(1, 2, 3)).numpy(), areas, rtol=1e-5, atol=1e-5)


def test_pixel_aligned_rectangle_is_binary():
    image = rectangle_images([[2.0, 5.0, 1.0, 7.0]], 8)[0, 0]
    expected = torch.zeros(8, 8)
    expected[1:7, 2:5] = 1.0  # rows are y, columns are x
    assert torch.equal(image, expected)


def test_rectangle_partial_coverage():
    image = rectangle_images([[0.5, 2.25, 1.0, 1.5]], 4)[0, 0]
    expected = torch.zeros(4, 4)
    expected[1, :3] = torch.tensor([0.5, 1.0, 0.25]) * 0.5
    torch.testing.assert_close(image, expected)


def test_blob_peak_at_centre_pixel():
    size = 16
    grid = torch.linspace(0, 1, size, dtype=torch.float64)
    centres = torch.stack([grid[[3, 12]], grid[[10, 0]]], dim=1)  # (u0, u1) = (x, y)
    images = gaussian_blob_images(centres, size)
    assert images.shape == (2, 1, size, size) and images.dtype == torch.float32
    for image, (row, col) in zip(images[:, 0], [(10, 3), (0, 12)]):
        assert divmod(int(image.argmax()), size) == (row, col)
        assert image[row, col].item() == pytest.approx(1.0)
    offset = math.exp(-10 * ((grid[5] - grid[3]) ** 2 + (grid[9] - grid[10]) ** 2).item())
    assert images[0, 0, 9, 5].item() == pytest.approx(offset, rel=1e-6)


@pytest.mark.parametrize(
    "call",
    [
        lambda: gaussian_blob_images([[0.5, 0.5]], 0),
        lambda: gaussian_blob_images([[0.5, 1.5]], 8),
        lambda: gaussian_blob_images([[0.5, 0.5, 0.5]], 8),
        lambda: rectangle_images([[1.0, 1.0, 0.0, 2.0]], 8),
        lambda: rectangle_images([[0.0, 9.0, 0.0, 2.0]], 8),
        lambda: rectangle_images([[-1.0, 2.0, 0.0, 2.0]], 8),
        lambda: rectangle_images([[0.0, 2.0, 0.0, float("nan")]], 8),
        lambda: rectangle_images([[0.0, 2.0, 0.0, 2.0]], -4),
    ],
)
def test_rasteriser_bad_inputs(call):
    with pytest.raises(ValueError):
        call()


# --- segment map ------------------------------------------------------------------------------


def test_segments_uniform_on_triangle_and_invertible():
    mu = 2 / 32
    u1, u2 = torch.rand(2, 200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a, b = uniform_to_segments(u1, u2, mu)
    assert bool((a >= 0).all()) and bool((b - a >= mu - 1e-12).all()) and bool((b <= 1).all())
    # the centroid of the triangle with vertices (0, mu), (0, 1), (1 - mu, 1)
    assert a.mean().item() == pytest.approx((1 - mu) / 3, abs=3e-3)
    assert b.mean().item() == pytest.approx((mu + 2) / 3, abs=3e-3)
    # uniform density: the square of side (1 - mu)/2 in the right-angle corner (0, 1) lies inside
    # the triangle (legs 1 - mu) and covers half its area
    inside = ((a < (1 - mu) / 2) & (b > 1 - (1 - mu) / 2)).double().mean().item()
    assert inside == pytest.approx(0.5, abs=5e-3)
    v1, v2 = segments_to_uniform(a, b, mu)
    torch.testing.assert_close(v1, u1)
    torch.testing.assert_close(v2, u2)


def test_uniform_to_segments_bad_inputs():
    u = torch.full((3,), 0.5)
    with pytest.raises(ValueError):
        uniform_to_segments(u, u, 1.0)
    with pytest.raises(ValueError):
        uniform_to_segments(u, torch.full((3,), 1.5), 0.1)
    with pytest.raises(ValueError):
        uniform_to_segments(u, torch.full((4,), 0.5), 0.1)


# --- image pairs ------------------------------------------------------------------------------


def gaussian_latents_from_parameters(
    kind: str, latent: torch.Tensor, size: int, min_side: float = 2.0
) -> torch.Tensor:
    """Undo f1: image parameters back to the Gaussian latents (shows the map is injective)."""
    if kind == "gaussians":
        return uniform_to_normal(latent)
    mu = min_side / size
    ux = segments_to_uniform(latent[:, 0] / size, latent[:, 1] / size, mu)
    uy = segments_to_uniform(latent[:, 2] / size, latent[:, 3] / size, mu)
    return uniform_to_normal(torch.stack([*ux, *uy], dim=1))


@pytest.mark.parametrize("kind,size", [("gaussians", 16), ("rectangles", 32)])
def test_image_pairs_shapes_and_true_mi(kind, size):
    mi, n = 2.5, 10_000
    pairs = correlated_image_pairs(kind, size, n, mi, seed=0)
    width = LATENT_DIMS[kind]
    assert pairs.x_images.shape == pairs.y_images.shape == (n, 1, size, size)
    assert pairs.x_images.dtype == torch.float32
    assert pairs.x_latent.shape == pairs.y_latent.shape == (n, width)
    assert torch.equal(render_images(kind, pairs.y_latent, size), pairs.y_images)
    if kind == "rectangles":
        sides = pairs.x_latent[:, 1::2] - pairs.x_latent[:, 0::2]
        assert float(sides.min()) >= 2.0 - 1e-9
        assert float(pairs.x_latent.min()) >= 0 and float(pairs.x_latent.max()) <= size
    # the parameters invert to Gaussian latents that carry exactly the requested MI
    xi = gaussian_latents_from_parameters(kind, pairs.x_latent, size)
    eta = gaussian_latents_from_parameters(kind, pairs.y_latent, size)
    assert gaussian_mi_from_samples(xi, eta) == pytest.approx(mi, abs=0.06)


def test_image_pairs_determinism():
    a = correlated_image_pairs("rectangles", 16, 50, 1.0, seed=3)
    b = correlated_image_pairs("rectangles", 16, 50, 1.0, seed=3)
    c = correlated_image_pairs("rectangles", 16, 50, 1.0, seed=4)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a.x_images, c.x_images)


def test_marginal_images():
    images = marginal_images("gaussians", 16, 64, seed=0)
    assert images.shape == (64, 1, 16, 16) and images.dtype == torch.float32
    assert torch.equal(images, marginal_images("gaussians", 16, 64, seed=0))
    rectangles = marginal_images("rectangles", 32, 64, seed=0)
    assert rectangles.shape == (64, 1, 32, 32)
    assert float(rectangles.sum(dim=(1, 2, 3)).min()) >= 4.0 - 1e-4  # at least 2 x 2 pixels


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: correlated_image_pairs("circles", 16, 10, 1.0), "gaussians.*rectangles"),
        (lambda: marginal_images("circles", 16, 10), "valid choices are gaussians, rectangles"),
        (lambda: correlated_image_pairs("gaussians", 16, 10, -1.0), "mi"),
        (lambda: correlated_image_pairs("gaussians", 0, 10, 1.0), "size"),
        (lambda: correlated_image_pairs("rectangles", 16, 0, 1.0), "n_samples"),
        (lambda: correlated_image_pairs("rectangles", 16, 10, 1.0, min_side=16), "min_side"),
        (lambda: marginal_images("rectangles", -1, 10), "size"),
    ],
)
def test_image_pairs_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
