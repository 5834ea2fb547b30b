"""The information plane at the scale of the networks people train: torchvision's ResNet-18.

A user attaches ``InformationPlane`` to their own network: here torchvision's ResNet-18 built
from scratch (no weight download) in its CIFAR form (3×3 stem, no max-pool, so ``layer1`` outputs
64×32×32 = 65,536 units per sample), trained on the bundled MNIST images padded to 32×32 and
copied to 3 channels, with the callback recording ``net.layer1`` … ``net.layer4`` and ``net.fc``
on a probe of N images. Every (N, mode) runs in a fresh process, so that its peak resident memory
is its own; per run the command reports, for the epochs after the first, the median seconds of
the capture, the compression and the estimation, how long the training loop was blocked, and the
peak RSS of the training process (and of CUDA memory on a GPU), plus the one-off compression of
the probe inputs. Nothing here asserts a time. Writes ``results.csv`` and ``summary.md``.

Usage::

    ibkit bench scale                                   # N = 2,000, 5,000, 10,000; sync and background
    ibkit bench scale --sizes 5000 --modes synchronous --device cuda --x-compressor pca
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from ibkit.benchmarks.callback import DEFAULT_DATA_DIR, probe_from_all_images
from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.data import MNISTDataModule
from ibkit.report import markdown_table, write_csv

LAYERS = ["net.layer1", "net.layer2", "net.layer3", "net.layer4", "net.fc"]
MODES = ("synchronous", "background")


def cifar_resnet18(classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 with random weights, in its CIFAR form (3×3 stride-1 stem, no max-pool)."""
    from torchvision.models import resnet18

    net = resnet18(weights=None, num_classes=classes)
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def as_rgb32(images: torch.Tensor) -> torch.Tensor:
    """``(N, 1, 28, 28)`` MNIST images -> ``(N, 3, 32, 32)``: zero-padded by 2 and copied to 3 channels."""
    return F.pad(images, (2, 2, 2, 2)).expand(-1, 3, -1, -1).contiguous()


class ResNetClassifier(L.LightningModule):
    """A plain LightningModule around the CIFAR ResNet-18, as a user would write it (``self.net``)."""

    def __init__(self, lr: float = 1e-3):
        super().__init__()
        self.net = cifar_resnet18()
        self.lr = lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=os.environ.get("IBKIT_MNIST_DIR", str(DEFAULT_DATA_DIR)),
                        help="folder with the MNIST IDX files (default: $IBKIT_MNIST_DIR or %(default)s)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10_000], help="probe sizes N")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="callback modes")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run (each analysed)")
    parser.add_argument("--train-size", type=int, default=512, help="training images per epoch")
    parser.add_argument("--x-compressor", choices=("autoencoder", "pca"), default="autoencoder",
                        help="compression of the probe inputs (the callback's default: autoencoder)")
    parser.add_argument("--readout-noise", type=float, default=None,
                        help="InformationPlane(readout_noise=...): the MI of a noisy readout of each layer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "scale", help="output folder")
    parser.add_argument("--one-run", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)


def one_run(args: argparse.Namespace, n: int, mode: str) -> dict:
    """Train with the callback in this process; the measurements of one (N, mode) run."""
    from ibkit.callbacks import InformationPlane

    L.seed_everything(args.seed, verbose=False)
    data = MNISTDataModule(args.data_dir, batch_size=128, seed=args.seed)
    x, y = probe_from_all_images(data, n)
    train_x, train_y = data.train_set.tensors
    train = torch.utils.data.TensorDataset(as_rgb32(train_x[:args.train_size]), train_y[:args.train_size])
    loader = torch.utils.data.DataLoader(train, batch_size=128, shuffle=True,
                                         generator=torch.Generator().manual_seed(args.seed))
    callback = InformationPlane(layers=LAYERS, probe=(as_rgb32(x), y), probe_size=n,
                                x_compressor=args.x_compressor, seed=args.seed, log_figure=False,
                                asynchronous=mode == "background", readout_noise=args.readout_noise)
    trainer = L.Trainer(max_epochs=args.epochs, accelerator=args.device, devices=1, logger=False, callbacks=[callback],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.fit(ResNetClassifier(), train_dataloaders=loader)
    fit_s = time.perf_counter() - started
    timings = callback.history.timings()
    later = timings[1:] or timings
    median = {stage: statistics.median(getattr(t, stage) for t in later)
              for stage in ("capture_s", "compression_s", "estimation_s")}
    last = callback.history.points(callback.history.epochs[-1])
    return {
        "N": n, "mode": mode, "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "torch threads": torch.get_num_threads(), "epochs": len(timings), "fit (s)": fit_s,
        **{f"{stage} median (s)": value for stage, value in median.items()},
        "compression + estimation (s)": median["compression_s"] + median["estimation_s"],
        "blocked median (s)": statistics.median(list(callback.blocked_s.values())[1:] or callback.blocked_s.values()),
        "x compression, once (s)": timings[0].x_compression_s,
        "peak RSS (GB)": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "peak CUDA (GB)": torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else None,
        "last epoch I(X;L)": " ".join(f"{p.I_XL:.2f}" for p in last),
        "last epoch I(Y;L)": " ".join(f"{p.I_YL:.2f}" for p in last),
    }


def run(args: argparse.Namespace) -> int:
    if args.one_run:
        print(json.dumps(one_run(args, int(args.one_run[0]), args.one_run[1])))
        return 0
    rows = []
    settings = ["--data-dir", str(Path(args.data_dir).resolve()), "--device", args.device, "--epochs", str(args.epochs),
                "--train-size", str(args.train_size), "--x-compressor", args.x_compressor, "--seed", str(args.seed)]
    if args.readout_noise is not None:
        settings += ["--readout-noise", str(args.readout_noise)]
    for n in args.sizes:
        for mode in args.modes:
            with tempfile.TemporaryDirectory() as folder:
                command = [sys.executable, "-m", "ibkit.benchmarks.cli", "bench", "scale", *settings,
                           "--one-run", str(n), mode]
                done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
            if done.returncode != 0:
                rows.append({"N": n, "mode": mode, "error": done.stderr.strip().splitlines()[-1][:200]})
                print(done.stderr[-2000:], file=sys.stderr)
            else:
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "results.csv", rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    rows = [{column: row.get(column, "") for column in columns} for row in rows]
    formats = {key: ".2f" for row in rows for key, value in row.items() if isinstance(value, float)}
    table = "\n".join([
        f"## ResNet-18 (CIFAR form) on MNIST 32×32×3, layers {', '.join(LAYERS)}, {args.epochs} epochs of "
        f"{args.train_size} images, x compressor {args.x_compressor}, readout noise {args.readout_noise}", "",
        markdown_table(rows, formats=formats)])
    (args.out / "summary.md").write_text(table + "\n")
    print(table)
    return 0


main = argparse_main("ibkit bench scale", __doc__, configure, run)
