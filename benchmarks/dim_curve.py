"""Learning curves of noise-injected Deep InfoMax at one noise level: what limits probe accuracy.

Trains the encoder of ``ibkit train dim`` at output noise p = 0.316 (d = 2, MNIST) once per
*variant* — the former sweep settings, then the authors' settings one change at a time — and scores the
embedding after chosen epochs (default 5, 15, 50): the InfoNCE estimate Î of that epoch, the
logistic, kNN and MLP probe accuracies (fit on the training embedding, scored on held-out
images), the silhouette and the Henze–Zirkler p-value. Each variant is a list of
``ibkit train dim`` options applied on top of ``CURVE_BASE``.

Writes ``dim_curve.csv`` and ``dim_curve.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.benchmarks.train_dim import train_and_evaluate
from ibkit.evaluation import evaluate_embedding
from ibkit.models import embed
from ibkit.report import markdown_table, write_csv

#: The starting point: the settings of the earlier sweep (MNIST, batch 256, input noise 0.5, critic 64).
CURVE_BASE = ("--data", "mnist", "--data.batch_size", "256", "--model.input_noise", "0.5",
              "--model.critic_hidden", "64")
#: Variant name -> ``ibkit train dim`` options changed from ``CURVE_BASE``.
VARIANTS: dict[str, tuple[str, ...]] = {
    "sweep defaults (global pooling)": ("--model.conv_widths", "[16, 32, 64]", "--model.padding", "same"),
    "paper ConvNet head (valid convs)": ("--model.conv_widths", "[16, 32, 64]"),
    "+ widths 32/64/128": ("--model.conv_widths", "[32, 64, 128]"),
    "+ batch 1024": ("--model.conv_widths", "[16, 32, 64]", "--data.batch_size", "1024"),
    "+ critic width 256": ("--model.conv_widths", "[16, 32, 64]", "--model.critic_hidden", "256"),
}


class EvaluateAt(L.Callback):
    """Score the embedding (probes, silhouette, HZ p-value) and Î after the given epochs (1-based)."""

    def __init__(self, epochs: Sequence[int], subsamples: int = 256, seed: int = 0):
        self.epochs, self.subsamples, self.seed = sorted(epochs), subsamples, seed
        self.rows: list[dict[str, Any]] = []
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch not in self.epochs:
            return
        data = trainer.datamodule
        train_z, train_y = embed(pl_module, DataLoader(data.train_set, batch_size=1024))
        test_z, test_y = embed(pl_module, DataLoader(data.test_set, batch_size=1024))
        scores = evaluate_embedding(train_z, train_y, test_z, test_y, n_subsamples=self.subsamples, seed=self.seed)
        self.rows.append({"epoch": epoch, "mi": float(trainer.callback_metrics["train/mi"]),
                          **{key: scores[key] for key in ("accuracy_logistic", "accuracy_knn", "accuracy_mlp",
                                                          "silhouette", "pvalue_henze_zirkler")},
                          "train_minutes": (time.perf_counter() - self._started) / 60})


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs-at", type=int, nargs="+", default=[5, 15, 50], help="epochs after which to score")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--noise", type=float, default=0.316, help="output-noise level p")
    parser.add_argument("--data-dir", default="../shared/data/mnist", help="MNIST folder")
    parser.add_argument("--out", type=Path, default=RESULTS / "dim_curve")


def run(args: argparse.Namespace) -> int:
    rows = []
    for variant in args.variants:
        evaluator = EvaluateAt(args.epochs_at)
        train_and_evaluate([*CURVE_BASE, "--data-dir", args.data_dir, "--epochs", str(max(args.epochs_at)),
                            "--model.noise", str(args.noise), "--eval.subsamples", "256",
                            "--trainer.logger.init_args.save_dir", str(args.out / "runs"), *VARIANTS[variant]],
                           progress=False, callbacks=[evaluator])
        rows += [{"variant": variant, **row} for row in evaluator.rows]
        print(markdown_table(rows, formats={"mi": ".2f", "train_minutes": ".1f"}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "dim_curve.csv", rows)
    table = markdown_table(rows, formats={key: ".3f" for key in rows[0] if key not in ("variant", "epoch")})
    (args.out / "dim_curve.md").write_text(table + "\n")
    print(table)
    return 0


main = argparse_main("ibkit bench dim-curve", __doc__, configure, run)
