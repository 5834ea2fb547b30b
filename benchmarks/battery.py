"""Every estimator and preprocessing on the known-MI battery, scored against the truth.

Runs ``ibkit.synthetic.battery`` with N samples per task: 126 distributions with a closed-form MI
(sparse and dense correlated Gaussians at 1–25 dimensions per side and 0–5 nats, Student-t, five
monotone maps, spirals, curves and a saturated softmax layer), then the 19 Gaussian mixtures of
the mixture family (``mixture-ring``, ``mixture-curve``, ``mixture-inliers``; Monte-Carlo truth).
``--families`` selects a subset (``--families mixture`` the mixture family alone); a task's
sample does not depend on which others run. Configurations:

* the default call ``ibkit.mutual_information(x, y)``, three ablations of it (no fallback for
  degenerate data, no Gaussian correction, a fixed k = 5) and KSG with k = 5;
* every method × preprocessing (``none``, ``standardize``, ``whiten``, ``normal-scores``,
  ``smooth-scores``), each without the fallback so that the row shows that estimator alone
  (``--methods`` with no name: no grid).

Scores per configuration on the closed-form tasks: the share within a factor 1.5 of the truth
(for a true MI of 0: within ±0.1 nats), the mean absolute error, the largest error on the
monotone maps at 1–4 dimensions per side and ≤ 2 nats (and how many are within 0.15 nats), the
number of estimates negative beyond 2 standard errors, and the number that raised an error
(counted as misses). The mixture family is scored apart, so that the closed-form numbers stay
comparable with earlier runs: tasks within ×1.5 in all and per family, the same error counts,
and per task the truth and the estimates of the default call and of KSG with k = 5.

Writes ``results.csv``, ``summary.md`` (both groups), ``families.md`` (mean absolute error per
family) and ``estimates.png`` (estimate against truth for the default call) into ``--out``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ibkit.benchmarks.command import RESULTS, argparse_main
from ibkit.benchmarks.timed import timed_estimate
from ibkit.estimators import DEFAULT_METHOD, METHODS, PREPROCESSING, MutualInformationEstimator, make_estimator
from ibkit.report import markdown_table, write_csv
from ibkit.synthetic.battery import MONOTONE_MAPS, Task, battery

#: The methods of the default grid: every estimator that does not train a network.
NON_PARAMETRIC = ("kl", "wkl", "ksg", "kde-ml", "kde-lse")
#: A true MI of 0 counts as met within this many nats (a factor of 0 has no width).
ZERO_TOLERANCE = 0.1
#: The monotone-map target: dimensions per side, largest MI and tolerance (nats).
MAP_TARGET = (4, 2.0, 0.15)
DEFAULT_LABEL = "default call"
KSG5_LABEL = "ksg, k=5"
#: Families of the mixture family start with this (``mixture-ring``, ...).
MIXTURE = "mixture"


def configurations(methods: Sequence[str], preprocessings: Sequence[str]) -> dict[str, MutualInformationEstimator]:
    """Label -> estimator: the default call, its ablations and the method × preprocessing grid."""
    configs = {
        DEFAULT_LABEL: make_estimator(DEFAULT_METHOD),
        f"{DEFAULT_METHOD}, no fallback": make_estimator(DEFAULT_METHOD, fallback=None),
        f"{DEFAULT_METHOD}, no fallback, no correction": make_estimator(DEFAULT_METHOD, fallback=None, correction=None),
        f"{DEFAULT_METHOD}, no fallback, k=5": make_estimator(DEFAULT_METHOD, fallback=None, k=5),
        KSG5_LABEL: make_estimator("ksg", k=5),
    }
    for method in methods:
        for preprocess in preprocessings:
            params = {"preprocess": preprocess}
            if method != "ksg":
                params["fallback"] = None
            configs[f"{method} / {preprocess}"] = make_estimator(method, **params)
    return configs


def within_factor(estimate: float, truth: float, factor: float = 1.5) -> bool:
    """``truth/factor ≤ estimate ≤ factor·truth``; for ``truth = 0``, ``|estimate| ≤ ZERO_TOLERANCE``."""
    if not math.isfinite(estimate):
        return False
    if truth == 0.0:
        return abs(estimate) <= ZERO_TOLERANCE
    return truth / factor <= estimate <= factor * truth


def is_map_target(task: Task) -> bool:
    dims, mi_max, _ = MAP_TARGET
    return task.family in MONOTONE_MAPS and task.dim_x <= dims and task.mi <= mi_max


def in_family(family: str, names: Sequence[str]) -> bool:
    """Whether ``family`` is one of ``names`` or belongs to one (``mixture`` holds ``mixture-ring``)."""
    return any(family == name or family.startswith(name + "-") for name in names)


def select(tasks: Sequence[Task], families: Sequence[str] | None) -> dict[int, Task]:
    """Position in the battery -> task, for the tasks of ``families`` (all of them for ``None``)."""
    chosen = {index: task for index, task in enumerate(tasks) if families is None or in_family(task.family, families)}
    if not chosen:
        known = ", ".join(dict.fromkeys(task.family for task in tasks))
        raise ValueError(f"no task of the families {list(families)}; the battery has {known}")
    return chosen


def run_battery(configs: dict[str, MutualInformationEstimator], tasks: Mapping[int, Task], n: int,
                seed: int) -> list[dict]:
    """One row per configuration and task: the estimate, its standard error, seconds, error text.

    ``tasks`` maps a task's position in the battery to it; the sample of task ``i`` is drawn with
    seed ``seed + i``, so that a subset of the battery sees the samples of the whole.
    """
    rows = []
    samples = {}
    with tqdm(total=len(configs) * len(tasks), desc="battery", unit="estimate") as bar:
        for label, estimator in configs.items():
            for index, task in tasks.items():
                if index not in samples:
                    samples[index] = task.sample(n, seed + index)
                x, y = samples[index]
                result = timed_estimate(lambda: estimator.mutual_information(x, y))  # noqa: B023 (called at once)
                rows.append({"config": label, "task": task.name, "family": task.family, "dim_x": task.dim_x,
                             "dim_y": task.dim_y, "true_mi": task.mi, "true_mi_stderr": task.mi_stderr,
                             "estimate": result.value, "stderr": result.stderr, "seconds": round(result.seconds, 4),
                             "error": result.error})
                bar.update()
    return rows


def summarise(rows: Sequence[dict], tasks: Sequence[Task]) -> list[dict]:
    """Per configuration: the scores listed in the module docstring."""
    map_tasks = {task.name for task in tasks if is_map_target(task)}
    tolerance = MAP_TARGET[2]
    out = []
    for label in dict.fromkeys(row["config"] for row in rows):
        mine = [row for row in rows if row["config"] == label]
        errors = np.array([abs(row["estimate"] - row["true_mi"]) for row in mine])
        maps = np.array([abs(row["estimate"] - row["true_mi"]) for row in mine if row["task"] in map_tasks])
        out.append({
            "configuration": label,
            "within ×1.5": np.mean([within_factor(row["estimate"], row["true_mi"]) for row in mine]),
            "mean abs. error": float(np.nanmean(errors)),
            "maps: max error": float(np.max(maps)) if len(maps) else math.nan,
            f"maps within {tolerance:g}": f"{int(np.sum(maps <= tolerance))}/{len(maps)}",
            "negative < −2 SE": sum(row["estimate"] < -2.0 * row["stderr"] for row in mine),
            "errors": sum(bool(row["error"]) for row in mine),
            "seconds": sum(row["seconds"] for row in mine),
        })
    return out


def mixture_summary(rows: Sequence[dict]) -> list[dict]:
    """Per configuration on the mixture family: tasks within ×1.5 in all and per family (counts),
    the mean absolute error, estimates negative beyond 2 SE, errors and seconds."""
    families = list(dict.fromkeys(row["family"] for row in rows))
    out = []
    for label in dict.fromkeys(row["config"] for row in rows):
        mine = [row for row in rows if row["config"] == label]
        entry = {"configuration": label}
        for name, subset in [("within ×1.5", mine)] + [(family, [row for row in mine if row["family"] == family])
                                                        for family in families]:
            hits = sum(within_factor(row["estimate"], row["true_mi"]) for row in subset)
            entry[name] = f"{hits}/{len(subset)}"
        entry.update({
            "mean abs. error": float(np.nanmean([abs(row["estimate"] - row["true_mi"]) for row in mine])),
            "negative < −2 SE": sum(row["estimate"] < -2.0 * row["stderr"] for row in mine),
            "errors": sum(bool(row["error"]) for row in mine),
            "seconds": sum(row["seconds"] for row in mine),
        })
        out.append(entry)
    return out


def per_task_table(rows: Sequence[dict], labels: Sequence[str] = (DEFAULT_LABEL, KSG5_LABEL)) -> list[dict]:
    """One row per task: the truth ± its Monte-Carlo error and, for each configuration of ``labels``
    that ran, the estimate ± its standard error, marked ✓ within a factor 1.5 and ✗ outside."""
    labels = [label for label in labels if any(row["config"] == label for row in rows)]
    out = []
    for task in dict.fromkeys(row["task"] for row in rows):
        mine = {row["config"]: row for row in rows if row["task"] == task}
        first = next(iter(mine.values()))
        entry = {"task": task.rsplit(" MI=", 1)[0], "true MI": f"{first['true_mi']:.3f} ± {first['true_mi_stderr']:.3f}"}
        for label in labels:
            row = mine[label]
            mark = "✓" if within_factor(row["estimate"], row["true_mi"]) else "✗"
            entry[label] = f"{row['estimate']:.3f} ± {row['stderr']:.3f} {mark}"
        out.append(entry)
    return out


def family_table(rows: Sequence[dict]) -> list[dict]:
    """Mean absolute error (nats) per configuration (rows) and task family (columns)."""
    families = list(dict.fromkeys(row["family"] for row in rows))
    out = []
    for label in dict.fromkeys(row["config"] for row in rows):
        entry = {"configuration": label}
        for family in families:
            errors = [abs(row["estimate"] - row["true_mi"]) for row in rows
                      if row["config"] == label and row["family"] == family]
            entry[family] = float(np.nanmean(errors)) if np.isfinite(errors).any() else math.nan
        out.append(entry)
    return out


def plot(rows: Sequence[dict], path: Path, n: int, label: str = DEFAULT_LABEL) -> None:
    """Estimate against true MI for one configuration, one colour per family, ±2 SE bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = [row for row in rows if row["config"] == label]
    families = list(dict.fromkeys(row["family"] for row in mine))
    fig, axis = plt.subplots(figsize=(6.5, 5.5))
    top = max(row["true_mi"] for row in mine)
    axis.plot([0, top], [0, top], color="black", linewidth=1, label="truth")
    axis.fill_between([0, top], [0, top / 1.5], [0, top * 1.5], color="grey", alpha=0.15, label="factor 1.5")
    colours = plt.get_cmap("tab20").colors
    for index, family in enumerate(families):
        subset = [row for row in mine if row["family"] == family and math.isfinite(row["estimate"])]
        jitter = np.random.default_rng(0).uniform(-0.06, 0.06, len(subset))
        axis.errorbar([row["true_mi"] + j for row, j in zip(subset, jitter)], [row["estimate"] for row in subset],
                      yerr=[2 * row["stderr"] for row in subset], fmt="osD^v<>"[index % 7], markersize=3.5,
                      linewidth=0.8, color=colours[(2 * index) % 20 + (index >= 10)], label=family)
    axis.set_xlabel("true MI (nats)")
    axis.set_ylabel("estimated MI (nats)")
    axis.set_title(f"Known-MI battery, {label}, N = {n}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=5_000, help="samples per task (default 5000)")
    parser.add_argument("--size", choices=("full", "quick"), default="full",
                        help="the full battery (145 tasks) or the quick subset of the tests (10)")
    parser.add_argument("--families", nargs="+", default=None,
                        help="only these task families; a prefix before '-' selects a group (mixture: the mixture "
                             "family, gaussian: both Gaussian families). Default: all")
    parser.add_argument("--methods", nargs="*", choices=METHODS, default=list(NON_PARAMETRIC),
                        help="methods of the method × preprocessing grid (default: the non-parametric ones; the "
                             "trained estimators have their own benchmarks; none: the default call, its ablations "
                             "and KSG with k=5 only)")
    parser.add_argument("--preprocess", nargs="+", choices=PREPROCESSING, default=list(PREPROCESSING),
                        help="preprocessings of the grid (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "battery")


def report(rows: Sequence[dict], tasks: Sequence[Task]) -> str:
    """``summary.md``: the closed-form tasks' scores, then the mixture family's, each where it ran."""
    closed = [row for row in rows if not in_family(row["family"], [MIXTURE])]
    mixtures = [row for row in rows if in_family(row["family"], [MIXTURE])]
    sections = []
    if closed:
        n_tasks = len(dict.fromkeys(row["task"] for row in closed))
        sections.append(f"## Closed-form tasks ({n_tasks})\n\n" + markdown_table(summarise(closed, tasks), formats={
            "within ×1.5": ".2f", "mean abs. error": ".3f", "maps: max error": ".3f", "seconds": ".0f"}))
    if mixtures:
        n_tasks = len(dict.fromkeys(row["task"] for row in mixtures))
        sections.append(f"## Mixture family ({n_tasks} tasks, Monte-Carlo truth)\n\n"
                        + markdown_table(mixture_summary(mixtures), formats={"mean abs. error": ".3f", "seconds": ".0f"}))
        sections.append("### Mixture tasks (✓: within a factor 1.5)\n\n" + markdown_table(per_task_table(mixtures)))
    return "\n\n".join(sections) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.n < 20:
        raise ValueError(f"--n must be at least 20, got {args.n}")
    tasks = select(battery(args.size), args.families)
    configs = configurations(args.methods, args.preprocess)
    print(f"ibkit bench battery: {len(tasks)} tasks × {len(configs)} configurations, N={args.n}, seed={args.seed}")
    rows = run_battery(configs, tasks, args.n, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "results.csv", rows)
    summary = report(rows, list(tasks.values()))
    families = markdown_table(family_table(rows), formats={
        key: ".3f" for key in dict.fromkeys(row["family"] for row in rows)})
    (args.out / "summary.md").write_text(summary)
    (args.out / "families.md").write_text(families + "\n")
    plot(rows, args.out / "estimates.png", args.n)
    print(summary, "\nMean absolute error per family (nats):\n\n" + families, sep="")
    print(f"\nwrote {args.out}/results.csv, summary.md, families.md and estimates.png")
    return 0


main = argparse_main("ibkit bench battery", __doc__, configure, run)
