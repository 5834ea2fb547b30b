"""Nothing ibkit does outside the training thread touches torch's process-wide random generator."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from ibkit.compression import AutoencoderCompressor
from ibkit.estimators import make_estimator
from ibkit.randomness import seeded
from ibkit.synthetic import correlated_gaussians


def test_seeded_draws_from_its_own_generator_and_leaves_the_shared_one_alone():
    state = torch.random.get_rng_state()
    with seeded(3):
        first = nn.Linear(4, 5).weight.detach().clone()
        noise = torch.randn(3)
    assert torch.equal(torch.random.get_rng_state(), state)
    with seeded(3):
        assert torch.equal(nn.Linear(4, 5).weight, first) and torch.equal(torch.randn(3), noise)
    with seeded(4):
        assert not torch.equal(nn.Linear(4, 5).weight, first)


def test_seeded_is_per_thread():
    """A thread inside the block and one outside: only the first gets the private stream."""
    inside_started, outside_done = threading.Event(), threading.Event()
    drawn = {}

    def inside():
        with seeded(0):
            inside_started.set()
            outside_done.wait(5)
            drawn["inside"] = torch.randn(2)

    worker = threading.Thread(target=inside)
    worker.start()
    inside_started.wait(5)
    torch.manual_seed(7)
    drawn["outside"] = torch.randn(2)
    outside_done.set()
    worker.join()
    torch.manual_seed(7)
    assert torch.equal(drawn["outside"], torch.randn(2))  # the training thread's stream, untouched
    with seeded(0):
        assert torch.equal(drawn["inside"], torch.randn(2))


def test_random_operations_without_a_generator_are_refused():
    with seeded(0):
        nn.Dropout(0.0)(torch.ones(3))  # p = 0 and eval-mode dropout draw nothing
        nn.Dropout(0.5).eval()(torch.ones(3))
        with pytest.raises(RuntimeError, match="process-wide generator"):
            nn.Dropout(0.5)(torch.ones(3))
        with pytest.raises(RuntimeError, match="process-wide generator"):
            torch.rand_like(torch.ones(3))


@pytest.mark.parametrize("fit", [
    lambda x, y: AutoencoderCompressor(2, max_epochs=2).fit_transform(x),
    lambda x, y: make_estimator("nwj", max_epochs=2).mutual_information(x, y),
    lambda x, y: make_estimator("mienf-tridiag", max_epochs=1, hidden=8).mutual_information(x, y),
], ids=["autoencoder", "critic", "flows"])
def test_trained_networks_never_touch_the_shared_generator(fit):
    x, y = correlated_gaussians(400, mi=1.0, dim_x=2, seed=0)
    state = torch.random.get_rng_state()
    fit(x.float(), y.float())
    assert torch.equal(torch.random.get_rng_state(), state)
