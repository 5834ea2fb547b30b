"""Speed of ibkit's kNN MI estimators against the peers users already have, on the same data.

Every row runs one estimator configuration on one correlated-Gaussian sample (true MI 2 nats,
split evenly over the two sides) with the same k, and checks that ibkit and the peer agree
(|Δ| < 1e-6 nats; exit status 1 otherwise):

- ``ksg`` against NPEET (``npeet_plus.estimators.mi``, scikit-learn KD-trees, one core), both on
  the raw data, and for one dimension per side against scikit-learn's ``mutual_info_regression``
  (the same KSG algorithm; it rescales both sides, so ibkit standardises too);
- ``kl`` and ``wkl`` against a straightforward reference of the same formulas (whitening, one
  ``sklearn.neighbors.BallTree`` per space, one core), since no peer computes the weighted or
  Euclidean-ball estimators.

ibkit runs with ``stderr_method="terms"`` (the work the peers do: a value) after one untimed
warm-up call; a second ibkit column adds the default block standard error, and with a GPU a
third runs on it. Peers are optional extras (``pip install -e ".[bench]"``); a missing one is
reported as such, never faked. Wall times are one run each.

    ibkit bench speed                      # N in {5k, 10k, 60k}, joint d in {2, 4, 8}
    ibkit bench speed --sizes 60000 --dims 8 --methods ksg --out benchmarks/results/speed.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.special import digamma
from sklearn.neighbors import BallTree

from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.estimators import MutualInformationEstimator, make_estimator, wkl_weights
from ibkit.estimators.reference import log_unit_ball_volume
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


def same_settings(method: str, k: int, preprocess: str) -> MutualInformationEstimator:
    """ibkit configured like the peer: fixed k, no correction or fallback, the per-term standard error."""
    extra = {} if method == "ksg" else {"correction": None, "fallback": None}
    return make_estimator(method, k=k, preprocess=preprocess, stderr_method="terms", **extra)


def peers(method: str, dim_x: int, dim_y: int) -> list[tuple[str, str, Callable[[np.ndarray, np.ndarray, int], float]]]:
    """``(name, ibkit preprocess, value(x, y, k))`` of every peer that computes ``method`` on these dimensions."""
    if method != "ksg":
        return [("BallTree reference, same formulas", "whiten", lambda x, y, k: reference_entropy_mi(x, y, method, k))]
    found = []
    try:
        from npeet_plus.estimators import mi as npeet_mi
        found.append(("NPEET (npeet-plus)", "none", lambda x, y, k: npeet_mi(x, y, k=k, base=math.e)))
    except ImportError:
        print("NPEET is not installed (pip install -e '.[bench]'): its rows are left out", flush=True)
    if dim_x == dim_y == 1:
        from sklearn.feature_selection import mutual_info_regression
        found.append(("scikit-learn mutual_info_regression", "standardize",
                      lambda x, y, k: mutual_info_regression(x, y[:, 0], n_neighbors=k, random_state=0)[0]))
    return found


def timed(fn, *args) -> tuple[float, float]:
    """``fn(*args)`` as a float, and the seconds it took."""
    start = time.perf_counter()
    value = fn(*args)
    return float(value), time.perf_counter() - start


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 10_000, 60_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 4, 8], help="joint dimension (split evenly)")
    parser.add_argument("--methods", nargs="+", choices=("kl", "wkl", "ksg"), default=["ksg", "kl", "wkl"])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--mi", type=float, default=2.0, help="true MI of the test data, nats")
    parser.add_argument("--out", type=Path, default=RESULTS / "speed.md", help="where to write the table (markdown)")


def run(args: argparse.Namespace) -> int:
    gpu = torch.cuda.is_available()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, GPU: {gpu}", flush=True)
    rows, agree = [], True
    for n in args.sizes:
        for d in args.dims:
            x, y = correlated_gaussians(n, args.mi, d // 2, d - d // 2, seed=n + d)
            x_np, y_np = x.numpy(), y.numpy()
            for method in args.methods:
                for peer, preprocess, value_of in peers(method, x.shape[1], y.shape[1]):
                    estimator = same_settings(method, args.k, preprocess)
                    peer_value, peer_time = timed(value_of, x_np, y_np, args.k)
                    estimator.estimate(x, y)  # warm-up (thread pools, caches)
                    ours, our_time = timed(estimator.estimate, x, y)
                    _, blocks_time = timed(estimator.set_params(stderr_method="blocks").estimate, x, y)
                    difference = abs(ours - peer_value)
                    agree &= difference < 1e-6
                    row = {"N": n, "joint d": d, "method": method, "peer": peer, "peer (s)": peer_time,
                           "ibkit CPU (s)": our_time, "speed-up": f"{peer_time / our_time:.1f}×",
                           "abs. difference (nats)": f"{difference:.1e}", "ibkit with block SE (s)": blocks_time}
                    if gpu:
                        on_gpu = estimator.set_params(stderr_method="terms")
                        xg, yg = x.cuda(), y.cuda()
                        on_gpu.estimate(xg, yg)  # warm-up
                        _, gpu_time = timed(on_gpu.estimate, xg, yg)
                        row.update({"ibkit GPU (s)": gpu_time, "GPU speed-up": f"{peer_time / gpu_time:.1f}×"})
                    rows.append(row)
                    print(row, flush=True)
    seconds = {key: ".3f" for key in ("peer (s)", "ibkit CPU (s)", "ibkit with block SE (s)", "ibkit GPU (s)")}
    table = markdown_table(rows, formats=seconds)
    print("\n" + table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    if not agree:
        print("error: ibkit and a peer disagree by 1e-6 nats or more", file=sys.stderr)
    return 0 if agree else 1


main = argparse_main("ibkit bench speed", __doc__, configure, run)
