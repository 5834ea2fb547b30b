"""Are the error bars right? Reported standard errors against the seed-to-seed spread.

For each case (a method, correlated Gaussians with ``d`` dimensions per side at a true MI, or
continuous–discrete: the same ``x`` against labels from quantising one ``y`` coordinate into 5
classes), draws ``--seeds`` independent samples of size N, estimates each, and compares the
standard deviation of the estimates over seeds with the mean reported standard error, for the
default block standard errors and for the per-term formula (``stderr_method="terms"``). A ratio
``std / mean SE`` of 1 means calibrated error bars; with S seeds the ratio itself is uncertain by
about ``1/√(2(S−1))`` (±10 % at 50 seeds, ±7 % at 100). Writes ``results.csv`` and ``summary.md``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.estimators import collect_warnings, make_estimator
from ibkit.report import markdown_table, write_csv
from ibkit.synthetic import correlated_gaussians

#: The labels of the continuous–discrete cases: one y coordinate cut into 5 classes at these points.
LABEL_EDGES = (-1.0, -0.3, 0.3, 1.0)


def draw(n: int, dim: int, mi: float, discrete: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample of a case: ``x (n, dim)`` and ``y (n, dim)``, or ``(n,)`` labels if ``discrete``."""
    x, y = correlated_gaussians(n, mi=mi, dim_x=dim, seed=seed)
    if discrete:
        y = torch.bucketize(y[:, 0].contiguous(), torch.tensor(LABEL_EDGES, dtype=y.dtype))
    return x, y


def calibrate(method: str, n: int, dim: int, mi: float, discrete: bool, seeds: Sequence[int]) -> dict:
    """The seed-to-seed spread of one case against its mean block and per-term standard errors."""
    blocks, terms = make_estimator(method), make_estimator(method, stderr_method="terms")
    values, block_se, term_se = [], [], []
    started = time.perf_counter()
    for seed in seeds:
        x, y = draw(n, dim, mi, discrete, 10_000 + seed)
        with collect_warnings():
            estimate = blocks.mutual_information(x, y, discrete_y=discrete)
            term_se.append(terms.mutual_information(x, y, discrete_y=discrete).stderr)
        values.append(estimate.value)
        block_se.append(estimate.stderr)
    spread = float(np.std(values, ddof=1))
    return {"method": method, "case": "continuous–discrete" if discrete else "continuous", "N": n, "d": dim,
            "true MI": math.nan if discrete else mi, "mean": float(np.mean(values)), "seed std": spread,
            "mean SE (blocks)": float(np.mean(block_se)), "std / SE (blocks)": spread / float(np.mean(block_se)),
            "mean SE (terms)": float(np.mean(term_se)), "std / SE (terms)": spread / float(np.mean(term_se)),
            "seeds": len(seeds), "s/estimate": (time.perf_counter() - started) / len(seeds)}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--methods", nargs="+", default=["wkl", "ksg"], help="estimators to calibrate")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 10000], help="sample sizes N")
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 2, 4, 8], help="dimensions per side")
    parser.add_argument("--mis", type=float, nargs="+", default=[0.0, 1.0, 3.0], help="true MI of the continuous cases")
    parser.add_argument("--seeds", type=int, default=50, help="independent samples per case")
    parser.add_argument("--no-discrete", action="store_true", help="skip the continuous–discrete cases")
    parser.add_argument("--out", type=Path, default=RESULTS / "stderr", help="output directory")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    cases = [(method, n, dim, mi, False) for method, n, dim, mi in
             itertools.product(args.methods, args.sizes, args.dims, args.mis)]
    if not args.no_discrete:
        cases += [(method, n, dim, 1.0, True) for method, n, dim in itertools.product(args.methods, args.sizes, args.dims)]
    rows = []
    for case in tqdm(cases, desc="standard errors", unit="case"):
        rows.append(calibrate(*case, seeds=range(args.seeds)))
        write_csv(args.out / "results.csv", rows)
    ratios = np.array([row["std / SE (blocks)"] for row in rows])
    term_ratios = np.array([row["std / SE (terms)"] for row in rows])
    heading = (f"Standard-error calibration, {args.seeds} seeds per case, "
               f"{(time.perf_counter() - started) / 60:.0f} min. std / SE, blocks: median {np.median(ratios):.2f}, "
               f"{np.mean((ratios >= 0.85) & (ratios <= 1.15)):.0%} of cases in [0.85, 1.15]; terms: median "
               f"{np.median(term_ratios):.2f}, {np.mean((term_ratios >= 0.85) & (term_ratios <= 1.15)):.0%} in [0.85, 1.15]")
    table = markdown_table(rows, formats={column: ".3f" for column in ("mean", "seed std", "mean SE (blocks)",
                                                                         "mean SE (terms)")} |
                           {"std / SE (blocks)": ".2f", "std / SE (terms)": ".2f", "s/estimate": ".2f"})
    (args.out / "summary.md").write_text(f"{heading}\n\n{table}\n")
    print(f"{heading}\n\n{table}\n\nwritten to {args.out}")
    return 0


main = argparse_main("ibkit bench stderr", __doc__, configure, run)
