"""Draw the samples of the "Beyond Normal" benchmark (Czyż et al., NeurIPS 2023) into an ``.npz``.

Imports only numpy and ``bmi`` (PyPI ``benchmark-mi``), so that ``ibkit bench public`` can run it
with another interpreter, one that has ``bmi`` and its JAX, by path:

    python public_sampling.py OUT.npz --sizes 1000 5000 --seeds 0 1 2

The file holds, for the 40 tasks of ``bmi.benchmark.task_list.BENCHMARK_TASKS_LIST`` in order,
``name`` (40,) strings, ``dim_x`` and ``dim_y`` (40,) ints, ``mi`` (40,) the true MI in nats,
and per task index ``i``, size ``n`` and seed ``s`` the sample ``x_{i}_{n}_{s}`` (n, dim_x) and
``y_{i}_{n}_{s}`` (n, dim_y), float32 as ``bmi`` draws them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np


def draw(sizes: Sequence[int], seeds: Sequence[int]) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` described in the module docstring."""
    from bmi.benchmark.task_list import BENCHMARK_TASKS_LIST

    tasks = list(BENCHMARK_TASKS_LIST)
    arrays = {"name": np.array([task.name for task in tasks]), "dim_x": np.array([task.dim_x for task in tasks]),
              "dim_y": np.array([task.dim_y for task in tasks]),
              "mi": np.array([float(task.mutual_information) for task in tasks])}
    for index, task in enumerate(tasks):
        for n in sizes:
            for seed in seeds:
                x, y = task.sample(n, seed=seed)
                arrays[f"x_{index}_{n}_{seed}"], arrays[f"y_{index}_{n}_{seed}"] = np.asarray(x), np.asarray(y)
    return arrays


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the .npz file to write")
    parser.add_argument("--sizes", type=int, nargs="+", required=True, help="sample sizes N")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="seeds of bmi's task.sample")
    args = parser.parse_args()
    np.savez(args.out, **draw(args.sizes, args.seeds))
