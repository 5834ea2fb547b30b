"""MIENF: the Gaussian bases against torch.distributions, the estimator's accuracy and honest
limits, labels, images, warm starts and the callback."""

from __future__ import annotations

import csv
import math
import warnings

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

import ibkit
from ibkit.estimators import make_estimator
from ibkit.estimators.flows import MarginalSpline
from ibkit.estimators.gaussian_bases import FullGaussianBase, TridiagonalGaussianBase
from ibkit.synthetic import correlated_gaussians

#: Small, fast flows for the tests (the defaults are for N ≈ 10k).
FAST = dict(steps=2, hidden=32, max_epochs=60, patience=8)


def random_base(kind: str, dim_x: int, dim_y: int) -> torch.nn.Module:
    torch.manual_seed(dim_x + 10 * dim_y)
    base = FullGaussianBase(dim_x, dim_y) if kind == "full" else TridiagonalGaussianBase(dim_x, dim_y)
    with torch.no_grad():
        for parameter in base.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    return base


def reference_distribution(base: torch.nn.Module) -> MultivariateNormal:
    if isinstance(base, FullGaussianBase):
        return MultivariateNormal(torch.zeros(base.dim_x + base.dim_y, dtype=torch.float64), base.covariance())
    d, k = base.dim_x + base.dim_y, base.raw_mi.numel()
    covariance = torch.eye(d, dtype=torch.float64)
    index = torch.arange(k)
    covariance[index, base.dim_x + index] = covariance[base.dim_x + index, index] = base.correlations()
    return MultivariateNormal(torch.zeros(d, dtype=torch.float64), covariance)


@pytest.mark.parametrize("kind", ["full", "tridiag"])
@pytest.mark.parametrize("dims", [(1, 1), (2, 3), (4, 2)])
def test_bases_match_multivariate_normal(kind, dims):
    dim_x, dim_y = dims
    base = random_base(kind, dim_x, dim_y)
    joint = reference_distribution(base)
    z = joint.sample((500,))
    xi, eta = z[:, :dim_x], z[:, dim_x:]
    marginal = lambda block: MultivariateNormal(torch.zeros(block.stop - block.start, dtype=torch.float64),  # noqa: E731
                                                joint.covariance_matrix[block, block])
    sx, sy = slice(0, dim_x), slice(dim_x, dim_x + dim_y)
    with torch.no_grad():
        torch.testing.assert_close(base.log_prob(xi, eta).double(), joint.log_prob(z), atol=1e-4, rtol=1e-4)
        pmi = joint.log_prob(z) - marginal(sx).log_prob(xi) - marginal(sy).log_prob(eta)
        torch.testing.assert_close(base.pmi(xi, eta), pmi, atol=1e-6, rtol=1e-6)
    covariance = joint.covariance_matrix
    logdet = lambda m: torch.linalg.slogdet(m)[1]  # noqa: E731
    closed = 0.5 * (logdet(covariance[sx, sx]) + logdet(covariance[sy, sy]) - logdet(covariance))
    assert base.mutual_information() == pytest.approx(float(closed), abs=1e-6)
    xs, ys = base.sample(40_000, torch.Generator().manual_seed(0))
    sample_covariance = torch.cat([xs, ys], 1).double().T.cov()
    torch.testing.assert_close(sample_covariance, covariance, atol=0.05, rtol=0.05)


def test_tridiagonal_base_is_exact_near_full_correlation():
    base = TridiagonalGaussianBase(2, 2)
    base.start_from(torch.tensor([0.999999, 0.5], dtype=torch.float64))
    expected = -0.5 * (math.log1p(-0.999999**2) + math.log1p(-0.25))
    assert base.mutual_information() == pytest.approx(expected, rel=1e-5)


def test_marginal_spline_starts_gaussian_is_monotone_and_knows_its_log_determinant():
    z = torch.randn(5_000, 3, generator=torch.Generator().manual_seed(0))
    x = torch.stack([torch.exp(z[:, 0]), torch.tanh(z[:, 1]), z[:, 2] ** 3], dim=1)
    spline = MarginalSpline(x)
    with torch.no_grad():
        out, _ = spline(x)
    for column in range(3):
        assert float(torch.corrcoef(torch.stack([out[:, column], z[:, column]]))[0, 1]) > 0.995
    assert float(out.mean(0).abs().max()) < 0.06 and float((out.std(0) - 1).abs().max()) < 0.06
    probe = torch.stack([torch.linspace(-1.0, 300.0, 7), torch.linspace(-1.5, 1.5, 7), torch.linspace(-90, 90, 7)], 1)
    with torch.no_grad():
        assert bool((spline(probe)[0].diff(dim=0) > 0).all())  # increasing, also beyond the sample's range
    for row in torch.cat([x[:3], probe[[0, -1]]]):
        jacobian = torch.autograd.functional.jacobian(lambda v: spline(v[None])[0][0], row)
        assert float(spline(row[None])[1]) == pytest.approx(float(torch.linalg.slogdet(jacobian)[1]), abs=1e-4)


