"""Gaussian mixtures with Monte-Carlo-exact MI: the density, the truth against closed forms, its
standard error, invariance under side maps, and the battery's mixture tasks."""

from __future__ import annotations

import math

import pytest
import torch

from ibkit.synthetic.battery import (
    WAVE,
    battery,
    dense_covariance,
    gaussian_mi,
    mixture_battery,
    mixture_task,
    wave,
)
from ibkit.synthetic.gaussian import make_generator, random_rotation
from ibkit.synthetic.mixtures import GaussianMixture, mixture_mutual_information

#: The bound on the Monte-Carlo standard error of a battery truth, nats.
MAX_MC_STDERR = 0.005


def random_mixture(k: int, d: int, seed: int = 0) -> GaussianMixture:
    generator = make_generator(seed)
    factors = torch.randn(k, d, d, generator=generator, dtype=torch.float64)
    covariances = factors @ factors.transpose(1, 2) + 0.1 * torch.eye(d, dtype=torch.float64)
    weights = torch.rand(k, generator=generator, dtype=torch.float64) + 0.1
    return GaussianMixture(weights / weights.sum(), torch.randn(k, d, generator=generator, dtype=torch.float64),
                           covariances)


def test_log_prob_and_marginals_match_torch_distributions():
    mixture = random_mixture(4, 3)
    z = torch.randn(500, 3, generator=make_generator(1), dtype=torch.float64)
    for coordinates in ([0, 1, 2], [0], [1, 2]):
        part = mixture.marginal(coordinates)
        reference = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(probs=part.weights),
            torch.distributions.MultivariateNormal(part.means, part.covariances)).log_prob(z[:, coordinates])
        torch.testing.assert_close(part.log_prob(z[:, coordinates]), reference, rtol=0, atol=1e-10)


@pytest.mark.parametrize("weights", [(1.0,), (0.2, 0.3, 0.5)])
def test_truth_of_a_single_gaussian_is_the_closed_form(weights):
    # One Gaussian, written as one component or as three identical ones (the log-sum-exp path).
    covariance = torch.from_numpy(dense_covariance(2, 2, 1.0))
    k = len(weights)
    mixture = GaussianMixture(torch.tensor(weights, dtype=torch.float64), torch.zeros(k, 4, dtype=torch.float64),
                              covariance.expand(k, 4, 4).clone())
    mi, stderr = mixture_mutual_information(mixture, 2)
    assert 0 < stderr <= MAX_MC_STDERR
    assert mi == pytest.approx(gaussian_mi(covariance.numpy(), 2), abs=4 * stderr)


def test_truth_of_a_product_mixture_is_zero():
    # p(x, y) = p(x)·p(y) with p(x) a 3-component mixture in 2-d and p(y) a 2-component one in 1-d.
    mx, my = random_mixture(3, 2, seed=1), random_mixture(2, 1, seed=2)
    means = torch.cat([mx.means.repeat_interleave(2, dim=0), my.means.repeat(3, 1)], dim=1)
    covariances = torch.zeros(6, 3, 3, dtype=torch.float64)
    covariances[:, :2, :2] = mx.covariances.repeat_interleave(2, dim=0)
    covariances[:, 2:, 2:] = my.covariances.repeat(3, 1, 1)
    product = GaussianMixture(torch.outer(mx.weights, my.weights).flatten(), means, covariances)
    mi, stderr = mixture_mutual_information(product, 2, samples=20_000)
    assert abs(mi) < 1e-10 and stderr < 1e-10


def test_truth_is_deterministic_and_invariant_under_a_rotation_of_x():
    mixture = random_mixture(5, 4, seed=3)
    mi, stderr = mixture_mutual_information(mixture, 2)
    assert mixture_mutual_information(mixture, 2) == (mi, stderr)
    # The same distribution with x rotated, written as a mixture: a different Monte-Carlo sample.
    rotation = torch.block_diag(random_rotation(2, make_generator(4)), torch.eye(2, dtype=torch.float64))
    rotated = GaussianMixture(mixture.weights, mixture.means @ rotation.T, rotation @ mixture.covariances @ rotation.T)
    rotated_mi, rotated_stderr = mixture_mutual_information(rotated, 2, seed=1)
    assert rotated_mi == pytest.approx(mi, abs=4 * math.hypot(stderr, rotated_stderr))


@pytest.mark.parametrize("spec", [
    ("spiral", 1, 1, 48, 0.03, None),  # the largest standard error of the family
    ("spiral", 2, 1, 32, 0.03, "wave"),
    ("inliers", 5, 5, 32, 0.05, None, 0.2),
])
def test_battery_truths_have_a_small_monte_carlo_error(spec):
    task = mixture_task(*spec)
    assert 0 < task.mi_stderr <= MAX_MC_STDERR
    assert 0.2 <= task.mi <= 3.0


