"""What the information-plane callback costs a training run (MNIST classifier, N = 10k).

Trains ``ibkit.models.MNISTClassifier`` for a few epochs three times: without
``InformationPlane``, with it, and with it estimating in the background (``asynchronous=True``)
(all of the model's ``default_ib_layers``, a probe of the real MNIST test images), and prints
markdown tables: fit wall time and how long the training loop was blocked per epoch in each run,
and the analysis time of every epoch split into capture (forward pass with hooks), compression
(unit transform and PCA of every layer) and estimation (I(X;L) and I(Y;L) of every layer). The
one-off compression of the probe inputs is reported on its own line. Nothing here asserts a
time; whether the background run's points equal the synchronous run's is reported (the test suite
checks the equality on the CPU, ``tests/test_background.py``).

Usage::

    ibkit bench callback --data-dir /path/to/mnist [--epochs 3] [--x-compressor pca] [--out report.md]

The last table lists the estimates of the final epoch with their standard errors: what error
bars to expect at this probe size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.callbacks import InformationPlane
from ibkit.data import MNISTDataModule
from ibkit.estimators import DEFAULT_METHOD, METHODS
from ibkit.models import MNISTClassifier
from ibkit.report import markdown_table

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=os.environ.get("IBKIT_MNIST_DIR", str(DEFAULT_DATA_DIR)),
                        help="folder with the MNIST IDX files (default: $IBKIT_MNIST_DIR or %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run")
    parser.add_argument("--probe-size", type=int, default=10_000, help="probe samples N")
    parser.add_argument("--x-compressor", choices=("pca", "autoencoder"), default="pca",
                        help="compression of the probe inputs (one-off cost, reported separately)")
    parser.add_argument("--estimator", choices=METHODS, default=DEFAULT_METHOD, help="MI estimator name")
    parser.add_argument("--batch-size", type=int, default=256, help="training batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "callback_overhead.md", help="where to write the report (markdown)")


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


def run(args: argparse.Namespace) -> int:
    data = MNISTDataModule(args.data_dir, batch_size=args.batch_size, seed=args.seed)
    probe = probe_from_all_images(data, args.probe_size)
    layers = list(MNISTClassifier().default_ib_layers)
    planes = {mode: InformationPlane(probe=probe, probe_size=args.probe_size, x_compressor=args.x_compressor,
                                     estimator=args.estimator, seed=args.seed, asynchronous=mode == "background")
              for mode in ("synchronous", "background")}
    with tempfile.TemporaryDirectory() as root:
        baseline_s = timed_fit(args, data, [], root)
        fit_s = {mode: timed_fit(args, data, [plane], root) for mode, plane in planes.items()}
    plane = planes["synchronous"]
    on_gpu = torch.cuda.is_available()
    device = "cuda: " + torch.cuda.get_device_name() if on_gpu else "cpu"
    fit_rows = [{"run": "without callback", "fit wall time (s)": baseline_s, "per epoch (s)": baseline_s / args.epochs,
                 "training loop blocked per epoch, median (s)": 0.0}]
    fit_rows += [{"run": f"with callback, {mode}", "fit wall time (s)": seconds, "per epoch (s)": seconds / args.epochs,
                  "training loop blocked per epoch, median (s)": statistics.median(planes[mode].blocked_s.values())}
                 for mode, seconds in fit_s.items()]
    same = planes["background"].history.rows() == plane.history.rows()
    stages = ("capture_s", "compression_s", "estimation_s")
    timings = plane.history.timings()
    epoch_rows = [{"epoch": t.epoch, **{stage: getattr(t, stage) for stage in stages},
                   "analysis total (s)": sum(getattr(t, stage) for stage in stages)} for t in timings]
    medians = {stage: statistics.median(getattr(t, stage) for t in timings) for stage in stages}
    epoch_rows.append({"epoch": "median", **medians, "analysis total (s)": sum(medians.values())})
    last = plane.history.epochs[-1]
    point_rows = [{"layer": p.layer, "I(X;L) (nats)": p.I_XL, "SE": p.I_XL_stderr, "I(Y;L) (nats)": p.I_YL,
                   "SE ": p.I_YL_stderr} for p in plane.history.points(last)]
    two = {key: ".2f" for key in ("fit wall time (s)", "per epoch (s)", "training loop blocked per epoch, median (s)",
                                  *stages, "analysis total (s)")}
    three = {key: ".3f" for key in ("I(X;L) (nats)", "SE", "I(Y;L) (nats)", "SE ")}
    report = "\n".join([
        f"## InformationPlane overhead: MNISTClassifier, {len(layers)} layers ({', '.join(layers)}), "
        f"N = {probe[0].shape[0]} probe images, {args.epochs} epochs, estimator {plane.config.estimator!r}, "
        f"{device}, {torch.get_num_threads()} torch threads",
        "", markdown_table(fit_rows, formats=two), "",
        "The background run ends with the wait for its last queued epochs; its points are "
        + ("identical to the synchronous run's." if same else "not identical to the synchronous run's"
           + (" (each run trains its own network, and CUDA training is not bitwise reproducible)." if on_gpu else
              ", which tests/test_background.py says they must be.")), "",
        f"One-off compression of the probe inputs ({args.x_compressor}): {plane.analysis.x_compression_s:.2f} s", "",
        "Analysis per epoch (synchronous run):", "",
        markdown_table(epoch_rows, formats=two), "",
        f"Estimates after epoch {last} (standard errors at N = {probe[0].shape[0]}):", "",
        markdown_table(point_rows, formats=three),
    ])
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")
    return 0


main = argparse_main("ibkit bench callback", __doc__, configure, run)