@pytest.mark.parametrize("method", ["mienf", "mienf-tridiag"])
def test_correlated_gaussians_and_a_monotone_map(method):
    x, y = correlated_gaussians(3_000, 2.0, 2, seed=0)
    estimator = make_estimator(method, **FAST)
    est = estimator.mutual_information(x, torch.exp(2 * y))  # exp: a heavy-tailed monotone map
    assert abs(est.value - 2.0) < 0.15 and est.stderr < 0.06 and est.n == 600
    assert abs(est.diagnostics["closed_form_mi"] - 2.0) < 0.15
    assert est.diagnostics["epochs"] <= FAST["max_epochs"] and est.diagnostics["train_seconds"] > 0
    assert "epochs_" not in repr(estimator) and "best_epoch" not in repr(estimator)  # per-call: on the estimate


def test_zero_mi_from_few_samples_stays_zero_within_its_error():
    x, y = correlated_gaussians(300, 0.0, 3, seed=1)
    est = ibkit.mutual_information(x, y, method="mienf-tridiag", **FAST)
    assert abs(est.value) < 2.5 * est.stderr + 0.05


def test_gaussian_base_misses_sign_flipped_dependence_documented_failure():
    # Remark 4.5 of the paper: Gaussian marginals, zero correlation, infinite MI.
    generator = torch.Generator().manual_seed(0)
    xi = torch.randn(3_000, 1, generator=generator)
    sign = torch.randint(0, 2, (3_000, 1), generator=generator) * 2 - 1
    est = ibkit.mutual_information(xi, sign * xi, method="mienf", **FAST)
    assert est.value < 0.2  # the truth is infinite


def test_labels_use_a_class_conditional_flow():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 3_000)
    x = np.array([0.0, 2.0, 4.0])[labels] + rng.standard_normal(3_000)
    grid = np.linspace(-8, 12, 200_001)
    conditional = np.exp(-0.5 * (grid[None] - np.array([0.0, 2.0, 4.0])[:, None]) ** 2) / math.sqrt(2 * math.pi)
    mixture = conditional.mean(0)
    reference = -np.trapezoid(mixture * np.log(mixture), grid) - 0.5 * math.log(2 * math.pi * math.e)
    est = ibkit.mutual_information(x, labels, discrete_y=True, method="mienf-tridiag", **FAST)
    assert abs(est.value - reference) < 3 * est.stderr + 0.05
    assert est.value <= math.log(3)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_image_inputs_train_an_image_flow():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(200, 1, 8, 8, generator=generator)
    est = make_estimator("mienf-tridiag", max_epochs=2, hidden=16).mutual_information(images, images.flip(-1) + 0.1)
    assert math.isfinite(est.value)
    with pytest.raises(ValueError, match="vector inputs"):
        make_estimator("mienf-tridiag", max_epochs=1).mutual_information(images, torch.zeros(200), discrete_y=True)


def test_warm_start_continues_from_the_previous_flows():
    x, y = correlated_gaussians(2_000, 1.0, 2, seed=2)
    cold = make_estimator("mienf-tridiag", **FAST)
    cold_epochs = cold.mutual_information(x, y).diagnostics["epochs"]
    warm = make_estimator("mienf-tridiag", warm_start=True, **FAST)
    first = warm.mutual_information(x, y).diagnostics["epochs"]
    again = warm.mutual_information(x, y).diagnostics["epochs"]
    assert again < first and cold_epochs == first


def test_a_trained_estimator_named_for_the_plane_is_warm_started():
    from ibkit.estimators import epochs_estimator

    assert epochs_estimator("mienf-tridiag").warm_start and epochs_estimator("mine").warm_start
    configured = make_estimator("mienf-tridiag")
    assert epochs_estimator(configured) is configured and not configured.warm_start
    assert epochs_estimator("wkl").name == "wkl"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_information_plane_with_mienf(tmp_path):
    import lightning as L
    from digits_mlp import digits_loaders, seeded_model

    from ibkit.callbacks import InformationPlane

    estimator = make_estimator("mienf-tridiag", warm_start=True, steps=2, hidden=16, max_epochs=15, patience=3)
    callback = InformationPlane(layers=["hidden1", "out"], x_compressor="pca", probe_size=500, estimator=estimator)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, callbacks=[callback],
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        default_root_dir=tmp_path)
    train, val = digits_loaders()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(seeded_model(), train, val)
    arrays = callback.history.as_arrays()
    assert np.isfinite(arrays["I_XL"]).all() and np.isfinite(arrays["I_YL"]).all()
    assert (arrays["I_YL"] <= math.log(10) + 3 * arrays["I_YL_stderr"]).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mienf_trains_on_the_inputs_device():
    x, y = correlated_gaussians(3_000, 2.0, 2, seed=3)
    est = ibkit.mutual_information(x.cuda(), y.cuda(), method="mienf-tridiag", **FAST)
    assert abs(est.value - 2.0) < 0.15


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_flow_benchmarks_write_their_tables(tmp_path):
    from ibkit.benchmarks.cli import main

    assert main(["bench", "flows", "--n", "400", "--mi", "1", "--maps", "identity", "exp", "--max-epochs", "3",
                 "--out", str(tmp_path / "vectors")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "vectors" / "results.csv")))
    assert [row["map"] for row in rows] == ["identity", "exp"] and all(math.isfinite(float(r["estimate"])) for r in rows)
    assert main(["bench", "flow-images", "--n", "200", "--mi", "1", "--max-epochs", "2",
                 "--out", str(tmp_path / "images")]) == 0
    curves = list(csv.DictReader(open(tmp_path / "images" / "curves.csv")))
    assert len(curves) == 2 and (tmp_path / "images" / "curves.png").exists()
