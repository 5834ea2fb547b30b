"""The default call on the public "Beyond Normal" MI benchmark (Czyż et al., NeurIPS 2023).

The benchmark's 40 tasks (``bmi.benchmark.task_list.BENCHMARK_TASKS_LIST`` of PyPI's
``benchmark-mi``, imported as ``bmi``: multivariate normal and Student-t distributions at 1–50
dimensions per side and 0.18–1.71 nats, some through normal-CDF, half-cube, spiral, asinh or
wiggly maps, plus uniform with additive noise, bimodal and Swiss roll), each sampled by ``bmi``
at every N of ``--sizes`` with every seed of ``--seeds``. The default call
(``make_estimator("wkl")``) estimates each sample; a task scores when the mean over seeds is
within a factor 1.5 of the true MI.

``bmi`` needs JAX, which need not live beside torch: ``--python`` names an interpreter that can
import ``bmi``, which draws the samples (``public_sampling.py``, numpy and ``bmi`` only) into a
temporary ``.npz``; without it, this interpreter must import ``bmi``. Such an environment:

    python3 -m venv bmi-venv
    bmi-venv/bin/pip install benchmark-mi
    bmi-venv/bin/pip install "jax<0.4.34" "jaxlib<0.4.34" "equinox<0.11.8"

(newer JAX has no ``jax.core.pp_eqn_rules``, which equinox 0.11.8 and later use).

Scores per N: the tasks within ×1.5 out of 40, and out of the tasks with at least 100 samples per
joint dimension (``dim_x + dim_y ≤ N/100``). Writes ``results.csv`` (one row per task and N: the
truth, the mean and per-seed estimates in nats, the score, seconds) and ``summary.md`` (the scores
and a per-task table) into ``--out``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ibkit.benchmarks.battery import within_factor
from ibkit.benchmarks.command import RESULTS, argparse_main, usage_errors
from ibkit.benchmarks.timed import timed_estimate
from ibkit.estimators import DEFAULT_METHOD, make_estimator
from ibkit.report import markdown_table, write_csv

#: The sampling script, run by path in the interpreter of ``--python``.
SAMPLER = Path(__file__).with_name("public_sampling.py")
#: A task counts among the well-sampled ones at N with at least this many samples per joint dimension.
SAMPLES_PER_DIMENSION = 100
SCORE = "within ×1.5"
WELL_SAMPLED = f"{SCORE}, ≥ {SAMPLES_PER_DIMENSION} samples per dimension"
INSTALL = ('python3 -m venv bmi-venv && bmi-venv/bin/pip install benchmark-mi && bmi-venv/bin/pip install '
           '"jax<0.4.34" "jaxlib<0.4.34" "equinox<0.11.8"')


def samples(python: str | None, sizes: Sequence[int], seeds: Sequence[int], folder: Path) -> dict[str, np.ndarray]:
    """The arrays of ``public_sampling.draw`` (its docstring gives keys and shapes), drawn by the
    interpreter ``python`` through an ``.npz`` in ``folder``, or in this process for ``None``.
    A ``ValueError`` (reported as a usage error) says how to get an interpreter with ``bmi``."""
    if python is None:
        try:
            import bmi  # noqa: F401
        except (ImportError, AttributeError) as error:  # AttributeError: a JAX too new for bmi's equinox
            raise ValueError(f"this interpreter cannot import bmi ({error}); create an environment with the "
                             f"benchmark ({INSTALL}) and pass its interpreter: --python bmi-venv/bin/python") from None
        from ibkit.benchmarks.public_sampling import draw

        return draw(sizes, seeds)
    path = folder / "samples.npz"
    command = [python, str(SAMPLER), str(path), "--sizes", *map(str, sizes), "--seeds", *map(str, seeds)]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError as error:
        raise ValueError(f"cannot run --python {python}: {error}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ValueError(f"drawing the samples with {python} failed ({last}); an environment that can: {INSTALL}")
    with np.load(path) as stored:
        return dict(stored)


def estimate(arrays: Mapping[str, np.ndarray], sizes: Sequence[int], seeds: Sequence[int]) -> list[dict]:
    """One row per N and task: dimensions, true MI, the mean and per-seed estimates (nats), the
    score of the mean, seconds for all seeds, and the first error text (a failed seed is NaN)."""
    estimator = make_estimator(DEFAULT_METHOD)
    names = [str(name) for name in arrays["name"]]
    rows = []
    with tqdm(total=len(sizes) * len(names) * len(seeds), desc="public benchmark", unit="estimate") as bar:
        for n in sizes:
            for index, name in enumerate(names):
                results = []
                for seed in seeds:
                    x, y = (torch.as_tensor(arrays[f"{side}_{index}_{n}_{seed}"], dtype=torch.float64) for side in "xy")
                    results.append(timed_estimate(partial(estimator.mutual_information, x, y)))
                    bar.update()
                mean, truth = float(np.mean([result.value for result in results])), float(arrays["mi"][index])
                rows.append({"task": name, "N": n, "dim_x": int(arrays["dim_x"][index]),
                             "dim_y": int(arrays["dim_y"][index]), "true_mi": truth, "estimate": mean,
                             **{f"seed {seed}": result.value for seed, result in zip(seeds, results)},
                             SCORE: within_factor(mean, truth),
                             "seconds": round(sum(result.seconds for result in results), 3),
                             "error": next((result.error for result in results if result.error), "")})
    return rows


def scores(rows: Sequence[dict]) -> list[dict]:
    """Per N: tasks within ×1.5 in all and among the well-sampled ones (``"hits/tasks"``), and seconds."""
    out = []
    for n in dict.fromkeys(row["N"] for row in rows):
        mine = [row for row in rows if row["N"] == n]
        dense = [row for row in mine if row["dim_x"] + row["dim_y"] <= n / SAMPLES_PER_DIMENSION]
        out.append({"N": n, SCORE: f"{sum(row[SCORE] for row in mine)}/{len(mine)}",
                    WELL_SAMPLED: f"{sum(row[SCORE] for row in dense)}/{len(dense)}",
                    "seconds": sum(row["seconds"] for row in mine)})
    return out


def per_task_table(rows: Sequence[dict]) -> list[dict]:
    """One row per task: its dimensions, true MI and, per N, the mean estimate marked ✓ within ×1.5, ✗ outside."""
    out = {}
    for row in rows:
        entry = out.setdefault(row["task"], {"task": row["task"], "dim_x": row["dim_x"], "dim_y": row["dim_y"],
                                             "true MI": f"{row['true_mi']:.3f}"})
        entry[f"N={row['N']}"] = f"{row['estimate']:.3f} {'✓' if row[SCORE] else '✗'}"
    return list(out.values())


def report(rows: Sequence[dict], seeds: Sequence[int]) -> str:
    """``summary.md``: the scores per N, then the per-task table."""
    heading = (f"Beyond Normal benchmark (Czyż et al., NeurIPS 2023), default call ({DEFAULT_METHOD}), "
               f"mean estimate over seeds {', '.join(map(str, seeds))}")
    return (f"{heading}\n\n{markdown_table(scores(rows), formats={'seconds': '.0f'})}\n\n"
            f"## Per task (nats; ✓: within a factor 1.5 of the true MI)\n\n{markdown_table(per_task_table(rows))}\n")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python", default=None,
                        help="an interpreter that can import bmi, to draw the samples (default: this one)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="sample sizes N (default 1000 5000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of each task's sample")
    parser.add_argument("--out", type=Path, default=RESULTS / "public", help="output directory")


def run(args: argparse.Namespace) -> int:
    print(f"ibkit bench public: N={args.sizes}, seeds {args.seeds}, samples drawn by {args.python or sys.executable}")
    with usage_errors(), tempfile.TemporaryDirectory() as folder:
        arrays = samples(args.python, args.sizes, args.seeds, Path(folder))
    rows = estimate(arrays, args.sizes, args.seeds)
    write_csv(args.out / "results.csv", rows)
    summary = report(rows, args.seeds)
    (args.out / "summary.md").write_text(summary)
    print(summary, f"\nwrote {args.out}/results.csv and summary.md", sep="")
    return 0


main = argparse_main("ibkit bench public", __doc__, configure, run)
