"""Speed of ibkit's kNN MI estimators against a straightforward BallTree reference.

The reference implements the same formulas the way the ICLR-2024 authors' code does: whiten
with NumPy, one ``sklearn.neighbors.BallTree`` per space, ``query`` for neighbour distances and
``query_radius(count_only=True)`` for KSG's counts, single process. Both implementations run on
the same correlated-Gaussian data (true MI 2 nats, split evenly over the two sides) with the
same settings (whitening, fixed k, no Gaussian correction, no fallback); the script checks that
they agree (|Δ| < 1e-6 nats) and prints a markdown table of wall times (one timed run each,
ibkit's after one untimed warm-up call) and speed-ups. A second ibkit column times the same call
with normal scores instead of whitening (the default preprocessing: a rank transform of every
coordinate, O(N log N)), so its cost is visible.

    ibkit bench speed                      # N in {5k, 10k, 60k}, joint d in {4, 8}
    ibkit bench speed --sizes 5000 --out benchmarks/results/speed.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import digamma
from sklearn.neighbors import BallTree

from ibkit.benchmarks.command import argparse_main
from ibkit.estimators import MutualInformationEstimator, make_estimator, wkl_weights
from ibkit.estimators.knn import log_unit_ball_volume
from ibkit.report import markdown_table
from ibkit.synthetic.gaussian import correlated_gaussians


def reference_whiten(x: np.ndarray) -> tuple[np.ndarray, float]:
    centred = x - x.mean(0)
    values, vectors = np.linalg.eigh(np.cov(centred, rowvar=False).reshape(x.shape[1], x.shape[1]))
    return centred @ (vectors / np.sqrt(values)) @ vectors.T, 0.5 * float(np.log(values).sum())


def reference_entropy_terms(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    x, log_scale = reference_whiten(x)
    n, d = x.shape
    k = len(weights)
    distances = BallTree(x).query(x, k=k + 1)[0][:, 1:]
    orders = np.arange(1, k + 1)
    terms = digamma(n) - digamma(orders) + log_unit_ball_volume(d) + d * np.log(distances)
    return log_scale + terms @ weights


def reference_entropy_mi(x: np.ndarray, y: np.ndarray, method: str, k: int) -> float:
    def weights(d: int) -> np.ndarray:
        return wkl_weights(k, d) if method == "wkl" else np.eye(k)[-1]

    xy = np.hstack([x, y])
    terms = (
        reference_entropy_terms(x, weights(x.shape[1]))
        + reference_entropy_terms(y, weights(y.shape[1]))
        - reference_entropy_terms(xy, weights(xy.shape[1]))
    )
    return float(terms.mean())


def reference_ksg(x: np.ndarray, y: np.ndarray, k: int) -> float:
    x, y = reference_whiten(x)[0], reference_whiten(y)[0]
    n = len(x)
    eps = BallTree(np.hstack([x, y]), metric="chebyshev").query(np.hstack([x, y]), k=k + 1)[0][:, -1]
    below = np.nextafter(eps, 0)
    n_x = BallTree(x, metric="chebyshev").query_radius(x, below, count_only=True) - 1
    n_y = BallTree(y, metric="chebyshev").query_radius(y, below, count_only=True) - 1
    return float(digamma(k) + digamma(n) - np.mean(digamma(n_x + 1) + digamma(n_y + 1)))


def reference(x: np.ndarray, y: np.ndarray, method: str, k: int) -> float:
    return reference_ksg(x, y, k) if method == "ksg" else reference_entropy_mi(x, y, method, k)


def same_settings(method: str, k: int, preprocess: str = "whiten") -> MutualInformationEstimator:
    """ibkit configured like the reference: fixed k, no correction or fallback."""
    extra = {} if method == "ksg" else {"correction": None, "fallback": None}
    return make_estimator(method, k=k, preprocess=preprocess, **extra)


def timed(fn, *args) -> tuple[float, float]:
    """``fn(*args)`` as a float, and the seconds it took."""
    start = time.perf_counter()
    value = fn(*args)
    return float(value), time.perf_counter() - start


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 10_000, 60_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 8], help="joint dimension (split evenly)")
    parser.add_argument("--methods", nargs="+", choices=("kl", "wkl", "ksg"), default=["kl", "wkl", "ksg"])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--mi", type=float, default=2.0, help="true MI of the test data, nats")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")


def run(args: argparse.Namespace) -> int:
    gpu = torch.cuda.is_available()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, GPU: {gpu}", flush=True)
    rows = []
    for n in args.sizes:
        for d in args.dims:
            x, y = correlated_gaussians(n, args.mi, d // 2, d - d // 2, seed=n + d)
            x_np, y_np = x.numpy(), y.numpy()
            for method in args.methods:
                estimator = same_settings(method, args.k)
                ranked = same_settings(method, args.k, preprocess="normal-scores")
                ref_value, ref_time = timed(reference, x_np, y_np, method, args.k)
                estimator.estimate(x, y)  # warm-up (thread pools, caches)
                ours, our_time = timed(estimator.estimate, x, y)
                _, ranked_time = timed(ranked.estimate, x, y)
                diff = abs(ours - ref_value)
                if diff > 1e-6:
                    raise SystemExit(f"values differ: {method} N={n} d={d}: ibkit {ours} vs reference {ref_value}")
                row = {"N": n, "joint d": d, "method": method, "reference (s)": f"{ref_time:.2f}",
                       "ibkit CPU (s)": f"{our_time:.3f}", "speed-up": f"{ref_time / our_time:.1f}×",
                       "abs. difference (nats)": f"{diff:.1e}", "ibkit, normal scores (s)": f"{ranked_time:.3f}",
                       "speed-up, normal scores": f"{ref_time / ranked_time:.1f}×"}
                if gpu:
                    xg, yg = x.cuda(), y.cuda()
                    estimator.estimate(xg, yg)  # warm-up
                    _, gpu_time = timed(estimator.estimate, xg, yg)
                    row.update({"ibkit GPU (s)": f"{gpu_time:.3f}", "GPU speed-up": f"{ref_time / gpu_time:.1f}×"})
                rows.append(row)
                print(row, flush=True)
    table = markdown_table(rows)
    print("\n" + table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    return 0


main = argparse_main("ibkit bench speed", __doc__, configure, run)
