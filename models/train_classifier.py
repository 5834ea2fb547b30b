"""Train the stochastic MNIST classifier and track its information plane (ICLR 2024, §6).

Builds a data module (``--data digits``: scikit-learn's 8×8 digits, bundled, no files needed;
``--data mnist``: MNIST from ``--data-dir``, see ``ibkit.data.MNISTDataModule`` — a folder with
only the 10k test split is split into train/validation/probe parts), the noise-injected
``MNISTClassifier`` and the ``InformationPlane`` callback, then trains with a TensorBoard logger
and tests on the held-out split. After every analysed epoch the callback logs I(X;L) and I(Y;L)
(nats) of the layers L1..L5 and the softmax output, estimated on the data module's probe set.

Writes into ``<log-dir>/<name>/version_<n>/``: the TensorBoard event files,
``information_plane.csv``/``.json`` (the history) and ``information_plane.png`` (the final
figure). The paper's settings are ``--batch-size 1024 --lr 1e-5 --epochs 300`` on the 60k
training images; the defaults here learn in a few epochs.
"""

from __future__ import annotations

import argparse
import os

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from ibkit.callbacks import InformationPlane
from ibkit.compression import AutoencoderCompressor
from ibkit.data import DATAMODULES, make_datamodule
from ibkit.estimators import DEFAULT_METHOD, METHODS
from ibkit.models.classifier import MNISTClassifier

FIGURE_NAME = "information_plane.png"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", choices=sorted(DATAMODULES), default="digits",
                        help="data set (default: digits, bundled with scikit-learn)")
    parser.add_argument("--data-dir", help="MNIST folder (IDX files, torchvision layout or the 10k test split only)")
    parser.add_argument("--download", action="store_true", help="let torchvision download MNIST (needs internet)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size (default: 64; paper: 1024)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default: 3e-3; paper: 1e-5)")
    parser.add_argument("--sigma", type=float, default=1e-3, help="relative noise level of the injected noise (default: 1e-3)")
    parser.add_argument("--probe-size", type=int, default=10_000, help="max probe samples for MI estimation (default: 10000)")
    parser.add_argument("--estimator", choices=METHODS, default=DEFAULT_METHOD,
                        help=f"MI estimator, with its defaults (default: {DEFAULT_METHOD})")
    parser.add_argument("--x-compressor", choices=("autoencoder", "pca"), default="autoencoder",
                        help="compressor of the probe images to 4 dims (default: autoencoder, as in the paper)")
    parser.add_argument("--ae-epochs", type=int, default=100, help="training epochs of the input autoencoder (default: 100)")
    parser.add_argument("--layer-dims", type=int, default=4, help="PCA dimensions per layer (default: 4)")
    parser.add_argument("--every-n-epochs", type=int, default=1, help="analyse every n-th epoch (default: 1)")
    parser.add_argument("--log-dir", default="runs", help="TensorBoard root folder (default: runs)")
    parser.add_argument("--name", help="experiment name under --log-dir (default: classifier-<data>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (default: 0)")
    parser.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu, ... (default: auto)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice; 1 is "
                        "fastest for this small network on a busy machine)")


def build_datamodule(args: argparse.Namespace) -> L.LightningDataModule:
    """The data module named by ``--data`` (MNIST options only for MNIST)."""
    kwargs = dict(batch_size=args.batch_size, num_workers=args.num_workers, seed=args.seed)
    if args.data == "mnist":
        kwargs["download"] = args.download
    elif args.download:
        raise ValueError("--download applies to --data mnist only")
    return make_datamodule(args.data, args.data_dir, **kwargs)


def build_callback(args: argparse.Namespace) -> InformationPlane:
    """The information-plane callback: probe from the data module, layers from the model."""
    if args.x_compressor == "autoencoder":
        x_compressor = AutoencoderCompressor(4, max_epochs=args.ae_epochs, seed=args.seed, accelerator=args.accelerator)
    else:
        x_compressor = "pca"
    return InformationPlane(probe_size=args.probe_size, estimator=args.estimator, x_compressor=x_compressor,
                            layer_dims=args.layer_dims, every_n_epochs=args.every_n_epochs, seed=args.seed)


def save_final_figure(callback: InformationPlane, directory: str) -> str | None:
    """Write the information plane of every analysed epoch to ``<directory>/information_plane.png``."""
    if len(callback.history) == 0:
        return None
    figure = callback.history.figure()
    path = os.path.join(directory, FIGURE_NAME)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def run(args: argparse.Namespace) -> int:
    for name in ("epochs", "batch_size", "probe_size", "ae_epochs", "layer_dims", "every_n_epochs"):
        value = getattr(args, name)
        if value < (0 if name == "ae_epochs" else 1):
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be positive, got {args.threads}")
        torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, workers=True, verbose=False)
    datamodule = build_datamodule(args)
    datamodule.setup("fit")
    model = MNISTClassifier(input_shape=datamodule.input_shape, num_classes=datamodule.num_classes,
                            lr=args.lr, sigma=args.sigma)
    callback = build_callback(args)
    logger = TensorBoardLogger(args.log_dir, name=args.name or f"classifier-{args.data}")
    batches_per_epoch = len(datamodule.train_dataloader())
    trainer = L.Trainer(max_epochs=args.epochs, accelerator=args.accelerator, devices=1, logger=logger,
                        callbacks=[callback], log_every_n_steps=min(50, batches_per_epoch))
    trainer.fit(model, datamodule=datamodule)
    trainer.test(model, datamodule=datamodule, verbose=True)

    log_dir = logger.log_dir
    figure = save_final_figure(callback, log_dir)
    print(f"\nTensorBoard logs:      {log_dir}")
    print(f"information plane CSV: {os.path.join(log_dir, 'information_plane.csv')}")
    print(f"final figure:          {figure or '(no epoch was analysed)'}")
    print(f"open TensorBoard with: tensorboard --logdir {args.log_dir}   (then http://localhost:6006)")
    return 0
