"""Train a noise-injected Deep InfoMax encoder and evaluate its embedding on held-out data.

The encoder (ConvNet + normaliser) learns a ``d``-dimensional embedding whose distribution is
pushed towards the prior (``N(0, I)`` or ``U[0, 1]^d``) by maximising the InfoNCE estimate of
the mutual information through an output-noise channel of level ``p`` (capacity
``d·(−log p)`` nats). Every epoch logs the estimate Î, the capacity and the certificate
``capacity − Î`` (an upper bound on KL(noisy embedding ‖ prior), nats) to TensorBoard; InfoNCE
cannot exceed log(batch size). After training, the clean embeddings of the training and test
splits are scored: prior-matching p-values on the test embedding (mean over random subsamples
of 64 points), logistic/kNN/MLP probe accuracies (fit on train, score on test) and clustering
scores. Writes ``summary.json`` and ``summary.md`` next to the TensorBoard events in
``<log-dir>/<run name>/version_<n>/``.

Example: ``ibkit train dim --prior gaussian --dim 2 --noise 0.32 --data mnist --data-dir /path/to/mnist``
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from ibkit.data import make_datamodule
from ibkit.evaluation import evaluate_embedding
from ibkit.models.channels import check_noise_level
from ibkit.models.critics import CRITICS
from ibkit.models.dim import NoiseInjectedDIM, embed
from ibkit.models.encoders import PRIORS, check_dim, check_prior


@dataclass
class DIMConfig:
    """Settings of one training run (see ``ibkit train dim --help``)."""

    prior: str = "gaussian"
    dim: int = 2
    noise: float | None = 0.1
    data: str = "digits"
    data_dir: str | None = None
    epochs: int = 30
    batch_size: int = 256
    input_noise: float | None = 0.5
    augment: bool = False
    conv_widths: tuple[int, int, int] = (32, 64, 128)
    critic: str = "mlp"
    critic_hidden: int = 64
    lr: float = 1e-3
    seed: int = 0
    n_subsamples: int = 1024

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        check_prior(self.prior)
        check_dim(self.dim)
        if self.noise is not None:
            check_noise_level(self.noise, "--noise")
        if self.input_noise is not None:
            check_noise_level(self.input_noise, "--input-noise")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size must be >= 2 (InfoNCE negatives and BatchNorm statistics), got {self.batch_size}")
        if self.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {self.epochs}")

    @property
    def run_name(self) -> str:
        noise = "none" if self.noise is None else f"{self.noise:g}"
        return f"dim_{self.data}_{self.prior}_d{self.dim}_p{noise}_seed{self.seed}"


def noise_level(text: str) -> float | None:
    """Parse a noise level for argparse: a number in (0, 1), or ``none`` for no noise."""
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1) or 'none', got {text!r}") from error
    try:
        return check_noise_level(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def add_training_arguments(parser: argparse.ArgumentParser, defaults: DIMConfig) -> None:
    """Arguments shared by ``ibkit train dim`` and ``ibkit bench dim`` (all but ``--dim``/``--noise``)."""
    parser.add_argument("--prior", choices=PRIORS, default=defaults.prior, help="target distribution of the embedding")
    parser.add_argument("--data", choices=("digits", "mnist"), default=defaults.data,
                        help="digits: scikit-learn 8×8 (bundled); mnist: needs --data-dir (IDX files)")
    parser.add_argument("--data-dir", default=defaults.data_dir, help="MNIST folder (IDX files or torchvision layout)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help="training batch; InfoNCE estimates are capped at log(batch size) nats")
    parser.add_argument("--input-noise", type=noise_level, default=defaults.input_noise,
                        help="level p of the Gaussian input channel making the two views, or 'none'")
    parser.add_argument("--augment", action="store_true", help="also random affine augmentation of each view")
    parser.add_argument("--conv-widths", type=int, nargs=3, default=list(defaults.conv_widths),
                        help="channels of the ConvNet's three blocks")
    parser.add_argument("--critic", choices=sorted(CRITICS), default=defaults.critic)
    parser.add_argument("--critic-hidden", type=int, default=defaults.critic_hidden, help="critic hidden width")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate")
    parser.add_argument("--subsamples", dest="n_subsamples", type=int, default=defaults.n_subsamples,
                        help="random subsamples (of 64 points) averaged in the prior tests")


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = DIMConfig()
    parser.add_argument("--dim", type=int, default=defaults.dim, help="embedding dimension d")
    parser.add_argument("--noise", type=noise_level, default=defaults.noise,
                        help="output-noise level p in (0, 1) (capacity -log p nats per dimension), or 'none'")
    add_training_arguments(parser, defaults)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--log-dir", type=Path, default=Path("ibkit_runs"), help="TensorBoard and summary root")


def config_from_args(args: argparse.Namespace, **overrides: Any) -> DIMConfig:
    """A :class:`DIMConfig` from parsed arguments (fields absent from ``args`` keep their defaults)."""
    fields = {name: getattr(args, name) for name in DIMConfig.__dataclass_fields__ if hasattr(args, name)}
    fields.update(overrides)
    if fields.get("data_dir") is not None:
        fields["data_dir"] = str(fields["data_dir"])
    return DIMConfig(**fields)


def train_and_evaluate(config: DIMConfig, log_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train one encoder, evaluate its held-out embedding and write ``summary.json``/``.md``.

    Returns:
        The summary: ``config``, ``capacity``/``mi``/``certificate`` (nats; last epoch's means),
        ``log_batch_size`` (the InfoNCE ceiling), the evaluation metrics of
        :func:`ibkit.evaluation.evaluate_embedding`, ``train_seconds``, ``log_dir`` and the split sizes.
    """
    config.validate()
    L.seed_everything(config.seed, verbose=False)
    datamodule = make_datamodule(config.data, config.data_dir, batch_size=config.batch_size, seed=config.seed)
    datamodule.setup()
    n_train = len(datamodule.train_set)
    if config.batch_size > n_train:
        raise ValueError(f"--batch-size {config.batch_size} exceeds the {n_train} training samples")
    # Full batches only: InfoNCE's ceiling log B and the BatchNorm constraint depend on the batch size.
    train_loader = DataLoader(datamodule.train_set, batch_size=config.batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(config.seed))
    model = NoiseInjectedDIM(datamodule.input_shape, prior=config.prior, dim=config.dim, noise=config.noise,
                             input_noise=config.input_noise, augment=config.augment,
                             conv_widths=tuple(config.conv_widths), critic=config.critic,
                             critic_hidden=config.critic_hidden, lr=config.lr)
    logger = TensorBoardLogger(str(log_dir), name=config.run_name, default_hp_metric=False)
    trainer = L.Trainer(max_epochs=config.epochs, accelerator="auto", devices=1, logger=logger,
                        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                        num_sanity_val_steps=0, log_every_n_steps=1)
    started = time.perf_counter()
    trainer.fit(model, train_loader, datamodule.val_dataloader())
    train_seconds = time.perf_counter() - started

    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    train_z, train_y = embed(model, datamodule.train_dataloader())
    test_z, test_y = embed(model, datamodule.test_dataloader())
    evaluation = evaluate_embedding(train_z, train_y, test_z, test_y, prior=config.prior,
                                    n_subsamples=config.n_subsamples, seed=config.seed)
    logger.log_metrics({f"test/{name}": value for name, value in evaluation.items()}, step=trainer.global_step)
    logger.finalize("success")
    summary = {
        "config": asdict(config),
        "capacity": model.capacity,
        "mi": metrics["train/mi"],
        "certificate": metrics.get("train/certificate"),
        "log_batch_size": float(torch.log(torch.tensor(float(config.batch_size)))),
        **evaluation,
        "n_train": n_train,
        "n_test": int(test_z.shape[0]),
        "train_seconds": train_seconds,
        "log_dir": logger.log_dir,
    }
    write_summary(summary, Path(logger.log_dir))
    return summary


