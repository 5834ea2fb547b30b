"""The stochastic MNIST classifier and the ``ibkit train classifier`` command."""

from __future__ import annotations

import csv
import logging
import math
import re

import lightning as L
import pytest
import torch

from ibkit.benchmarks.cli import main
from ibkit.data import DigitsDataModule
from ibkit.layers import AdditiveGaussianNoise
from ibkit.models import MNISTClassifier

LAYERS = ["L1", "L2", "L3", "L4", "L5", "probs"]


@pytest.fixture(autouse=True)
def _quiet_single_threaded():
    """Quiet Lightning, and one intra-op thread: the network is tiny, threads only add overhead."""
    logger = logging.getLogger("lightning.pytorch")
    level, threads = logger.level, torch.get_num_threads()
    logger.setLevel(logging.ERROR)
    torch.set_num_threads(1)
    yield
    logger.setLevel(level)
    torch.set_num_threads(threads)


def quiet_trainer(**kwargs) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, **kwargs)


@pytest.mark.parametrize("shape, padding, l1_shape", [
    ((1, 28, 28), "valid", (8, 13, 13)),
    ((1, 8, 8), "same", (8, 4, 4)),
])
def test_forward_shapes_and_layer_names(shape, padding, l1_shape):
    torch.manual_seed(0)
    model = MNISTClassifier(input_shape=shape)
    assert model.conv_padding == padding
    assert list(model.default_ib_layers) == LAYERS
    modules = dict(model.named_modules())
    assert all(name in modules for name in LAYERS)
    outputs = {}
    hooks = [modules[name].register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o))
             for name in LAYERS]
    log_probs = model(torch.randn(5, *shape))
    for hook in hooks:
        hook.remove()
    assert log_probs.shape == (5, 10)
    assert outputs["L1"].shape == (5, *l1_shape)
    assert outputs["L3"].shape == (5, 32, 1, 1)
    assert outputs["L4"].shape == (5, 32)
    torch.testing.assert_close(outputs["L5"], log_probs)
    torch.testing.assert_close(outputs["probs"], log_probs.exp())
    torch.testing.assert_close(outputs["probs"].sum(1), torch.ones(5))


def test_noise_before_every_layer_and_active_in_eval():
    model = MNISTClassifier(sigma=1e-3).eval()
    noise = [m for m in model.modules() if isinstance(m, AdditiveGaussianNoise)]
    assert len(noise) == 5 and all(m.relative and m.enabled_on_eval and m.sigma == 1e-3 for m in noise)
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        first, second = model(x), model(x)
    difference = (first - second).abs().max()
    assert 0 < difference < 0.05  # slightly different: noise is on in eval mode, and small


def test_dropout_only_in_training():
    model = MNISTClassifier(input_shape=(1, 8, 8), sigma=0.0, dropout=0.5)
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x), model(x))  # no noise (σ=0) and no dropout: deterministic
        model.train()
        assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_shape=(1, 4, 4)), "too small"),
    (dict(input_shape=(28, 28)), "input_shape"),
    (dict(padding="full"), "padding"),
    (dict(lr=0.0), "lr"),
    (dict(dropout=1.0), "dropout"),
    (dict(sigma=-1.0), "sigma"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MNISTClassifier(**kwargs)


def test_learns_digits_in_two_epochs():
    L.seed_everything(0, verbose=False)
    data = DigitsDataModule(batch_size=32, seed=0)
    model = MNISTClassifier(input_shape=data.input_shape)
    trainer = quiet_trainer(max_epochs=2)
    before = trainer.validate(model, datamodule=data, verbose=False)[0]
    trainer.fit(model, datamodule=data)
    after = trainer.callback_metrics
    assert float(after["val/loss"]) < before["val/loss"] - 0.5
    assert float(after["val/acc"]) > 0.6 > before["val/acc"]
    assert {"train/loss", "train/acc", "val/loss", "val/acc"} <= set(after)


def test_cli_rejects_options_the_data_module_does_not_take(capsys):
    with pytest.raises(SystemExit):
        main(["train", "classifier", "--data", "digits", "--data.download", "true"])
    assert "download" in capsys.readouterr().err


def test_cli_prints_every_setting_as_a_reusable_config(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "classifier", "--data", "mnist", "--data-dir", "/some/where", "--epochs", "3",
              "--ib.estimator", "ksg", "--print_config"])
    assert stop.value.code == 0
    config = capsys.readouterr().out
    assert "class_path: ibkit.data.MNISTDataModule" in config and "data_dir: /some/where" in config
    assert "max_epochs: 3" in config and "estimator: ksg" in config and "default_hp_metric: false" in config


@pytest.mark.slow
def test_cli_end_to_end_on_digits(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("ib:\n  probe_size: 400\n  x_compressor:\n    class_path: ibkit.compression.AutoencoderCompressor\n"
                      "    init_args:\n      n_components: 4\n      max_epochs: 2\n")
    status = main(["train", "classifier", "--data", "digits", "--epochs", "1", "--config", str(config),
                   "--trainer.accelerator", "cpu", "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")])
    assert status == 0
    run_dir = tmp_path / "runs" / "classifier" / "version_0"
    with open(run_dir / "information_plane.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["layer"] for row in rows] == LAYERS
    assert all(row["epoch"] == "0" for row in rows)
    assert all(math.isfinite(float(row["I_YL"])) for row in rows)
    assert (run_dir / "information_plane.png").stat().st_size > 0
    assert list(run_dir.glob("events.out.tfevents.*"))
    printed = capsys.readouterr().out
    assert str(run_dir / "information_plane.png") in printed and "tensorboard --logdir" in printed
    # The output layers are checked against the floor their own predictions give.
    assert re.search(r"I\(Y; probs\) at epoch 0: .* bound it below by H\(Y\) − cross-entropy = ", printed)
    assert "max_epochs: 2" in (run_dir / "config.yaml").read_text()
    assert "layer_dims: 5" in (run_dir / "config.yaml").read_text()  # the digits default


def test_a_bundled_data_set_brings_its_defaults_and_the_user_overrides_them():
    from ibkit.benchmarks.train_classifier import with_data_defaults

    assert with_data_defaults(["--data", "digits"]) == ["--ib.layer_dims", "5", "--data", "digits"]
    assert with_data_defaults(["--data=digits", "--ib.layer_dims", "6"])[-2:] == ["--ib.layer_dims", "6"]
    assert with_data_defaults(["--data", "mnist", "--epochs", "3"]) == ["--data", "mnist", "--epochs", "3"]
