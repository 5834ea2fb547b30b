"""Cost of the information-plane callback on the bundled MNIST classifier.

Trains ``ibkit.models.MNISTClassifier`` for a few epochs twice, without and with
``InformationPlane`` (all of the model's ``default_ib_layers``, a probe of the real MNIST test
images), and prints markdown tables: fit wall time with and without the callback, and the
analysis time of every epoch split into capture (forward pass with hooks), compression (PCA of
every layer) and estimation (I(X;L) and I(Y;L) of every layer). The one-off compression of the
probe inputs is reported on its own line. Nothing here asserts a time.

Usage::

    python benchmarks/callback_overhead.py --data-dir /path/to/mnist [--epochs 3] [--x-compressor pca]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch

from ibkit.callbacks import InformationPlane
from ibkit.data import MNISTDataModule
from ibkit.models import MNISTClassifier

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("IBKIT_MNIST_DIR", str(DEFAULT_DATA_DIR)),
                        help="folder with the MNIST IDX files (default: $IBKIT_MNIST_DIR or %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run")
    parser.add_argument("--probe-size", type=int, default=10_000, help="probe samples N")
    parser.add_argument("--x-compressor", choices=("pca", "autoencoder"), default="pca",
                        help="compression of the probe inputs (one-off cost, reported separately)")
    parser.add_argument("--estimator", default="wkl", help="MI estimator name")
    parser.add_argument("--batch-size", type=int, default=256, help="training batch size")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def probe_from_all_images(data: MNISTDataModule, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``size`` images of all splits together (with only the t10k files: the 10k test split)."""
    data.setup()
    x = torch.cat([split.tensors[0] for split in (data.test_set, data.val_set, data.train_set)])
    y = torch.cat([split.tensors[1] for split in (data.test_set, data.val_set, data.train_set)])
    return x[:size], y[:size]


def timed_fit(args: argparse.Namespace, data: MNISTDataModule, callbacks: list, root: str) -> float:
    """Seconds for ``Trainer.fit`` of a freshly seeded classifier (files go under ``root``)."""
    L.seed_everything(args.seed, verbose=False)
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="auto", devices=1, logger=False, default_root_dir=root,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=callbacks, num_sanity_val_steps=0)
    model = MNISTClassifier()
    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    return time.perf_counter() - started


def main() -> None:
    args = parse_args()
    data = MNISTDataModule(args.data_dir, batch_size=args.batch_size, seed=args.seed)
    probe = probe_from_all_images(data, args.probe_size)
    layers = list(MNISTClassifier().default_ib_layers)

    plane = InformationPlane(probe=probe, probe_size=args.probe_size, x_compressor=args.x_compressor,
                             estimator=args.estimator, seed=args.seed)
    with tempfile.TemporaryDirectory() as root, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="InformationPlane: no TensorBoardLogger")
        baseline_s = timed_fit(args, data, [], root)
        with_callback_s = timed_fit(args, data, [plane], root)
    timings = plane.history.timings()

    device = "cuda: " + torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"\n## InformationPlane overhead: MNISTClassifier, {len(layers)} layers ({', '.join(layers)}), "
          f"N = {probe[0].shape[0]} probe images, {args.epochs} epochs, estimator {args.estimator}, "
          f"{device}, {torch.get_num_threads()} torch threads\n")
    print("| run | fit wall time (s) | per epoch (s) |")
    print("|---|---:|---:|")
    print(f"| without callback | {baseline_s:.1f} | {baseline_s / args.epochs:.2f} |")
    print(f"| with callback | {with_callback_s:.1f} | {with_callback_s / args.epochs:.2f} |")
    print(f"| overhead | {with_callback_s - baseline_s:.1f} | {(with_callback_s - baseline_s) / args.epochs:.2f} |")
    print(f"\nRatio of fit wall times, with / without the callback: {with_callback_s / baseline_s:.2f}")
    print(f"\nOne-off compression of the probe inputs ({args.x_compressor}): {plane.x_compression_s:.2f} s\n")
    print("| epoch | capture (s) | compression (s) | estimation (s) | analysis total (s) |")
    print("|---:|---:|---:|---:|---:|")
    for t in timings:
        print(f"| {t.epoch} | {t.capture_s:.2f} | {t.compression_s:.2f} | {t.estimation_s:.2f} | "
              f"{t.capture_s + t.compression_s + t.estimation_s:.2f} |")
    medians = [statistics.median(getattr(t, key) for t in timings) for key in ("capture_s", "compression_s", "estimation_s")]
    print(f"| median | {medians[0]:.2f} | {medians[1]:.2f} | {medians[2]:.2f} | {sum(medians):.2f} |")


if __name__ == "__main__":
    main()
