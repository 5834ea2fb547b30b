"""The information plane on stochastic layers whose MI is known: the test the plane itself must pass.

Runs ``ibkit.synthetic.layers.plane_battery`` (a 10-class Gaussian-mixture probe in 4 dimensions;
layers ``f(B·X + σ·Z)`` with ``f`` linear, leaky ReLU, tanh, sigmoid or softmax, narrow and wide,
exact I(X;L) from ≈ 0.2 nats to far beyond log N) through
``InformationPlaneAnalysis(x, y, x_compressor=None).analyse_activations(...)``, the path every plane point
takes (unit transform, compression, estimation, censoring), for several layer transforms and
probe sizes N. Targets (the truthful-planes issue):

* a point whose true I(X;L) is below ``log N − 1.5`` is within ``max(0.2 nats, 3 SE)``;
* beyond that, the value (a lower bound when censored) is never above the truth + 0.5;
* I(Y;L) is within ``max(0.2, 3 SE)`` of its truth, never below −2 SE nor above H(Y) + 2 SE.

Writes ``results.csv`` (one row per point) and ``summary.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ibkit.analysis import InformationPlaneAnalysis
from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.estimators import DEFAULT_METHOD, METHODS, collect_warnings, make_estimator
from ibkit.report import markdown_table, write_csv
from ibkit.synthetic.layers import PlaneCase, plane_battery

#: Label -> the analysis settings compared (the layer transforms of ``ibkit.compression.units``, the code size).
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "default (auto transform, 6 dimensions)": {},
    "normal scores for every layer": {"layer_transform": "normal-scores"},
    "no unit transform": {"layer_transform": "none"},
    "4 dimensions per layer (the paper's)": {"layer_dims": 4},
    "16 dimensions per layer (for flows)": {"layer_dims": 16},
}
#: Below ``log N − RESOLVED_MARGIN`` a point must be accurate, beyond it a sound lower bound.
RESOLVED_MARGIN = 1.5
#: Accuracy target: within max(ABSOLUTE_TOLERANCE, STDERR_TOLERANCE · SE) of the truth.
ABSOLUTE_TOLERANCE = 0.2
STDERR_TOLERANCE = 3.0
#: A lower bound may exceed the truth by at most this much (nats).
BOUND_SLACK = 0.5


def accurate(estimate: float, stderr: float, truth: float) -> bool:
    """Within ``max(ABSOLUTE_TOLERANCE, STDERR_TOLERANCE·SE)`` of the truth (a gap never is)."""
    return math.isfinite(estimate) and abs(estimate - truth) <= max(ABSOLUTE_TOLERANCE, STDERR_TOLERANCE * stderr)


def run_plane_battery(cases: Sequence[PlaneCase], configs: Mapping[str, Mapping[str, Any]], sizes: Sequence[int],
                      seeds: Sequence[int], estimator: str = DEFAULT_METHOD) -> list[dict]:
    """One row per configuration, case, probe size and seed: both plane coordinates against the truth."""
    rows = []
    with tqdm(total=len(cases) * len(configs) * len(sizes) * len(seeds), desc="plane battery", unit="point") as bar:
        for case in cases:
            truth = case.truth
            for n in sizes:
                resolved = math.log(n) - RESOLVED_MARGIN
                for seed in seeds:
                    x, y, layer = case.sample(n, seed)
                    for label, settings in configs.items():
                        analysis = InformationPlaneAnalysis(x, y, x_compressor=None,
                                                            estimator=make_estimator(estimator), **settings)
                        started = time.perf_counter()
                        with collect_warnings():  # the table scores the values, not the warnings
                            point = analysis.analyse_activations({case.name: layer}, epoch=0).points[0]
                        if truth.i_xl < resolved:
                            xl_ok = accurate(point.I_XL, point.I_XL_stderr, truth.i_xl)
                        else:
                            xl_ok = math.isfinite(point.I_XL) and point.I_XL <= truth.i_xl + BOUND_SLACK
                        rows.append({
                            "config": label, "case": case.name, "activation": case.activation, "width": case.width,
                            "noise": case.noise, "n": n, "seed": seed, "resolved": truth.i_xl < resolved,
                            "true_I_XL": truth.i_xl, "I_XL": point.I_XL, "I_XL_stderr": point.I_XL_stderr,
                            "I_XL_censored": point.I_XL_censored, "I_XL_method": point.I_XL_method, "I_XL_ok": xl_ok,
                            "true_I_YL": truth.i_yl, "I_YL": point.I_YL, "I_YL_stderr": point.I_YL_stderr,
                            "I_YL_ok": accurate(point.I_YL, point.I_YL_stderr, truth.i_yl),
                            "label_entropy": label_entropy(y),
                            "seconds": round(time.perf_counter() - started, 3),
                        })
                        bar.update()
    return rows


def summarise(rows: Sequence[dict]) -> list[dict]:
    """Per configuration and N: how many points meet each target, and the worst errors."""
    out = []
    keys = dict.fromkeys((row["config"], row["n"]) for row in rows)
    for label, n in keys:
        mine = [row for row in rows if row["config"] == label and row["n"] == n]
        resolved = [row for row in mine if row["resolved"]]
        beyond = [row for row in mine if not row["resolved"]]
        xl_errors = [abs(row["I_XL"] - row["true_I_XL"]) for row in resolved]
        yl_errors = [abs(row["I_YL"] - row["true_I_YL"]) for row in mine]
        out.append({
            "configuration": label, "N": n,
            "I(X;L) resolved: within target": f"{sum(row['I_XL_ok'] for row in resolved)}/{len(resolved)}",
            "I(X;L) resolved: max error": _nanmax(xl_errors),
            "beyond: bound ≤ truth + 0.5": f"{sum(row['I_XL_ok'] for row in beyond)}/{len(beyond)}",
            "censored": sum(bool(row["I_XL_censored"]) for row in mine),
            "I(Y;L): within target": f"{sum(row['I_YL_ok'] for row in mine)}/{len(mine)}",
            "I(Y;L): max error": _nanmax(yl_errors),
            "I(Y;L) < −2 SE": sum(row["I_YL"] < -2 * row["I_YL_stderr"] for row in mine),
            "I(Y;L) > H(Y) + 2 SE": sum(row["I_YL"] > row["label_entropy"] + 2 * row["I_YL_stderr"] for row in mine),
            "gaps": sum(not (math.isfinite(row["I_XL"]) and math.isfinite(row["I_YL"])) for row in mine),
            "s/point": float(np.mean([row["seconds"] for row in mine])),
        })
    return out


def label_entropy(labels: Any) -> float:
    """Plug-in entropy of integer labels, nats."""
    frequencies = np.bincount(np.asarray(labels)) / len(labels)
    frequencies = frequencies[frequencies > 0]
    return float(-(frequencies * np.log(frequencies)).sum())


def _nanmax(values: Sequence[float]) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return max(finite) if finite else math.nan


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 10000], help="probe sizes N")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one probe draw per seed")
    parser.add_argument("--battery", choices=("full", "quick"), default="full", help="the full battery or a subset")
    parser.add_argument("--configs", nargs="+", choices=tuple(CONFIGURATIONS), default=list(CONFIGURATIONS),
                        help="layer transforms to compare")
    parser.add_argument("--estimator", choices=METHODS, default=DEFAULT_METHOD, help="the MI method")
    parser.add_argument("--out", type=Path, default=RESULTS / "plane", help="output directory")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    rows = run_plane_battery(plane_battery(args.battery), {label: CONFIGURATIONS[label] for label in args.configs},
                             args.sizes, args.seeds, args.estimator)
    summary = summarise(rows)
    write_csv(args.out / "results.csv", rows)
    table = markdown_table(summary, formats={"I(X;L) resolved: max error": ".2f", "I(Y;L): max error": ".2f",
                                             "s/point": ".2f"})
    heading = (f"Known-truth plane battery ({args.battery}), estimator {args.estimator}, N = "
               f"{', '.join(map(str, args.sizes))}, seeds {', '.join(map(str, args.seeds))}; "
               f"{(time.perf_counter() - started) / 60:.1f} min")
    (args.out / "summary.md").write_text(f"{heading}\n\n{table}\n")
    print(f"{heading}\n\n{table}\n\nwritten to {args.out}")
    return 0


main = argparse_main("ibkit bench plane", __doc__, configure, run)
