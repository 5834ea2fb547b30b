"""InformationPlane(asynchronous=True): the same points, logged when ready, safe with checkpoints and failures."""

from __future__ import annotations

import time
import warnings

import lightning
import pytest
import torch
from digits_mlp import digits_loaders, seeded_model
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_callback import NO_TB_WARNING, fast_callback, make_trainer

from ibkit import DigitsDataModule
from ibkit.callbacks import InformationPlane, background
from ibkit.callbacks.background import EpochQueue
from ibkit.estimators import KSG, WeightedKozachenkoLeonenko, make_estimator
from ibkit.history import EpochResult, EpochTiming
from ibkit.models import MNISTClassifier

LAYERS = ["hidden1", "out"]


def fit(root, callback, epochs: int = 3, **kwargs):
    train, val = digits_loaders()
    trainer = make_trainer(root, epochs, [callback], **kwargs)
    trainer.fit(seeded_model(), train, val)
    return trainer


def result_of(epoch: int, wait_s: float = 0.0) -> EpochResult:
    time.sleep(wait_s)
    return EpochResult([], EpochTiming(epoch, 0.0, 0.0, 0.0))


@pytest.mark.parametrize("background", [True, False])
def test_the_queue_hands_back_results_in_order(background):
    queue = EpochQueue(background)
    for epoch in range(3):
        queue.submit(epoch, {}, 0.0, lambda epoch=epoch: result_of(epoch, 0.05 * (2 - epoch)))
    assert [result.epoch for result in queue.finished(wait=True)] == [0, 1, 2]
    assert len(queue) == 0
    queue.close()


def test_a_full_queue_waits_for_the_oldest_or_skips_the_new_epoch():
    queue = EpochQueue()
    queue.submit(0, {}, 0.0, lambda: result_of(0, 0.3))
    with pytest.warns(UserWarning, match="epoch 1 is not analysed"):
        assert not queue.make_room(1, limit=1, when_full="skip")
    started = time.perf_counter()
    assert queue.make_room(1, limit=1, when_full="wait") and time.perf_counter() - started > 0.1
    assert queue.pending() == [] and [result.epoch for result in queue.finished()] == [0]
    queue.close()


def test_without_a_count_the_queue_holds_as_many_epochs_as_fit_in_its_bytes(monkeypatch):
    monkeypatch.setattr(background, "QUEUE_BYTES", 3 * 4000)
    queue = EpochQueue()
    assert queue.capacity(None) == 1 and queue.capacity(5) == 5
    queue.submit(0, {"L1": torch.zeros(1000)}, 0.0, lambda: result_of(0, 0.3))  # 4,000 bytes
    assert queue.capacity(None) == 3 and queue.make_room(1, limit=None, when_full="skip")
    queue.finished(wait=True)
    queue.close()


def test_background_points_equal_the_synchronous_ones_and_reach_tensorboard(tmp_path):
    synchronous = fast_callback(layers=LAYERS)
    fit(tmp_path / "sync", synchronous)
    background = fast_callback(layers=LAYERS, asynchronous=True)
    trainer = fit(tmp_path / "async", background, logger=TensorBoardLogger(tmp_path, name="tb"))
    assert background.history.rows() == synchronous.history.rows()  # timings aside, identical
    assert sorted(background.blocked_s) == [0, 1, 2]
    events = EventAccumulator(trainer.log_dir, size_guidance={"scalars": 0})
    events.Reload()
    for layer in LAYERS:
        assert [s.step for s in events.Scalars(f"ib/{layer}/I_XL")] == [0, 1, 2]
    assert [s.step for s in events.Scalars("ib/time/blocked_s")] == [0, 1, 2]


