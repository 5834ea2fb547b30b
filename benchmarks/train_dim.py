"""Train a noise-injected Deep InfoMax encoder and evaluate its embedding on held-out data.

Lightning's command line (``LightningCLI``) over ``ibkit.models.NoiseInjectedDIM`` (``--model.*``:
prior, dim, noise, input_noise, conv_widths, critic, critic_hidden, lr, ...), a data module
(``--data digits|mnist`` or a class path, ``--data.*``), the trainer (``--trainer.*``) and the
evaluation (``--eval.subsamples``); ``--config file.yaml`` and ``--print_config`` as usual, and the
shorthands ``--data-dir D`` and ``--epochs N``. ``--preset paper`` (``--config
benchmarks/configs/dim_paper.yaml``) gives the authors' settings; later options override it.

The encoder learns a ``d``-dimensional embedding whose distribution is pushed towards the prior
(``N(0, I)`` or ``U[0, 1]^d``) by maximising the InfoNCE estimate of the mutual information
through an output-noise channel of level ``p`` (capacity ``d·(−log p)`` nats). Every epoch logs
the estimate Î, the capacity and the certificate ``capacity − Î`` (an upper bound on
KL(noisy embedding ‖ prior), nats); InfoNCE cannot exceed log(batch size), so training uses full
batches only. After training, the clean embeddings of the training and test splits are scored:
prior-matching p-values on the test embedding (mean over random subsamples of 64 points),
logistic/kNN/MLP probe accuracies (fit on train, score on test) and clustering scores. Writes
``summary.json`` and ``summary.md`` next to the TensorBoard events.

Example: ``ibkit train dim --data mnist --data-dir ../shared/data/mnist --model.dim 2 --model.noise 0.32``
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from torch.utils.data import DataLoader

from ibkit.benchmarks.command import command_line, expand_shorthands, usage_errors
from ibkit.data import SplitDataModule
from ibkit.evaluation import evaluate_embedding
from ibkit.models import NoiseInjectedDIM, embed
from ibkit.report import markdown_table

PROG = "ibkit train dim"
#: ``--preset NAME`` reads ``benchmarks/configs/dim_NAME.yaml`` (as ``--config`` would).
CONFIGS = Path(__file__).resolve().parent / "configs"
#: The command's defaults where they differ from the classes' own (a small, fast CPU setting).
DEFAULTS = {
    "data": {"class_path": "ibkit.data.DigitsDataModule", "init_args": {"batch_size": 256, "drop_last": True}},
    "model.input_noise": 0.5,
    "model.critic_hidden": 64,
}
TRAINER_DEFAULTS = {
    "max_epochs": 30,
    "devices": 1,
    "log_every_n_steps": 1,
    "num_sanity_val_steps": 0,
    "enable_checkpointing": False,
    "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
               "init_args": {"save_dir": "ibkit_runs", "name": "dim", "default_hp_metric": False}},
}


class DIMCLI(LightningCLI):
    """``LightningCLI`` with the input shape linked to the data module and an ``--eval`` group."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.input_shape", "model.input_shape", apply_on="instantiate")
        parser.add_argument("--eval.subsamples", type=int, default=1024,
                            help="random subsamples (of 64 points) averaged in the prior tests")
        parser.set_defaults(DEFAULTS)

    def before_instantiate_classes(self) -> None:
        """Name the run after its settings unless a logger name was given."""
        logger = self.config.get("trainer.logger")
        if isinstance(logger, dict) or logger is None:
            return
        if logger.init_args.get("name") == "dim":
            model = self.config.model
            noise = "none" if model.noise is None else f"{model.noise:g}"
            data = self.config.data.class_path.rsplit(".", 1)[-1].replace("DataModule", "").lower()
            logger.init_args.name = f"dim_{data}_{model.prior}_d{model.dim}_p{noise}_seed{self.config.seed_everything}"


def expand_preset(argv: Sequence[str]) -> list[str]:
    """``--preset NAME`` -> ``--config benchmarks/configs/dim_NAME.yaml``; other options unchanged."""
    out, tokens = [], list(argv)
    while tokens:
        token = tokens.pop(0)
        if token == "--preset" or token.startswith("--preset="):
            name = token.partition("=")[2] or (tokens.pop(0) if tokens else "")
            path = CONFIGS / f"dim_{name}.yaml"
            if not path.is_file():
                known = sorted(p.stem.removeprefix("dim_") for p in CONFIGS.glob("dim_*.yaml"))
                raise ValueError(f"unknown preset {name!r}; valid presets are {', '.join(known)}")
            out += ["--config", str(path)]
        else:
            out.append(token)
    return out


