"""MINE, NWJ and InfoNCE: the bounds with the optimal critic, the trained estimators, their limits."""

from __future__ import annotations

import math

import pytest
import torch

import ibkit
from ibkit.estimators import make_estimator
from ibkit.estimators.variational import dv_bound, infonce_lower_bound, nwj_bound
from ibkit.synthetic import correlated_gaussians, correlation_from_mi


def gaussian_pmi(x: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
    """The exact pointwise MI of unit-variance pairs with correlation ``rho`` (1-D): the optimal critic."""
    return (-0.5 * math.log(1 - rho**2)
            - (rho**2 * (x**2 + y**2) - 2 * rho * x * y) / (2 * (1 - rho**2)))


def test_bounds_with_the_optimal_critic():
    mi = 1.0
    rho = correlation_from_mi(mi, 1)
    x, y = correlated_gaussians(4_000, mi, 1, mix=False, seed=0)
    x, y = x[:, 0].double(), y[:, 0].double()
    joint = gaussian_pmi(x, y, rho)
    shuffled = torch.stack([gaussian_pmi(x[torch.randperm(4_000, generator=torch.Generator().manual_seed(s))], y, rho)
                            for s in range(20)])
    assert float(dv_bound(joint, shuffled)) == pytest.approx(mi, abs=0.05)
    assert float(nwj_bound(joint + 1.0, shuffled + 1.0)) == pytest.approx(mi, abs=0.05)
    batch = 512
    scores = gaussian_pmi(x[:batch][None, :], y[:batch][:, None], rho)  # S[i, j] = T(x_j, y_i)
    assert float(infonce_lower_bound(scores)) == pytest.approx(mi, abs=0.1)


def test_infonce_never_exceeds_log_batch_size():
    x, y = correlated_gaussians(3_000, 20.0, 2, seed=1)  # practically y = f(x): huge MI
    estimator = make_estimator("infonce", batch_size=64, max_epochs=40)
    est = estimator.mutual_information(x, y)
    assert est.value <= math.log(64) + 1e-9
    scores = torch.randn(64, 64) * 100
    assert float(infonce_lower_bound(scores)) <= math.log(64) + 1e-9


def test_mine_recovers_two_nats_on_two_plus_two_gaussians():
    x, y = correlated_gaussians(5_000, 2.0, 2, seed=2)
    est = ibkit.mutual_information(x, y, method="mine")
    assert abs(est.value - 2.0) < 0.3
    assert 0 < est.stderr < 0.15 and est.n == 1_000


@pytest.mark.parametrize("method", ["nwj", "infonce"])
def test_other_bounds_at_one_nat(method):
    x, y = correlated_gaussians(3_000, 1.0, 2, seed=3)
    est = ibkit.mutual_information(x, y, method=method)
    assert abs(est.value - 1.0) < 0.25


def test_mine_variance_grows_with_mi():
    errors = {}
    for mi in (1.0, 5.0):
        x, y = correlated_gaussians(5_000, mi, 2, seed=4)
        errors[mi] = ibkit.mutual_information(x, y, method="mine").stderr
    assert errors[5.0] > 1.5 * errors[1.0]


def test_labels_and_images_and_a_custom_critic():
    generator = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 3, (1_500,), generator=generator)
    x = torch.randn(1_500, 2, generator=generator) + 3.0 * torch.nn.functional.one_hot(labels, 2 + 1)[:, :2]
    est = ibkit.mutual_information(x, labels, discrete_y=True, method="infonce")
    assert 0.3 < est.value <= math.log(3) + 3 * est.stderr
    images = torch.rand(300, 1, 8, 8, generator=generator)
    with pytest.warns(UserWarning):  # two epochs: a finite number, not a good one
        assert math.isfinite(make_estimator("nwj", max_epochs=2).estimate(images, images + 0.1))
    custom = torch.nn.Bilinear(2, 2, 1)

    class Scores(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bilinear = custom

        def forward(self, a, b):
            n = a.shape[0]
            return self.bilinear(a[None].expand(n, n, 2).reshape(-1, 2),
                                 b[:, None].expand(n, n, 2).reshape(-1, 2)).view(n, n)

    y = x + 0.5 * torch.randn(1_500, 2, generator=generator)
    assert make_estimator("infonce", critic=Scores(), max_epochs=80, lr=1e-2).estimate(x, y) > 0.2
    with pytest.raises(ValueError, match="valid choices are auto, mlp, separable"):
        make_estimator("mine", critic="transformer")
