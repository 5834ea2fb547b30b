"""The flow estimator (MIENF) on vectors of known MI at high MI and through monotone maps.

For every task — correlated Gaussian vectors of ``d`` dimensions per side (MI split over ``d``
rotated pairs), as drawn or through a monotone map of every coordinate (``exp``, ``tanh``,
``cube`` of ``ibkit.synthetic.battery``) — and every vector preprocessing, one ``mienf-tridiag``
estimate at N samples. MI is invariant under the maps, so each row should read the truth; the
spread across maps shows how much a preprocessing leaves to the flows.

Reports the held-out estimate and its error, the closed form of the base, the training epochs and
seconds per estimate. ``--jobs`` estimates run in parallel processes with one thread each.
Writes ``results.csv`` and ``summary.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.report import markdown_table, write_csv

MAPS = ("identity", "exp", "tanh", "cube")
PREPROCESSINGS = ("auto", "smooth-scores", "normal-scores", "standardize")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=10_000, help="samples per estimate")
    parser.add_argument("--mi", type=float, nargs="+", default=[5.0, 10.0], help="true MI values, nats")
    parser.add_argument("--dims", type=int, nargs="+", default=[2], help="dimensions per side")
    parser.add_argument("--maps", nargs="+", choices=MAPS, default=list(MAPS))
    parser.add_argument("--preprocess", nargs="+", choices=PREPROCESSINGS, default=["auto"],
                        help="MIENF's preprocess settings compared ('auto' is the default call)")
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=1, help="estimates run at once, one thread each")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples and of the estimator")
    parser.add_argument("--out", type=Path, default=RESULTS / "mienf" / "vectors")


def one_estimate(task: tuple[str, int, float, str, int, int, int]) -> dict:
    """A row: one MIENF estimate of one task (runs in a worker process)."""
    import torch

    from ibkit.benchmarks.timed import timed_estimate
    from ibkit.estimators import make_estimator
    from ibkit.synthetic import correlated_gaussians
    from ibkit.synthetic.battery import MONOTONE_MAPS

    map_name, dim, mi, preprocess, n, max_epochs, seed = task
    torch.set_num_threads(1)
    x, y = correlated_gaussians(n, mi, dim, seed=seed)
    if map_name != "identity":
        x, y = MONOTONE_MAPS[map_name](x), MONOTONE_MAPS[map_name](y)
    estimator = make_estimator("mienf-tridiag", preprocess=preprocess, max_epochs=max_epochs, seed=seed)
    details = {}

    def estimate():
        result = estimator.mutual_information(x, y)
        details.update(closed_form=result.diagnostics["closed_form_mi"], epochs=result.diagnostics["epochs"])
        return result

    result = timed_estimate(estimate)
    return {"map": map_name, "dim": dim, "true_mi": mi, "preprocess": preprocess, "estimate": result.value,
            "stderr": result.stderr, "error": result.value - mi, "closed_form": details.get("closed_form", np.nan),
            "epochs": details.get("epochs", 0), "seconds": round(result.seconds, 1), "failure": result.error}


def summary(rows: list[dict]) -> str:
    """Markdown: per preprocessing and task, the estimate ± SE, the closed form and the seconds."""
    table = [{"preprocess": r["preprocess"], "dims": f"{r['dim']} + {r['dim']}", "map": r["map"],
              "true MI": f"{r['true_mi']:g}", "estimate ± SE": f"{r['estimate']:.2f} ± {r['stderr']:.2f}",
              "error": f"{r['error']:+.2f}", "closed form": f"{r['closed_form']:.2f}", "epochs": r["epochs"],
              "s/estimate": f"{r['seconds']:.0f}"} for r in rows]
    scores = []
    for preprocess in dict.fromkeys(r["preprocess"] for r in rows):
        for mi in sorted({r["true_mi"] for r in rows}):
            errors = [abs(r["error"]) for r in rows if r["preprocess"] == preprocess and r["true_mi"] == mi]
            scores.append({"preprocess": preprocess, "true MI": f"{mi:g}", "tasks": len(errors),
                           "mean |error|": f"{np.mean(errors):.2f}", "max |error|": f"{np.max(errors):.2f}"})
    return markdown_table(table) + "\n\n" + markdown_table(scores)


def run(args: argparse.Namespace) -> int:
    tasks = [(map_name, dim, mi, preprocess, args.n, args.max_epochs, args.seed)
             for preprocess, dim, mi, map_name in itertools.product(args.preprocess, args.dims, args.mi, args.maps)]
    print(f"ibkit bench flows: {len(tasks)} MIENF estimates at N = {args.n}, {args.jobs} at once")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = []
        for row in pool.map(one_estimate, tasks):
            print(f"{row['preprocess']:>14} {row['dim']}+{row['dim']} {row['map']:>8} MI {row['true_mi']:g}: "
                  f"{row['estimate']:.3f} ± {row['stderr']:.3f} (closed form {row['closed_form']:.2f}, "
                  f"{row['seconds']:.0f} s) {row['failure']}", flush=True)
            rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "results.csv", rows)
    text = summary(rows)
    (args.out / "summary.md").write_text(text + "\n")
    print(text)
    print(f"\nwrote {args.out / 'results.csv'} and {args.out / 'summary.md'}")
    return 0


main = argparse_main("ibkit bench flows", __doc__, configure, run)
