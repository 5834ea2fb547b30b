"""Estimate MI on synthetic data with known MI and compare with the truth (ICLR-2024 §5).

For every true MI on a grid (default 0…10 nats in steps of 0.5) and every data set, draw N
paired samples whose MI is known exactly, compress images with one autoencoder per data set
(trained once on samples of the marginal, shared by X and Y as in the paper), and estimate the
MI with each estimator. Data sets: ``gaussian`` (correlated Gaussian vectors, no compression),
``gaussians-16``/``gaussians-32`` (images of a 2-D Gaussian bump, latent = its centre) and
``rectangles-16``/``rectangles-32`` (anti-aliased rectangles, latent = 4 coordinates).

Writes ``results.csv`` (one row per data set, MI and estimator), ``estimates.png`` (estimate vs
truth with 95 % CIs) and ``errors.md`` (absolute error per MI value, and the mean absolute error
over true MI ∈ [0, 5]) into ``--out``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import ibkit
from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.benchmarks.timed import timed_estimate
from ibkit.compression import AutoencoderCompressor
from ibkit.report import markdown_table, write_csv
from ibkit.synthetic import correlated_gaussians, correlated_image_pairs, marginal_images
from ibkit.validation import check_k

IMAGE_SETS = ("gaussians-16", "gaussians-32", "rectangles-16", "rectangles-32")
#: ``gaussian`` vectors, ``exp`` (the same through ``e^{2z}``), images compressed by an autoencoder,
#: and the raw images (``<set>-raw``: pixels plus Gaussian noise of ``RAW_NOISE``, trained estimators only).
DATASETS = ("gaussian", "exp", *IMAGE_SETS, *(f"{name}-raw" for name in IMAGE_SETS))
ESTIMATORS = ("kl", "wkl", "ksg", "kde-ml", "kde-lse", "mienf", "mienf-tridiag", "mine", "nwj", "infonce")
TRAINED = ("mienf", "mienf-tridiag", "mine", "nwj", "infonce")
PRESETS = {
    "full": dict(n=5_000, mi_max=10.0, mi_step=0.5, ae_epochs=150, ae_train=6_000,
                 datasets=["gaussian", "gaussians-16", "rectangles-32"], estimators=list(ESTIMATORS[:5])),
    "comparison": dict(n=10_000, mi_max=10.0, mi_step=2.5, ae_epochs=150, ae_train=6_000,
                       datasets=["gaussian", "exp", "gaussians-16", "rectangles-32", "gaussians-16-raw"],
                       estimators=["wkl", "ksg", "mienf", "mienf-tridiag", "mine", "nwj", "infonce"]),
    "quick": dict(n=2_000, mi_max=10.0, mi_step=2.5, ae_epochs=15, ae_train=2_000,
                  datasets=["gaussian", "gaussians-16"], estimators=["kl", "wkl", "ksg"]),
}
#: Standard deviation of the noise added to raw image pixels (in [0, 1]): images lie on a 2- or
#: 4-dimensional manifold, where a density (and so a flow's likelihood) does not exist without it.
RAW_NOISE = 0.01
#: MI range over which the headline mean absolute error is reported (nats).
ERROR_RANGE = (0.0, 5.0)


@dataclass
class Row:
    dataset: str
    true_mi: float
    estimator: str
    estimate: float
    stderr: float
    seconds: float


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full",
                        help="default settings: 'full' is the ICLR-2024 experiment (non-parametric estimators), "
                             "'comparison' every estimator family on vectors, AE codes and raw images (N = 10k), "
                             "'quick' a minute-long check")
    parser.add_argument("--n", type=int, help="samples per MI value (full: 5000)")
    parser.add_argument("--mi-max", type=float, help="largest true MI on the grid, nats")
    parser.add_argument("--mi-step", type=float, help="grid step, nats")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS)
    parser.add_argument("--estimators", nargs="+", choices=ESTIMATORS)
    parser.add_argument("--k", type=neighbour_order, default="auto",
                        help="neighbour order of the kNN estimators: an integer or 'auto' (default: each "
                             "estimator's own rule for the sample size and dimension)")
    parser.add_argument("--gaussian-dim", type=int, default=2, help="dimension per side of the 'gaussian' data set")
    parser.add_argument("--ae-epochs", type=int, help="autoencoder training epochs")
    parser.add_argument("--ae-train", type=int, help="marginal images used to train each autoencoder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "synthetic")
    parser.add_argument("--device", help="where the autoencoders train (default: the CPU)")


def neighbour_order(text: str) -> int | str:
    """``--k``: a positive integer or ``auto``."""
    return text if text == "auto" else check_k(int(text))


def resolve(args: argparse.Namespace) -> dict:
    settings = dict(PRESETS[args.preset])
    for key in ("n", "mi_max", "mi_step", "ae_epochs", "ae_train", "datasets", "estimators", "device"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if settings["mi_step"] <= 0 or settings["mi_max"] < 0:
        raise ValueError("--mi-step must be positive and --mi-max non-negative")
    return settings


def latent_size(dataset: str) -> int:
    return 2 if dataset.startswith("gaussians") else 4


def image_spec(dataset: str) -> tuple[str, int]:
    kind, size = dataset.split("-")[:2]
    return kind, int(size)


def applies(estimator: str, dataset: str) -> bool:
    """Raw images go to the trained estimators only (a k-NN estimate in 256–1024 pixel dimensions
    says nothing); everything else to every estimator."""
    return not dataset.endswith("-raw") or estimator in TRAINED


def fit_compressor(dataset: str, settings: dict, seed: int) -> AutoencoderCompressor:
    kind, size = image_spec(dataset)
    images = marginal_images(kind, size, settings["ae_train"], seed=seed + 1)
    compressor = AutoencoderCompressor(
        latent_size(dataset), architecture="conv", max_epochs=settings["ae_epochs"], seed=seed,
        device=settings.get("device"))
    return compressor.fit(images)


def sample_pair(dataset: str, n: int, mi: float, seed: int, gaussian_dim: int,
                compressor: AutoencoderCompressor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if dataset in ("gaussian", "exp"):
        x, y = correlated_gaussians(n, mi, gaussian_dim, seed=seed)
        return (x, y) if dataset == "gaussian" else (torch.exp(2 * x), torch.exp(2 * y))
    kind, size = image_spec(dataset)
    x_images, y_images, _, _ = correlated_image_pairs(kind, size, n, mi, seed=seed)
    if dataset.endswith("-raw"):
        generator = torch.Generator().manual_seed(seed)
        noise = lambda images: images + RAW_NOISE * torch.randn(images.shape, generator=generator)  # noqa: E731
        return noise(x_images), noise(y_images)
    return compressor.transform(x_images), compressor.transform(y_images)


def run_benchmark(settings: dict, k: int | str, gaussian_dim: int, seed: int) -> list[Row]:
    grid = np.round(np.arange(0.0, settings["mi_max"] + 1e-9, settings["mi_step"]), 6)
    rows: list[Row] = []
    with tqdm(total=len(settings["datasets"]) * len(grid), desc="synthetic MI", unit="point") as bar:
        for dataset in settings["datasets"]:
            compressor = None
            if dataset in IMAGE_SETS:
                bar.set_postfix_str(f"training autoencoder for {dataset}")
                compressor = fit_compressor(dataset, settings, seed)
            for index, mi in enumerate(grid):
                bar.set_postfix_str(f"{dataset}, MI={mi:g}")
                x, y = sample_pair(dataset, settings["n"], float(mi), seed + 1000 + index, gaussian_dim, compressor)
                for name in settings["estimators"]:
                    if not applies(name, dataset):
                        continue
                    params = {"k": k} if name in ("kl", "wkl", "ksg") else {}
                    result = timed_estimate(lambda: ibkit.mutual_information(x, y, method=name, **params))  # noqa: B023
                    if result.error:  # a degenerate code: record the gap, keep going
                        tqdm.write(f"{dataset} MI={mi:g} {name}: {result.error}")
                    rows.append(Row(dataset, float(mi), name, result.value, result.stderr, result.seconds))
                bar.update()
    return rows


def error_table(rows: list[Row]) -> str:
    """Markdown: absolute error per true MI (rows) and data set/estimator (columns), plus MAE."""
    lookup = {(r.dataset, r.estimator, r.true_mi): r for r in rows}
    columns = sorted({(r.dataset, r.estimator) for r in rows}, key=lambda c: (DATASETS.index(c[0]), ESTIMATORS.index(c[1])))
    grid = sorted({r.true_mi for r in rows})
    table = [{"true MI": f"{mi:g}", **{f"{d} {e}": f"{abs(lookup[(d, e, mi)].estimate - mi):.2f}" for d, e in columns}}
             for mi in grid]
    low, high = ERROR_RANGE
    table.append({"true MI": f"MAE on [{low:g}, {high:g}]", **{
        f"{d} {e}": f"**{np.mean([abs(lookup[(d, e, mi)].estimate - mi) for mi in grid if low <= mi <= high]):.2f}**"
        for d, e in columns}})
    return markdown_table(table)


def summary_table(rows: list[Row]) -> str:
    """Markdown: per estimator (rows) and data set, the MAE on ERROR_RANGE, the signed error at its
    top and at the grid's top, and the mean seconds per estimate; "—" where not run."""
    datasets = [d for d in DATASETS if any(r.dataset == d for r in rows)]
    estimators = [e for e in ESTIMATORS if any(r.estimator == e for r in rows)]
    lookup = {(r.dataset, r.estimator, r.true_mi): r for r in rows}
    grid = sorted({r.true_mi for r in rows})
    low, high = ERROR_RANGE
    middle = max(mi for mi in grid if mi <= high)
    top = grid[-1]
    table = []
    for e in estimators:
        entry = {"estimator": e}
        for d in datasets:
            mine = [lookup[(d, e, mi)] for mi in grid if (d, e, mi) in lookup]
            if not mine:
                entry.update({f"{d}: MAE [{low:g}, {high:g}]": "—", f"{d}: error at {middle:g}": "—",
                              f"{d}: error at {top:g}": "—", f"{d}: s/estimate": "—"})
                continue
            errors = [abs(r.estimate - r.true_mi) for r in mine if low <= r.true_mi <= high]
            entry[f"{d}: MAE [{low:g}, {high:g}]"] = f"{np.mean(errors):.2f}"
            entry[f"{d}: error at {middle:g}"] = f"{lookup[(d, e, middle)].estimate - middle:+.2f}"
            entry[f"{d}: error at {top:g}"] = f"{lookup[(d, e, top)].estimate - top:+.2f}"
            entry[f"{d}: s/estimate"] = f"{np.mean([r.seconds for r in mine]):.1f}"
        table.append(entry)
    return markdown_table(table)


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [d for d in DATASETS if any(r.dataset == d for r in rows)]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 4.2), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        subset = [r for r in rows if r.dataset == dataset]
        grid = sorted({r.true_mi for r in subset})
        axis.plot(grid, grid, color="black", linestyle="--", linewidth=1, label="true MI")
        for name in ESTIMATORS:
            series = sorted((r for r in subset if r.estimator == name), key=lambda r: r.true_mi)
            if not series:
                continue
            truth = np.array([r.true_mi for r in series])
            value = np.array([r.estimate for r in series])
            half = 1.96 * np.array([r.stderr for r in series])
            (line,) = axis.plot(truth, value, marker="o", markersize=3, label=name)
            axis.fill_between(truth, value - half, value + half, color=line.get_color(), alpha=0.2)
        axis.set_title(dataset)
        axis.set_xlabel("true MI (nats)")
        axis.set_ylabel("estimated MI (nats)")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    settings = resolve(args)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"ibkit bench synthetic: N={settings['n']}, MI 0..{settings['mi_max']:g} step {settings['mi_step']:g}, "
          f"data {', '.join(settings['datasets'])}, estimators {', '.join(settings['estimators'])}, k={args.k}, seed={args.seed}")
    rows = run_benchmark(settings, args.k, args.gaussian_dim, args.seed)
    write_csv(args.out / "results.csv", [asdict(row) for row in rows])
    plot(rows, args.out / "estimates.png")
    tables = summary_table(rows) + "\n\nAbsolute error per true MI (nats):\n\n" + error_table(rows)
    (args.out / "errors.md").write_text(tables + "\n")
    print(tables)
    print(f"\nwrote {args.out / 'results.csv'}, {args.out / 'estimates.png'} and {args.out / 'errors.md'}")
    return 0


main = argparse_main("ibkit bench synthetic", __doc__, configure, run)
