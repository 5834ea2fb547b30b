"""Why MIENF on raw images fails or works: its training curves on pixels of known MI.

For each true MI, one ``mienf-tridiag`` estimate on raw image pairs of ``ibkit bench synthetic``'s
``<set>-raw`` data (pixels in [0, 1] plus Gaussian noise of ``RAW_NOISE``, which can only lower
the MI below the latents' exact value: data processing). Reports the held-out estimate (the
headline), the base's closed form (what the likelihood fit believes), and the epochs; writes the
validation NLL and the closed-form MI after every epoch to ``curves.csv`` and ``curves.png``, and
the rows to ``results.csv`` and ``summary.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.benchmarks.synthetic import IMAGE_SETS, RAW_NOISE, sample_pair
from ibkit.estimators import collect_warnings, make_estimator
from ibkit.report import markdown_table, write_csv


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=IMAGE_SETS, default="gaussians-16")
    parser.add_argument("--mi", type=float, nargs="+", default=[0.0, 2.5, 5.0], help="true MI values, nats")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "mienf" / "raw_images")


def plot(curves: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (nll, closed) = plt.subplots(1, 2, figsize=(10, 4))
    for mi in dict.fromkeys(row["true_mi"] for row in curves):
        mine = [row for row in curves if row["true_mi"] == mi]
        nll.plot([r["epoch"] for r in mine], [r["validation_nll"] for r in mine], label=f"true MI {mi:g}")
        closed.plot([r["epoch"] for r in mine], [r["closed_form_mi"] for r in mine], label=f"true MI {mi:g}")
    nll.set(xlabel="epoch", ylabel="validation NLL (nats per pair)", title="held-out likelihood")
    closed.set(xlabel="epoch", ylabel="closed-form MI of the base (nats)", title="what the fit believes")
    for axis in (nll, closed):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    dataset = f"{args.dataset}-raw"
    rows, curves = [], []
    for index, mi in enumerate(args.mi):
        x, y = sample_pair(dataset, args.n, mi, args.seed + 1000 + index, 2, None)
        estimator = make_estimator("mienf-tridiag", max_epochs=args.max_epochs, seed=args.seed, progress=True)
        try:
            with collect_warnings():
                estimate = estimator.mutual_information(x, y)
        except ValueError as exc:  # a diverged fit: keep the row, say why
            rows.append({"true_mi": mi, "held_out": float("nan"), "stderr": float("nan"), "closed_form": float("nan"),
                         "epochs": 0, "best_epoch": 0, "seconds": 0.0, "failure": str(exc).splitlines()[0]})
            continue
        d = estimate.diagnostics
        rows.append({"true_mi": mi, "held_out": estimate.value, "stderr": estimate.stderr,
                     "closed_form": d["closed_form_mi"], "epochs": d["epochs"], "best_epoch": d["best_epoch"],
                     "seconds": round(d["train_seconds"], 1), "failure": ""})
        curves += [{"true_mi": mi, "epoch": epoch, "validation_nll": loss, "closed_form_mi": closed}
                   for epoch, (loss, closed) in enumerate(zip(d["validation_losses"], d["closed_form_curve"]))]
        print(f"{dataset} MI {mi:g}: held-out {estimate.value:.2f} ± {estimate.stderr:.2f}, closed form "
              f"{d['closed_form_mi']:.2f}, best epoch {d['best_epoch']} of {d['epochs']}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "results.csv", rows)
    write_csv(args.out / "curves.csv", curves)
    if curves:
        plot(curves, args.out / "curves.png")
    text = (f"MIENF (tridiag) on raw {args.dataset} pixels + N(0, {RAW_NOISE:g}²) noise, N = {args.n}, "
            f"at most {args.max_epochs} epochs\n\n" + markdown_table(rows))
    (args.out / "summary.md").write_text(text + "\n")
    print(text)
    return 0


main = argparse_main("ibkit bench flow-images", __doc__, configure, run)
