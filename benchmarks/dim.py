"""Sweep the output-noise level of noise-injected Deep InfoMax: the information/matching trade-off.

For each output-noise level p (default 0.75, 0.56, 0.32, 0.18, 0.1, 0.03, 0.01, i.e. total
capacity d·(−log p) from 0.58 to 9.2 nats at d = 2) and seed, trains the encoder exactly as
``ibkit train dim ... --model.noise p --seed_everything seed`` would and reports: capacity, the
InfoNCE estimate Î (nats, capped at log batch size), the certificate capacity − Î (≥ KL(noisy
embedding ‖ prior)), the prior-matching p-values of the held-out embedding (mean over random
subsamples of 64 points), the logistic/kNN/MLP probe accuracies and the silhouette score. Less
noise keeps more information (better probes) but, once Î saturates below the capacity, matches
the prior less well.

Options of its own: ``--noise-levels``, ``--seeds``, ``--out``; every other option is an option of
``ibkit train dim`` (``--data``, ``--model.*``, ``--config``, ...), applied on top of this sweep's
defaults (``BENCH_ARGS``: MNIST, 25 epochs, batch 256, the paper's ConvNet, critic width 64). Writes
``dim_tradeoff.csv`` (one row per level and seed), ``dim_tradeoff.md`` (means over seeds) and
``dim_tradeoff.png`` into ``--out``; TensorBoard logs and per-run summaries go to ``<out>/runs``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.benchmarks.train_dim import train_and_evaluate
from ibkit.models.channels import check_noise_level
from ibkit.report import markdown_table, write_csv

NOISE_LEVELS = (0.75, 0.56, 0.32, 0.18, 0.1, 0.03, 0.01)
#: ``ibkit train dim`` options of the default sweep: the best setting of ``ibkit bench dim-curve``
#: that fits about 30 minutes on 2 CPU cores on the MNIST 10k test split (the paper's ConvNet).
BENCH_ARGS = ("--data", "mnist", "--epochs", "25", "--data.batch_size", "256", "--model.input_noise", "0.5",
              "--model.conv_widths", "[32, 64, 128]", "--model.critic_hidden", "64")

#: Columns of the markdown table: (CSV column, header, format).
TABLE = (
    ("p", "p", "{:.3g}"),
    ("capacity", "d·C (nats)", "{:.2f}"),
    ("mi", "Î (nats)", "{:.2f}"),
    ("certificate", "d·C − Î", "{:.2f}"),
    ("pvalue_henze_zirkler", "HZ p", "{:.3f}"),
    ("pvalue_shapiro_wilk", "SW p", "{:.3f}"),
    ("pvalue_dagostino_pearson", "DP p", "{:.3f}"),
    ("pvalue_kolmogorov_smirnov", "KS p", "{:.3f}"),
    ("accuracy_logistic", "logistic acc", "{:.3f}"),
    ("accuracy_knn", "kNN acc", "{:.3f}"),
    ("accuracy_mlp", "MLP acc", "{:.3f}"),
    ("silhouette", "silhouette", "{:.3f}"),
    ("train_seconds", "train s", "{:.0f}"),
)

def noise_level(text: str) -> float:
    """``--noise-levels`` entries: numbers in (0, 1)."""
    try:
        return check_noise_level(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def sweep(train_args: Sequence[str], noise_levels: Sequence[float], seeds: Sequence[int],
          out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train and evaluate one encoder per (level, seed), with a progress bar.

    Returns:
        One flat row per run, and the first run's settings (model, data, epochs).
    """
    if not noise_levels or not seeds:
        raise ValueError("give at least one noise level and one seed")
    rows: list[dict[str, Any]] = []
    settings: dict[str, Any] = {}
    runs = [(p, seed) for p in noise_levels for seed in seeds]
    with tqdm(runs, desc="dim sweep", unit="run") as bar:
        for p, seed in bar:
            bar.set_postfix(p=p, seed=seed)
            summary = train_and_evaluate([*train_args, "--model.noise", str(p), "--seed_everything", str(seed),
                                          "--trainer.logger.init_args.save_dir", str(out / "runs")], progress=False)
            row = {"p": p, "seed": seed, **{k: v for k, v in summary.items() if k not in ("settings", "log_dir")}}
            rows.append(row)
            settings.setdefault("first", summary["settings"])
            bar.write(f"p={p:g} seed={seed}: capacity {row['capacity']:.2f}, Î {row['mi']:.2f}, "
                      f"certificate {row['certificate']:.2f} nats, MLP acc {row['accuracy_mlp']:.3f}")
    return rows, settings["first"]


