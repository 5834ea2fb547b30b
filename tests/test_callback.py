"""Tests of the information-plane callback on a plain (non-ibkit) Lightning MLP, and its parts."""

from __future__ import annotations

import csv
import json
import math
import warnings

import lightning as L
import numpy as np
import pytest
import torch
from digits_mlp import DigitsMLP, digits_loaders, digits_tensors, seeded_model
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ibkit.callbacks import EpochTiming, InformationPlane, InformationPlaneHistory, PlanePoint
from ibkit.callbacks.distributed import pad_rows, shard_bounds, unpad_gathered
from ibkit.capture import LayerRecorder, capture_activations, first_tensor, resolve_layers
from ibkit.errors import Failure
from ibkit.estimators import DegenerateDataWarning, EstimateWarning
from ibkit.layers import AdditiveGaussianNoise
from ibkit.plotting import plot_information_plane
from ibkit.probe import probe_tensors

LAYERS = ("hidden1", "hidden2", "out")
QUANTITIES = ("I_XL", "I_XL_stderr", "I_YL", "I_YL_stderr")
NO_TB_WARNING = "ignore:InformationPlane. no TensorBoardLogger"


def make_trainer(root, max_epochs: int, callbacks=(), logger=False, **kwargs) -> L.Trainer:
    return L.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=logger, callbacks=list(callbacks),
                     default_root_dir=root, enable_progress_bar=False, enable_model_summary=False,
                     log_every_n_steps=5, **kwargs)


def fast_callback(**kwargs) -> InformationPlane:
    """PCA for X (no autoencoder training) and the 500-digit validation set as the probe.

    Four dimensions per layer: the test network is deterministic, and six PCA components of its
    10-unit output lie near a 3-4 dimensional set, which the degeneracy check rightly reports.
    """
    kwargs.setdefault("layer_dims", 4)
    return InformationPlane(x_compressor="pca", probe_size=1000, **kwargs)