def summary_markdown(summary: dict[str, Any]) -> str:
    """A markdown report of one run: settings, information terms (nats) and evaluation metrics."""
    config = summary["config"]
    lines = [f"# Noise-injected Deep InfoMax: {config['data']}, {config['prior']} prior, d = {config['dim']}", "",
             "| setting | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in config.items()]
    lines += ["", "| quantity | value |", "|---|---|"]
    for name, value in summary.items():
        if name in ("config", "log_dir"):
            continue
        lines.append(f"| {name} | {'—' if value is None else f'{value:.4g}' if isinstance(value, float) else value} |")
    lines += ["", "Information terms in nats: capacity = d·(−log p), mi = InfoNCE estimate Î (last epoch's mean, "
              "at most log_batch_size), certificate = capacity − Î ≥ KL(noisy embedding ‖ prior). p-values are "
              "means over random subsamples of 64 held-out embeddings."]
    return "\n".join(lines) + "\n"


def write_summary(summary: dict[str, Any], directory: Path) -> None:
    """Write ``summary.json`` and ``summary.md`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (directory / "summary.md").write_text(summary_markdown(summary))


def run(args: argparse.Namespace) -> int:
    summary = train_and_evaluate(config_from_args(args), args.log_dir)
    print(summary_markdown(summary))
    print(f"summary and TensorBoard logs: {summary['log_dir']}")
    return 0