def mean_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows averaged over seeds, one per noise level, in sweep order (with ``n_seeds``)."""
    levels = list(dict.fromkeys(row["p"] for row in rows))
    averaged = []
    for p in levels:
        group = [row for row in rows if row["p"] == p]
        numeric = {key for key, value in group[0].items() if isinstance(value, (int, float))}
        averaged.append({**{key: float(np.mean([row[key] for row in group])) for key in numeric}, "n_seeds": len(group)})
    return averaged


def tradeoff_table(rows: list[dict[str, Any]], settings: dict[str, Any], seeds: Sequence[int], minutes: float) -> str:
    """The trade-off table (means over seeds) with a header naming data, epochs, seeds and settings."""
    averaged = mean_rows(rows)
    columns = [(key, header, fmt) for key, header, fmt in TABLE if key in averaged[0]]
    model, data = settings["model"], settings["data"]
    batch = data["init_args"]["batch_size"]
    table = [{header: fmt.format(row[key]) for key, header, fmt in columns} for row in averaged]
    return "\n".join([
        f"Noise-injected Deep InfoMax trade-off: {data['class_path'].rsplit('.', 1)[-1]} ({rows[0]['n_train']} "
        f"training / {rows[0]['n_test']} held-out images), {model['prior']} prior, d = {model['dim']}, "
        f"{settings['max_epochs']} epochs, batch {batch} (InfoNCE ceiling log B = {math.log(batch):.2f} nats), "
        f"input noise p_in = {model['input_noise']}, {model['critic']} critic (hidden {model['critic_hidden']}), "
        f"conv widths {list(model['conv_widths'])}, Adam lr {model['lr']:g}, seeds {', '.join(map(str, seeds))} "
        f"(mean shown); {minutes:.1f} min in total.",
        "",
        markdown_table(table),
        "",
        "d·C: capacity of the output channel (nats); Î: InfoNCE estimate, last epoch's mean; d·C − Î: "
        "upper bound on KL(noisy embedding ‖ prior). p-values: mean over 1024 random subsamples of 64 "
        "held-out embeddings (HZ Henze–Zirkler, SW Shapiro–Wilk and DP D'Agostino–Pearson on random "
        "1-D projections, KS per-dimension Kolmogorov–Smirnov, Fisher-combined); ≈ 0.5 means "
        "indistinguishable from the prior. Probes are fitted on training embeddings and scored on "
        "held-out ones.",
    ]) + "\n"


def plot_tradeoff(rows: list[dict[str, Any]], path: Path, log_batch: float) -> None:
    """Two panels against capacity: information (Î, capacity, log B) and quality (p-values, accuracy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    averaged = mean_rows(rows)
    capacity = np.array([row["capacity"] for row in averaged])
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(capacity, capacity, "k--", label="capacity d·C")
    left.axhline(log_batch, color="grey", linestyle=":", label="log batch size (InfoNCE ceiling)")
    left.plot(capacity, [row["mi"] for row in averaged], "o-", label="InfoNCE Î")
    left.plot(capacity, [row["certificate"] for row in averaged], "s-", label="certificate d·C − Î")
    left.set(xlabel="capacity d·C (nats)", ylabel="nats", title="information through the output channel")
    left.legend(fontsize=8)
    for key, label, style in (("pvalue_henze_zirkler", "HZ p-value", "o-"), ("pvalue_shapiro_wilk", "SW p-value", "^-"),
                              ("pvalue_dagostino_pearson", "DP p-value", "v-"),
                              ("pvalue_kolmogorov_smirnov", "KS p-value", "o-"),
                              ("accuracy_mlp", "MLP probe accuracy", "s--"), ("accuracy_knn", "kNN accuracy", "d--")):
        if key in averaged[0]:
            right.plot(capacity, [row[key] for row in averaged], style, label=label)
    right.set(xlabel="capacity d·C (nats)", ylim=(0, 1), title="prior matching vs downstream accuracy")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--noise-levels", type=noise_level, nargs="+", default=list(NOISE_LEVELS),
                        help="output-noise levels p to sweep")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per level and seed")
    parser.add_argument("--out", type=Path, default=RESULTS / "dim", help="output folder")


def run(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows, settings = sweep([*BENCH_ARGS, *args.passed], args.noise_levels, args.seeds, args.out)
    minutes = (time.perf_counter() - started) / 60
    write_csv(args.out / "dim_tradeoff.csv", rows)
    table = tradeoff_table(rows, settings, args.seeds, minutes)
    (args.out / "dim_tradeoff.md").write_text(table)
    plot_tradeoff(rows, args.out / "dim_tradeoff.png", rows[0]["log_batch_size"])
    print(table)
    print(f"wrote {args.out / 'dim_tradeoff.md'}, .csv and .png")
    return 0


main = argparse_main("ibkit bench dim", __doc__, configure, run, pass_through=True)
