"""Significant phases: are the plane's rise and fall marks right, on layers whose MI path is known?

Every analysed epoch after a layer's first gets the paired standard error of the change of
I(X;L) and of I(Y;L) since the previous one (the same probe, the same blocks) and a mark, ``up``
or ``down``, beyond ``ibkit.bounds.TREND_STDERRS`` of it. Two measurements, on stochastic layers
of the known-truth plane battery (``ibkit.synthetic.layers``: a fixed 10-class probe, a fresh
draw of the layer's noise every epoch, as a noisy network's capture has):

* **flat**: the battery's quick layers at a fixed noise for ``--epochs`` epochs: how many of the
  epoch pairs are marked although the truth does not move (the target is at most 1 %), and the
  seed-to-seed spread of the changes against their mean paired standard error;
* **path**: a layer whose noise, hence both MIs, follows rising, flat, falling, flat: which
  changes are marked, against the direction of the truth.

Writes ``flat.csv``, ``path.csv`` and ``summary.md``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from ibkit.analysis import InformationPlaneAnalysis
from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.bounds import TREND_STDERRS
from ibkit.estimators import collect_warnings
from ibkit.history import QUANTITIES
from ibkit.report import markdown_table, write_csv
from ibkit.synthetic.layers import labelled_mixture, plane_battery, plane_case

#: The relative noise of the path layer per epoch: rising MI, flat, falling, flat.
PATH_NOISE = (1.5, 0.8, 0.4, 0.4, 0.4, 0.8, 1.5, 1.5, 1.5)
#: A change of the truth smaller than this (nats) counts as flat on the path.
FLAT = 1e-9


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=5_000, help="probe size N")
    parser.add_argument("--epochs", type=int, default=41, help="epochs of the flat measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "phases", help="output folder")


def flat(n: int, epochs: int, seed: int) -> list[dict]:
    """One row per layer, quantity and epoch pair of layers whose truth does not move."""
    cases = [case for case in plane_battery("quick") if case.truth.i_xl < math.log(n) - 1.5]
    x, y, _ = cases[0].sample(n, seed)
    analysis = InformationPlaneAnalysis(x, y, x_compressor=None, chain=False)
    rows, previous = [], None
    with collect_warnings():
        for epoch in range(epochs):
            layers = {case.name: case.layer(x, seed=1_000 * epoch + index) for index, case in enumerate(cases)}
            points = {point.layer: point for point in analysis.analyse_activations(layers, epoch).points}
            for name, point in points.items() if previous is not None else ():
                rows += [{"layer": name, "quantity": quantity, "epoch": epoch,
                          "change": getattr(point, quantity) - getattr(previous[name], quantity),
                          "change_stderr": getattr(point, f"{quantity}_change_stderr"),
                          "trend": getattr(point, f"{quantity}_trend")} for quantity in QUANTITIES]
            previous = points
    return rows


def path(n: int, seed: int) -> list[dict]:
    """One row per quantity and epoch pair of a layer whose noise follows :data:`PATH_NOISE`."""
    mixture = labelled_mixture()
    cases = [plane_case("tanh", 4, noise, mixture) for noise in PATH_NOISE]
    x, y = mixture.sample(n, seed)
    analysis = InformationPlaneAnalysis(x, y, x_compressor=None)
    rows = []
    with collect_warnings():
        for epoch, case in enumerate(cases):
            point = analysis.analyse_activations({"tanh-4": case.layer(x, seed=1_000 + epoch)}, epoch).points[0]
            if epoch:
                for quantity in QUANTITIES:
                    truth = getattr(case.truth, quantity.lower()) - getattr(cases[epoch - 1].truth, quantity.lower())
                    expected = "" if abs(truth) < FLAT else "up" if truth > 0 else "down"
                    rows.append({"epoch": epoch, "quantity": quantity, "relative noise": case.noise / 2.0,
                                 "true change": truth, "change_stderr": getattr(point, f"{quantity}_change_stderr"),
                                 "trend": getattr(point, f"{quantity}_trend"), "expected": expected})
    return rows


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    flat_rows, path_rows = flat(args.n, args.epochs, args.seed), path(args.n, args.seed)
    minutes = (time.perf_counter() - started) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "flat.csv", flat_rows)
    write_csv(args.out / "path.csv", path_rows)
    summary = []
    for quantity in QUANTITIES:
        mine = [row for row in flat_rows if row["quantity"] == quantity]
        changes = np.array([row["change"] for row in mine])
        summary.append({"quantity": QUANTITIES[quantity], "flat epoch pairs": len(mine),
                        "marked": sum(bool(row["trend"]) for row in mine),
                        "marked share": np.mean([bool(row["trend"]) for row in mine]),
                        "std of changes / mean paired SE": float(changes.std() / np.mean([row["change_stderr"]
                                                                                         for row in mine]))})
    right = sum(row["trend"] == row["expected"] for row in path_rows)
    report = "\n".join([
        f"## Significant phases: N = {args.n}, threshold {TREND_STDERRS:g} paired SE, {minutes:.1f} min", "",
        "Flat truth (the quick battery's layers below log N − 1.5, a fresh noise draw every epoch):", "",
        markdown_table(summary, formats={"marked share": ".3f", "std of changes / mean paired SE": ".2f"}), "",
        f"Known path (tanh, 4 units, relative noise {', '.join(f'{noise:g}' for noise in PATH_NOISE)}): "
        f"{right} of {len(path_rows)} epoch pairs marked as the truth moves (a flat pair unmarked):", "",
        markdown_table(path_rows, formats={"true change": "+.3f", "change_stderr": ".3f", "relative noise": ".2f"})])
    (args.out / "summary.md").write_text(report + "\n")
    print(report)
    return 0


main = argparse_main("ibkit bench phases", __doc__, configure, run)