def test_mixture_family_in_the_battery():
    tasks = mixture_battery()
    assert 12 <= len(tasks) <= 20
    assert {task.family for task in tasks} == {"mixture-ring", "mixture-curve", "mixture-inliers"}
    assert max(task.dim_x for task in tasks) == 5
    labels = [(task.family, task.dim_x, task.dim_y, task.params) for task in tasks]
    assert len(set(labels)) == len(tasks)
    full = battery()
    assert [(task.family, task.dim_x, task.dim_y, task.params) for task in full[-len(tasks):]] == labels
    assert sum(not task.family.startswith("mixture") for task in full) == 126


@pytest.mark.parametrize("x_map", ["wave", "rotation", "tanh"])
def test_side_maps_transform_the_same_draw_and_keep_the_truth(x_map):
    plain, mapped = mixture_task("sine", 2, 1, 16, 0.05), mixture_task("sine", 2, 1, 16, 0.05, x_map)
    assert (mapped.mi, mapped.mi_stderr) == (plain.mi, plain.mi_stderr)  # MI is invariant under maps of x
    (x, y), (mx, my) = plain.sample(300, 5), mapped.sample(300, 5)
    assert torch.equal(my, y)
    if x_map == "wave":
        assert torch.equal(mx, wave(x))
        amplitude, frequency = WAVE
        inverse = mx.clone()
        inverse[:, 0] -= amplitude * torch.sin(frequency * mx[:, -1])
        torch.testing.assert_close(inverse, x)  # a bijection
    elif x_map == "rotation":
        torch.testing.assert_close(mx.norm(dim=1), x.norm(dim=1))
    else:
        assert torch.equal(mx.argsort(dim=0), x.argsort(dim=0))


def test_samples_have_the_tasks_shapes_and_depend_only_on_the_generator():
    global_state = torch.get_rng_state()
    for task in mixture_battery():
        x, y = task.sample(64, 7)
        assert x.shape == (64, task.dim_x) and y.shape == (64, task.dim_y), task.name
        assert x.dtype == y.dtype == torch.float64 and x.is_contiguous() and y.is_contiguous()
        again = task.sample(64, torch.Generator().manual_seed(7))
        assert torch.equal(again[0], x) and torch.equal(again[1], y)
        assert not torch.equal(task.sample(64, 8)[1], y)
    assert torch.equal(torch.get_rng_state(), global_state)


@pytest.mark.parametrize("call, match", [
    (lambda: mixture_task("blob", 1, 1, 8, 0.1), "shape"),
    (lambda: mixture_task("ring", 1, 1, 8, 0.1, "swirl"), "x_map"),
    (lambda: mixture_task("sine", 1, 1, 8, 0.1, "wave"), "dim_x >= 2"),
    (lambda: mixture_task("inliers", 1, 1, 8, 0.1, fraction=1.0), "fraction"),
    (lambda: GaussianMixture(torch.tensor([0.5, 0.6], dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64),
                             torch.ones(2, 1, 1, dtype=torch.float64)), "sum to 1"),
    (lambda: GaussianMixture(torch.ones(1, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64),
                             torch.ones(1, 1, 1, dtype=torch.float64)), "must agree"),
    (lambda: mixture_mutual_information(random_mixture(2, 2), 2), "dim_x"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bench_scores_the_mixture_family_apart():
    from ibkit.benchmarks.battery import report, select

    tasks = battery("quick")
    chosen = select(tasks, ["mixture", "gaussian-dense"])
    assert [task.family for task in chosen.values()] == ["gaussian-dense", "mixture-ring", "mixture-inliers"]
    assert tasks[list(chosen)[1]].family == "mixture-ring"  # positions in the battery: the samples' seeds
    with pytest.raises(ValueError, match="no task"):
        select(tasks, ["mixtures"])
    rows = [{"config": config, "task": f"{family} 1+1 MI=1", "family": family, "true_mi": 1.0, "true_mi_stderr": 0.001,
             "estimate": estimate, "stderr": 0.01, "seconds": 1.0, "error": ""}
            for config in ("default call", "ksg, k=5")
            for family, estimate in (("gaussian-sparse", 1.1), ("mixture-ring", 0.5), ("mixture-curve", 0.9))]
    text = report(rows, [])
    assert "## Closed-form tasks (1)" in text and "## Mixture family (2 tasks" in text
    assert "| default call | 1/2 | 0/1 | 1/1 |" in text
    assert "| mixture-ring 1+1 | 1.000 ± 0.001 | 0.500 ± 0.010 ✗ | 0.500 ± 0.010 ✗ |" in text
