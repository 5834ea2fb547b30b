"""``ibkit bench public`` without the ``bmi`` package: a stand-in task list, the scores, the usage errors."""

from __future__ import annotations

import csv
import math
import sys
import types

import numpy as np
import pytest

from ibkit.benchmarks import public


class FakeTask:
    """A ``bmi`` task: ``sample(n, seed)`` gives x (n, dim) and y (n, dim), the coordinate pairs
    correlated ``rho``; ``mutual_information`` is what the task claims (nats)."""

    def __init__(self, name: str, dim: int, rho: float, claimed: float):
        self.name, self.dim_x, self.dim_y, self.rho, self.mutual_information = name, dim, dim, rho, claimed

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x, noise = np.random.default_rng(seed).standard_normal((2, n, self.dim_x)).astype(np.float32)
        return x, self.rho * x + math.sqrt(1 - self.rho**2) * noise


@pytest.fixture
def fake_bmi(monkeypatch):
    """``bmi.benchmark.task_list.BENCHMARK_TASKS_LIST``: a 1 × 1 Gaussian with its true MI, and a
    3 × 3 independent pair that claims 1 nat (a miss)."""
    tasks = [FakeTask("gauss 1 × 1", 1, 0.8, -0.5 * math.log(1 - 0.8**2)), FakeTask("independent 3 × 3", 3, 0.0, 1.0)]
    task_list = types.ModuleType("bmi.benchmark.task_list")
    task_list.BENCHMARK_TASKS_LIST = tasks
    for name, module in [("bmi", types.ModuleType("bmi")), ("bmi.benchmark", types.ModuleType("bmi.benchmark")),
                         ("bmi.benchmark.task_list", task_list)]:
        monkeypatch.setitem(sys.modules, name, module)


def test_every_task_is_estimated_per_size_and_scored_in_all_and_where_well_sampled(fake_bmi, tmp_path, capsys):
    assert public.main(["--sizes", "300", "--seeds", "0", "1", "--out", str(tmp_path)]) == 0
    with (tmp_path / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["task"] for row in rows] == ["gauss 1 × 1", "independent 3 × 3"]
    gauss = rows[0]
    assert float(gauss["estimate"]) == pytest.approx((float(gauss["seed 0"]) + float(gauss["seed 1"])) / 2)
    assert [row[public.SCORE] for row in rows] == ["True", "False"]
    summary = (tmp_path / "summary.md").read_text()
    # 300 samples give 100 per dimension to the 1 × 1 task only: 1 of 2 within ×1.5 in all, 1 of 1 well sampled.
    assert "| 300 | 1/2 | 1/1 |" in summary and "✓" in summary and "✗" in summary
    assert summary in capsys.readouterr().out


def test_scores_count_per_size():
    rows = [{"task": task, "N": n, "dim_x": dim, "dim_y": dim, "true_mi": 1.0, "estimate": 1.0, public.SCORE: hit,
             "seconds": 0.5} for n, task, dim, hit in [(1000, "a", 1, True), (1000, "b", 25, True),
                                                      (5000, "a", 1, False), (5000, "b", 25, True)]]
    assert public.scores(rows) == [{"N": 1000, public.SCORE: "2/2", public.WELL_SAMPLED: "1/1", "seconds": 1.0},
                                   {"N": 5000, public.SCORE: "1/2", public.WELL_SAMPLED: "1/2", "seconds": 1.0}]
    assert public.per_task_table(rows)[1] == {"task": "b", "dim_x": 25, "dim_y": 25, "true MI": "1.000",
                                              "N=1000": "1.000 ✓", "N=5000": "1.000 ✓"}


@pytest.mark.parametrize(("argv", "message"), [([], "pip install benchmark-mi"),
                                               (["--python", "/no/such/python"], "cannot run --python")])
def test_without_bmi_the_command_says_how_to_get_it(argv, message, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "bmi", None)  # `import bmi` raises ImportError
    with pytest.raises(SystemExit) as stop:
        public.main([*argv, "--out", str(tmp_path)])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.startswith("error: ") and message in error