class SlowWeightedKL(WeightedKozachenkoLeonenko):
    """The default estimator, one second slower per I(Y;L): estimates still queued at a checkpoint."""

    def continuous_discrete_terms(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        time.sleep(1.0)
        return super().continuous_discrete_terms(x, labels)


@pytest.mark.filterwarnings(NO_TB_WARNING)
def test_a_checkpoint_keeps_queued_epochs_and_a_resumed_run_redoes_them(tmp_path):
    reference = fast_callback(layers=LAYERS)
    fit(tmp_path / "reference", reference, epochs=1)

    slow = fast_callback(layers=LAYERS, asynchronous=True, estimator=SlowWeightedKL(), max_queued=2)
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_top_k=-1, every_n_epochs=1)
    train, val = digits_loaders()
    make_trainer(tmp_path / "slow", 2, [slow, checkpoints]).fit(seeded_model(), train, val)
    assert max(slow.blocked_s.values()) < 1.0  # the checkpoints did not wait for the estimates
    assert slow.history.points(0) == reference.history.points(0)

    path = next((tmp_path / "checkpoints").glob("epoch=0-*.ckpt"))
    state = torch.load(path, weights_only=False)["callbacks"][slow.state_key]
    assert [entry["epoch"] for entry in state["queued"]] == [0] and 0 not in {
        point["epoch"] for point in state["history"]["points"]}
    resumed = fast_callback(layers=LAYERS, asynchronous=True)
    make_trainer(tmp_path / "resumed", 2, [resumed]).fit(seeded_model(), train, val, ckpt_path=path)
    assert resumed.history.epochs == [0, 1]
    assert resumed.history.points(0) == reference.history.points(0)  # redone from the saved activations


class FailsOnTheOutputLayer(KSG):
    """KSG with a bug that the one 10-unit layer triggers."""

    def continuous_discrete_terms(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a bug in the estimator")


@pytest.mark.filterwarnings(NO_TB_WARNING)
@pytest.mark.filterwarnings("ignore:InformationPlane. I.Y;L. for layer")
def test_a_background_failure_stops_the_run_and_keeps_the_history(tmp_path):
    callback = fast_callback(layers=LAYERS, asynchronous=True, estimator=FailsOnTheOutputLayer(), epochs=[0])
    with pytest.raises(RuntimeError, match="a bug in the estimator"):
        fit(tmp_path, callback, epochs=2)
    assert callback.history.epochs == [0]


def main_job_run(root, **settings) -> tuple[InformationPlane, dict[str, torch.Tensor]]:
    """Two epochs of the main job (the stochastic classifier on digits: noise layers and dropout draw
    from torch's process-wide generator while it trains) with the callback's defaults."""
    lightning.seed_everything(0, verbose=False)
    data = DigitsDataModule()
    model = MNISTClassifier(input_shape=data.input_shape)
    callback = InformationPlane(layers=["L2", "L4", "probs"], log_figure=False, **settings)
    make_trainer(root, 2, [callback]).fit(model, datamodule=data)
    return callback, model.state_dict()


@pytest.mark.filterwarnings(NO_TB_WARNING)
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("estimator", ["wkl", "nwj"], ids=["default", "trained estimator"])
def test_background_equals_synchronous_on_the_main_job_defaults(tmp_path, estimator):
    """The autoencoder X compressor and a trained estimator draw their random numbers in the worker
    thread: from private generators, so neither the points nor the trained network change."""
    def settings():
        return {} if estimator == "wkl" else {"estimator": make_estimator("nwj", max_epochs=3, warm_start=True)}

    synchronous, weights = main_job_run(tmp_path / "sync", **settings())
    background, background_weights = main_job_run(tmp_path / "async", asynchronous=True, **settings())
    assert synchronous.history.epochs == [0, 1]
    assert background.history.rows() == synchronous.history.rows()
    assert all(torch.equal(weights[name], background_weights[name]) for name in weights)
    assert {point.I_XL_method for point in synchronous.history.rows()} == {estimator}


@pytest.mark.filterwarnings(NO_TB_WARNING)
@pytest.mark.parametrize("when_full", ["wait", "skip"])
def test_back_pressure_bounds_the_queued_epochs(tmp_path, when_full):
    """With estimates slower than an epoch, one queued epoch at most: later epochs wait or are skipped."""
    callback = fast_callback(layers=LAYERS, asynchronous=True, estimator=SlowWeightedKL(), max_queued=1,
                             when_full=when_full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(tmp_path, callback, epochs=3)
    skipped = [w for w in caught if "is not analysed" in str(w.message)]
    if when_full == "wait":
        assert callback.history.epochs == [0, 1, 2] and not skipped
        assert max(callback.blocked_s.values()) > 0.5  # the training loop waited for the queue
    else:
        assert 0 in callback.history.epochs and len(callback.history) + len(skipped) == 3 and skipped
        assert max(callback.blocked_s.values()) < 0.5