def train_and_evaluate(argv: Sequence[str], progress: bool = True,
                       callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train one encoder from command-line arguments, evaluate it, write ``summary.json``/``.md``.

    ``callbacks`` are added to the trainer (e.g. to evaluate during training).

    Returns:
        The summary: ``settings`` (model and data settings), ``capacity``/``mi``/``certificate``
        (nats; last epoch's means), ``log_batch_size`` (the InfoNCE ceiling), the metrics of
        :func:`ibkit.evaluation.evaluate_embedding`, ``train_seconds``, ``log_dir`` and split sizes.
    """
    return run(configured(argv, progress), callbacks)


def configured(argv: Sequence[str], progress: bool = True) -> DIMCLI:
    """The command line's model, data and trainer, checked before any training.

    Raises:
        ValueError: a setting the classes refuse, or a batch size the data cannot fill.
    """
    with command_line(PROG):
        cli = DIMCLI(NoiseInjectedDIM, SplitDataModule, subclass_mode_data=True, run=False,
                     args=expand_shorthands(expand_preset(argv)), trainer_defaults={**TRAINER_DEFAULTS,
                                                                     "enable_progress_bar": progress},
                     seed_everything_default=0, parser_kwargs={"prog": PROG, "description": __doc__},
                     save_config_kwargs={"overwrite": True})
    cli.datamodule.setup()
    batch_size, n_train = cli.datamodule.batch_size, len(cli.datamodule.train_set)
    if batch_size < 2:
        raise ValueError(f"--data.batch_size must be >= 2 (InfoNCE negatives and BatchNorm statistics), "
                         f"got {batch_size}")
    if batch_size > n_train:
        raise ValueError(f"the batch size {batch_size} exceeds the {n_train} training samples")
    return cli


def run(cli: DIMCLI, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train, evaluate and summarise a :func:`configured` run (see :func:`train_and_evaluate`)."""
    model, data, trainer = cli.model, cli.datamodule, cli.trainer
    trainer.callbacks.extend(callbacks)
    n_train = len(data.train_set)
    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    train_seconds = time.perf_counter() - started

    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    train_z, train_y = embed(model, DataLoader(data.train_set, batch_size=data.batch_size))
    test_z, test_y = embed(model, data.test_dataloader())
    evaluation = evaluate_embedding(train_z, train_y, test_z, test_y, prior=model.hparams.prior,
                                    n_subsamples=cli.config.eval.subsamples, seed=cli.config.seed_everything)
    if trainer.logger is not None:
        trainer.logger.log_metrics({f"test/{name}": value for name, value in evaluation.items()},
                                   step=trainer.global_step)
        trainer.logger.finalize("success")
    summary = {
        "settings": {"model": dict(model.hparams), "data": cli.config.data.as_dict(),
                     "max_epochs": trainer.max_epochs, "seed": cli.config.seed_everything},
        "capacity": model.capacity,
        "mi": metrics["train/mi"],
        "certificate": metrics.get("train/certificate"),
        "log_batch_size": math.log(data.batch_size),
        **evaluation,
        "n_train": n_train,
        "n_test": int(test_z.shape[0]),
        "train_seconds": train_seconds,
        "log_dir": trainer.log_dir,
    }
    write_summary(summary, Path(trainer.log_dir))
    return summary


def summary_markdown(summary: dict[str, Any]) -> str:
    """A markdown report of one run: information terms (nats) and evaluation metrics."""
    model = summary["settings"]["model"]
    rows = [{"quantity": name, "value": "—" if value is None else value}
            for name, value in summary.items() if name not in ("settings", "log_dir")]
    return (f"# Noise-injected Deep InfoMax: {model['prior']} prior, d = {model['dim']}, p = {model['noise']}\n\n"
            + markdown_table(rows, formats={"value": lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)})
            + "\n\nInformation terms in nats: capacity = d·(−log p), mi = InfoNCE estimate Î (last epoch's "
            "mean, at most log_batch_size), certificate = capacity − Î ≥ KL(noisy embedding ‖ prior). p-values "
            "are means over random subsamples of 64 held-out embeddings. Settings: config.yaml beside this file.\n")


def write_summary(summary: dict[str, Any], directory: Path) -> None:
    """Write ``summary.json`` and ``summary.md`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (directory / "summary.md").write_text(summary_markdown(summary))


def main(argv: Sequence[str]) -> int:
    with usage_errors():  # a setting or data the command refuses is reported before any training
        cli = configured(argv)
    summary = run(cli)
    print(summary_markdown(summary))
    print(f"summary and TensorBoard logs: {summary['log_dir']}")
    return 0
