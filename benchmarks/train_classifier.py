"""Train the stochastic MNIST classifier with the information-plane callback (ICLR 2024, §6).

Lightning's command line (``LightningCLI``) over ``ibkit.models.MNISTClassifier`` (``--model.*``),
a data module (``--data``: ``digits``, scikit-learn's bundled 8×8 digits, or ``mnist``, read from
``--data.data_dir``; or any ``LightningDataModule`` class path, with ``--data.*``), the trainer
(``--trainer.*``) and the ``ibkit.callbacks.InformationPlane`` callback (``--ib.*``: estimator,
compressors, probe size, schedule). ``--config file.yaml`` reads settings from a file and
``--print_config`` prints them all. Shorthands: ``--data digits|mnist``, ``--data-dir D``
(``--data.data_dir D``), ``--epochs N`` (``--trainer.max_epochs N``). The model's input shape and
class count follow the data module. ``--data digits`` also sets ``--ib.layer_dims 5``
(:data:`DATA_DEFAULTS`: its probe is small), unless the command line or a config says otherwise.

After training the model is tested on the held-out split, and the command checks the plane
against the network's own predictions: the class probabilities of an output layer bound
``I(Y; L) ≥ H(Y) − cross-entropy`` (``ibkit.bounds.prediction_floor``), so it prints that floor
on the probe beside the last epoch's estimate. Then it prints where the TensorBoard logs, ``information_plane.csv``/``.json`` (the history), ``information_plane.png``
(the final figure) and ``config.yaml`` (every setting of the run) are. The paper's settings are
``--model.lr 1e-5 --data.batch_size 1024 --epochs 300`` on the 60k training images; the defaults
here learn in a few epochs.

Examples::

    ibkit train classifier --data digits
    ibkit train classifier --data mnist --data-dir ../shared/data/mnist --epochs 3 --ib.estimator ksg
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from ibkit.benchmarks.command import command_line, expand_shorthands, usage_errors
from ibkit.bounds import prediction_floor
from ibkit.callbacks import InformationPlane
from ibkit.capture import LayerRecorder
from ibkit.compression.units import is_log_probability, is_probability
from ibkit.data import SplitDataModule
from ibkit.errors import Failure
from ibkit.models import MNISTClassifier

PROG = "ibkit train classifier"
FIGURE_NAME = "information_plane.png"

#: Settings a bundled data set needs besides the defaults, given before the user's arguments (which
#: override them). Digits: the held-out probe has 539 images (54 per class), and a good
#: classifier's I(Y;L) lies within a standard error (±0.04) of H(Y) = 2.30 nats; with 6-dimensional
#: codes the estimate of every hidden layer crossed H(Y) in 37 of 60 points (recorded as the bound
#: H(Y)), with 5 in none, and only 1 of 60 points lost information to compression (README, "Main
#: job"); 4 dimensions lost it in 10.
DATA_DEFAULTS = {"digits": ["--ib.layer_dims", "5"]}

TRAINER_DEFAULTS = {
    "max_epochs": 10,
    "devices": 1,
    "log_every_n_steps": 10,
    "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
               "init_args": {"save_dir": "runs", "name": "classifier", "default_hp_metric": False}},
}


class ClassifierCLI(LightningCLI):
    """``LightningCLI`` with the information-plane callback as ``--ib`` and the data-dependent
    model arguments (input shape, classes) linked to the data module."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(InformationPlane, "ib")
        parser.link_arguments("data.input_shape", "model.input_shape", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")


def save_final_figure(callback: InformationPlane, directory: str) -> str | None:
    """Write the information plane of every analysed epoch to ``<directory>/information_plane.png``."""
    if len(callback.history) == 0:
        return None
    path = os.path.join(directory, FIGURE_NAME)
    callback.history.figure().savefig(path, dpi=120, bbox_inches="tight")
    return path


def output_layer_checks(callback: InformationPlane, model: MNISTClassifier) -> list[str]:
    """For every recorded probability layer: its last I(Y;L) against the floor its own predictions give.

    The layers are captured again exactly as in the last analysed epoch (same weights, same
    capture seed), so the floor and the estimate describe the same samples.
    """
    if callback.analysis is None or len(callback.history) == 0:
        return []
    epoch = callback.history.epochs[-1]
    points = {point.layer: point for point in callback.history.rows() if point.epoch == epoch}
    activations = callback.analysis.capture(model, list(points), epoch=epoch, noise_on=callback.noise_on,
                                            batch_size=callback.batch_size)
    lines = []
    for layer, values in activations.items():
        if isinstance(values, Failure) or not (is_probability(values) or is_log_probability(values)):
            continue
        floor, point = prediction_floor(values, callback.analysis.y), points[layer]
        verdict = "consistent" if point.I_YL >= floor.value - 2 * point.I_YL_stderr else \
            "BELOW the floor by more than 2 SE"
        lines.append(f"I(Y; {layer}) at epoch {epoch}: {point.I_YL:.3f} ± {point.I_YL_stderr:.3f} nats; its own "
                     f"predictions bound it below by H(Y) − cross-entropy = {floor:.3f} on the probe: {verdict}")
    return lines


def with_data_defaults(argv: Sequence[str]) -> list[str]:
    """``argv`` after the :data:`DATA_DEFAULTS` of the bundled data set it names (``--data NAME``)."""
    tokens = list(argv)
    names = [token.partition("=")[2] or (tokens[i + 1] if i + 1 < len(tokens) else "")
             for i, token in enumerate(tokens) if token.partition("=")[0] == "--data"]
    return [argument for name in names for argument in DATA_DEFAULTS.get(name, [])] + tokens


def main(argv: Sequence[str]) -> int:
    with usage_errors():  # the settings, the data and the layer names are checked before training
        with command_line(PROG):
            cli = ClassifierCLI(MNISTClassifier, SplitDataModule, subclass_mode_data=True, run=False,
                                args=expand_shorthands(with_data_defaults(argv)), trainer_defaults=TRAINER_DEFAULTS,
                                seed_everything_default=0, parser_kwargs={"prog": PROG, "description": __doc__},
                                save_config_kwargs={"overwrite": True})
        cli.datamodule.setup("fit")
        callback = next(cb for cb in cli.trainer.callbacks if isinstance(cb, InformationPlane))
        LayerRecorder.for_module(cli.model, callback.layer_names, callback.select)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=True)

    log_dir = cli.trainer.log_dir
    figure = save_final_figure(callback, log_dir)
    for line in output_layer_checks(callback, cli.model):
        print(line)
    root = cli.trainer.logger.save_dir if cli.trainer.logger is not None else log_dir
    print(f"\nTensorBoard logs:      {log_dir}")
    print(f"information plane CSV: {os.path.join(log_dir, 'information_plane.csv')}")
    print(f"final figure:          {figure or '(no epoch was analysed)'}")
    print(f"all settings:          {os.path.join(log_dir, 'config.yaml')}")
    print(f"open TensorBoard with: tensorboard --logdir {root}   (then http://localhost:6006)")
    return 0