# ---------------------------------------------------------------- end to end (acceptance 1, 3, 4)
def test_tensorboard_run_logs_scalars_figures_layout_and_history(tmp_path):
    callback = fast_callback()
    model = seeded_model()
    train, val = digits_loaders()
    trainer = make_trainer(tmp_path, 3, [callback], logger=TensorBoardLogger(tmp_path, name="tb"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, train, val)
    # A healthy run has one information-plane warning: this test network has no noise layer.
    messages = [str(w.message) for w in caught if str(w.message).startswith("InformationPlane")]
    assert len(messages) == 1 and "deterministic functions of the input" in messages[0]

    events = EventAccumulator(trainer.log_dir, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    for layer in LAYERS:
        for quantity in QUANTITIES:
            group = "ib_band" if quantity.endswith("_stderr") else "ib"
            scalars = events.Scalars(f"{group}/{layer}/{quantity}")
            assert [s.step for s in scalars] == [0, 1, 2]
            assert all(math.isfinite(s.value) for s in scalars)
        for i_yl, err in zip(events.Scalars(f"ib/{layer}/I_YL"), events.Scalars(f"ib_band/{layer}/I_YL_stderr")):
            assert 0.0 <= i_yl.value <= math.log(10) + 3 * err.value
            assert err.value > 0
    for stage in ("capture_s", "compression_s", "estimation_s"):
        assert [s.step for s in events.Scalars(f"ib/time/{stage}")] == [0, 1, 2]
    assert [s.step for s in events.Scalars("ib/time/x_compression_s")] == [0]
    images = events.Images("ib/information_plane")
    assert [image.step for image in images] == [0, 1, 2]
    assert all(image.encoded_image_string.startswith(b"\x89PNG") for image in images)
    assert "custom_scalars__config__" in tags["tensors"]

    with open(f"{trainer.log_dir}/information_plane.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["epoch"]), r["layer"]) for r in rows] == [(e, layer) for e in range(3) for layer in LAYERS]
    document = json.load(open(f"{trainer.log_dir}/information_plane.json"))
    assert document["settings"]["probe_size"] == 500 and document["settings"]["units"] == "nats"
    assert [t["epoch"] for t in document["timings"]] == [0, 1, 2]

    # The network is left as it was: no hooks, training mode everywhere.
    assert all(not m._forward_hooks for m in model.modules())
    assert all(m.training for m in model.modules())


@pytest.mark.filterwarnings(NO_TB_WARNING)
def test_resume_from_checkpoint_continues_history_once(tmp_path):
    train, val = digits_loaders()
    first = fast_callback(layers=["hidden1", "out"])
    trainer = make_trainer(tmp_path / "a", 2, [first])
    trainer.fit(seeded_model(), train, val)
    assert first.history.epochs == [0, 1]
    checkpoint = trainer.checkpoint_callback.best_model_path

    resumed = fast_callback(layers=["hidden1", "out"])
    trainer = make_trainer(tmp_path / "b", 4, [resumed])
    trainer.fit(seeded_model(), train, val, ckpt_path=checkpoint)
    assert resumed.history.epochs == [0, 1, 2, 3]
    assert [(p.epoch, p.layer) for p in resumed.history.rows()] == [
        (e, layer) for e in range(4) for layer in ("hidden1", "out")
    ]
    assert resumed.history.rows()[:4] == first.history.rows()
    with open(f"{trainer.log_dir}/information_plane.csv") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_failing_layers_are_warned_gaps(tmp_path):
    callback = fast_callback(layers=["hidden1", "nan_tap", "constant_tap"])
    train, val = digits_loaders()
    trainer = make_trainer(tmp_path, 1, [callback])
    with pytest.warns(UserWarning) as record:
        trainer.fit(seeded_model(taps=True), train, val)
    messages = [str(w.message) for w in record if "InformationPlane" in str(w.message)]
    assert any("'nan_tap'" in m and "NaN" in m for m in messages)
    assert any("'constant_tap'" in m for m in messages)
    assert sum("no TensorBoardLogger" in m for m in messages) == 1
    points = {p.layer: p for p in callback.history.rows()}
    assert all(math.isfinite(getattr(points["hidden1"], q)) for q in QUANTITIES)
    for layer in ("nan_tap", "constant_tap"):
        assert all(math.isnan(getattr(points[layer], q)) for q in QUANTITIES)
    document = json.load(open(f"{trainer.log_dir}/information_plane.json"))
    assert [p["I_XL"] for p in document["points"] if p["layer"] != "hidden1"] == [None, None]


@pytest.mark.filterwarnings(NO_TB_WARNING)
def test_a_degenerate_layer_is_reported_once_per_run_and_estimated_by_the_fallback(tmp_path):
    def parabola(output: torch.Tensor) -> torch.Tensor:  # a 1-D curve in 2-D: degenerate for entropies
        return torch.stack([output[:, 0], output[:, 0] ** 2], dim=1)

    callback = fast_callback(layers=["hidden1", "out"], select={"out": parabola})
    train, val = digits_loaders()
    trainer = make_trainer(tmp_path, 3, [callback])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(seeded_model(), train, val)
    degenerate = [w for w in caught if issubclass(w.category, DegenerateDataWarning)]
    fallback = [w for w in caught if issubclass(w.category, EstimateWarning) and w.message.kind == "fallback"]
    assert len(degenerate) == 1 and "'out'" in str(degenerate[0].message)
    assert len(fallback) == 1 and "ksg" in str(fallback[0].message)
    arrays = callback.history.as_arrays()
    assert np.all(arrays["I_XL"] > -2 * arrays["I_XL_stderr"])


@pytest.mark.filterwarnings(NO_TB_WARNING)
@pytest.mark.parametrize("layer", ["nan_tap", "constant_tap"])
def test_strict_reraises_layer_failures(tmp_path, layer):
    train, val = digits_loaders()
    trainer = make_trainer(tmp_path, 1, [fast_callback(layers=[layer], strict=True)])
    with pytest.raises(ValueError):
        trainer.fit(seeded_model(taps=True), train, val)


@pytest.mark.filterwarnings(NO_TB_WARNING)
def test_layer_name_typo_is_a_clear_error_at_setup(tmp_path):
    train, val = digits_loaders()
    trainer = make_trainer(tmp_path, 1, [fast_callback(layers=["hidden1", "hiden2"])])
    with pytest.raises(ValueError, match=r"unknown layer name\(s\) \['hiden2'\].*valid names are: hidden1, hidden1\.0"):
        trainer.fit(seeded_model(), train, val)


# ---------------------------------------------------------------- layers and capture
def test_default_layers_are_default_ib_layers_or_children():
    model = DigitsMLP()
    assert list(resolve_layers(model, None)) == list(LAYERS)
    model.default_ib_layers = ["hidden2.0", "out"]
    assert list(resolve_layers(model, None)) == ["hidden2.0", "out"]
    with pytest.raises(ValueError, match="unique"):
        resolve_layers(model, ["out", "out"])
    with pytest.raises(ValueError, match="no layers"):
        resolve_layers(model, [])


def test_first_tensor_and_select_pick_from_tuple_outputs():
    t = torch.ones(2, 3)
    assert first_tensor((t, None)) is t and first_tensor({"a": t, "b": 0}) is t and first_tensor([[t]]) is t
    with pytest.raises(ValueError, match="select="):
        first_tensor((None, t))
    model = seeded_model(tuple_output=True)
    x = digits_tensors()[0][:40]
    layers = resolve_layers(model, ["hidden2"])
    default = capture_activations(model, LayerRecorder(layers), x, batch_size=16, noise_on=True, seed=0)
    pre = capture_activations(model, LayerRecorder(layers, select=lambda out: out[1]), x,
                              batch_size=16, noise_on=True, seed=0)
    assert default["hidden2"].shape == (40, 16)
    torch.testing.assert_close(default["hidden2"], torch.tanh(pre["hidden2"]))


class NoisyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.noise = AdditiveGaussianNoise(0.1, relative=False)
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return self.linear(self.noise(self.drop(x)))


def test_capture_keeps_noise_on_and_restores_modes_and_rng():
    net = NoisyNet().train()
    x = torch.ones(64, 4)
    recorder = LayerRecorder({"noise": net.noise, "linear": net.linear})
    torch.manual_seed(123)
    a = capture_activations(net, recorder, x, batch_size=16, noise_on=True, seed=1)
    after_capture = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after_capture, torch.rand(3)), "capture must not consume the global random stream"
    b = capture_activations(net, recorder, x, batch_size=16, noise_on=True, seed=1)
    c = capture_activations(net, recorder, x, batch_size=16, noise_on=True, seed=2)
    quiet = capture_activations(net, recorder, x, batch_size=16, noise_on=False, seed=1)
    assert torch.equal(a["noise"], b["noise"]) and not torch.equal(a["noise"], c["noise"])
    assert float(a["noise"].std()) == pytest.approx(0.1, rel=0.2)  # noise on, dropout off (no zeros)
    assert torch.equal(quiet["noise"], x)
    assert all(m.training for m in net.modules()) and net.noise.enabled_on_eval is False
    assert all(not m._forward_hooks for m in net.modules())


def test_capture_cleans_up_after_a_failing_forward():
    net = NoisyNet().train()
    recorder = LayerRecorder({"linear": net.linear})
    with pytest.raises(RuntimeError):
        capture_activations(net, recorder, torch.ones(8, 5), batch_size=4, noise_on=True, seed=0)
    assert all(m.training for m in net.modules()) and net.noise.enabled_on_eval is False
    assert all(not m._forward_hooks for m in net.modules())


def test_layer_run_twice_per_forward_is_an_error_not_a_result():
    shared = nn.Linear(3, 3)
    net = nn.Sequential(shared, nn.Tanh(), shared)
    out = capture_activations(net, LayerRecorder({"0": shared}), torch.ones(10, 3), batch_size=5,
                              noise_on=True, seed=0)
    assert isinstance(out["0"], Failure) and "ran 4 times for 2 batches" in out["0"].message


# ---------------------------------------------------------------- probe and sharding
def test_probe_sources_agree_and_are_capped():
    x, y = digits_tensors()
    x, y = x[:300], y[:300]
    from_tensors = probe_tensors((x, y), 1000, seed=0)
    from_dataset = probe_tensors(TensorDataset(x, y), 1000, seed=0)
    from_loader = probe_tensors(DataLoader(TensorDataset(x, y), batch_size=64), 1000, seed=0)
    for got in (from_dataset, from_loader):
        assert torch.equal(got[0], from_tensors[0]) and torch.equal(got[1], from_tensors[1])
    sub_x, sub_y = probe_tensors((x, y), 100, seed=3)
    assert sub_x.shape == (100, 64)
    assert torch.equal(sub_x, probe_tensors(TensorDataset(x, y), 100, seed=3)[0])
    assert probe_tensors(DataLoader(TensorDataset(x, y), batch_size=64), 100, seed=0)[0].shape[0] == 100
    with pytest.raises(ValueError, match="same length"):
        probe_tensors((x, y[:10]), 1000, seed=0)
    with pytest.raises(ValueError, match="probe must be"):
        probe_tensors("digits", 1000, seed=0)


@pytest.mark.parametrize(("n", "world"), [(499, 2), (500, 2), (10, 3), (3, 3)])
def test_shards_pad_and_reassemble_in_probe_order(n, world):
    data = torch.arange(n * 2.0).reshape(n, 2)
    bounds = shard_bounds(n, world)
    per_rank = bounds[0][1] - bounds[0][0]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    gathered = torch.stack([pad_rows(data[start:stop], per_rank) for start, stop in bounds])
    assert gathered.shape == (world, per_rank, 2)
    assert torch.equal(unpad_gathered(gathered, bounds), data)


# ---------------------------------------------------------------- history, schedule, arguments, plot
def test_history_replaces_epochs_and_round_trips():
    history = InformationPlaneHistory()
    point = PlanePoint(epoch=0, layer="a", I_XL=1.0, I_XL_stderr=0.1, I_YL=float("nan"), I_YL_stderr=float("nan"))
    history.record([point], EpochTiming(0, 0.1, 0.2, 0.3))
    history.record([PlanePoint(1, "a", 2.0, 0.1, 0.5, 0.05)], EpochTiming(1, 0.1, 0.2, 0.3))
    history.record([PlanePoint(1, "a", 3.0, 0.1, 0.5, 0.05)], EpochTiming(1, 0.1, 0.2, 0.3))
    assert history.epochs == [0, 1] and history.rows()[1].I_XL == 3.0
    restored = InformationPlaneHistory()
    restored.load_state_dict(history.state_dict())
    arrays = restored.as_arrays()
    assert arrays["I_XL"].tolist() == [[1.0], [3.0]] and math.isnan(arrays["I_YL"][0, 0])
    with pytest.raises(ValueError, match="single epoch"):
        history.record([point], EpochTiming(5, 0.0, 0.0, 0.0))


def test_schedule_and_argument_validation():
    assert [e for e in range(7) if InformationPlane(every_n_epochs=3).is_scheduled(e)] == [0, 3, 6]
    assert [e for e in range(7) if InformationPlane(epochs=[5, 1]).is_scheduled(e)] == [1, 5]
    assert all(InformationPlane().is_scheduled(e) for e in range(3))
    with pytest.raises(ValueError, match="not both"):
        InformationPlane(every_n_epochs=2, epochs=[1])
    with pytest.raises(ValueError, match="unknown method 'foo'.*wkl"):
        InformationPlane(estimator="foo")
    with pytest.raises(ValueError, match="x_compressor"):
        InformationPlane(x_compressor="zip")
    with pytest.raises(ValueError, match="fit_transform"):
        InformationPlane(x_compressor=object())
    with pytest.raises(ValueError, match="probe_size"):
        InformationPlane(probe_size=0)


def test_plot_skips_gaps_and_checks_shapes():
    i_xl = np.array([[1.0, 2.0, np.nan], [1.5, 2.5, 0.5]])
    i_yl = np.array([[0.5, 0.7, 0.1], [0.6, np.nan, 0.2]])
    fig = plot_information_plane(i_xl, i_yl, epochs=[3, 7], layers=["a", "b", "c"],
                                 i_xl_stderr=np.full((2, 3), 0.1), i_yl_stderr=np.full((2, 3), 0.05))
    ax = fig.axes[0]
    points = sum(len(collection.get_offsets()) for collection in ax.collections if hasattr(collection, "get_array")
                 and collection.get_array() is not None)
    assert points == 4  # six (epoch, layer) pairs, two of them gaps
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "epoch"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="i_yl must have shape"):
        plot_information_plane(i_xl, i_yl[:, :2])
    with pytest.raises(ValueError, match="layers must name 3"):
        plot_information_plane(i_xl, i_yl, layers=["a"])


class BatchLosses(L.Callback):
    """The training losses of every batch, per epoch, as ``training_step`` returned them."""

    def __init__(self):
        self.losses: dict[int, list[float]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, *args):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.setdefault(trainer.current_epoch, []).append(float(loss))


@pytest.mark.filterwarnings(NO_TB_WARNING)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_colour_metric_is_each_analysed_epochs_mean_training_loss(tmp_path):
    train, val = digits_loaders()
    batches, callback = BatchLosses(), fast_callback(log_figure=False, layers=["out"])
    make_trainer(tmp_path, 2, [batches, callback]).fit(seeded_model(), train, val)
    expected = [sum(batches.losses[epoch]) / len(batches.losses[epoch]) for epoch in (0, 1)]
    assert callback.history.metric("loss") == pytest.approx(expected, rel=1e-12)
