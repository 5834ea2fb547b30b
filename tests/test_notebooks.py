"""The notebooks are committed without outputs and execute top to bottom with small settings.

Each notebook runs with nbclient in a kernel that uses this interpreter (a kernelspec written to
a temporary ``JUPYTER_PATH``), in a temporary working directory, with ``IBKIT_NOTEBOOK_SMALL=1``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
KERNEL_NAME = "ibkit-test-python"


@pytest.fixture()
def this_interpreter_kernel(tmp_path, monkeypatch) -> str:
    """A kernelspec running ``sys.executable``, found through a temporary ``JUPYTER_PATH``."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "ibkit test kernel", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IBKIT_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # small models: one thread avoids OpenMP spin-waiting
    return KERNEL_NAME


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs; clear them"


def check_information_plane(notebook, workdir: Path) -> None:
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert len(images) == 2, "expected the callback's information plane and the trainer-free analysis's"
    logs = workdir / "ib_notebook_logs" / "digits" / "version_0"
    assert sorted(p.name for p in logs.glob("information_plane.*")) == ["information_plane.csv", "information_plane.json"]
    assert list(logs.glob("events.out.tfevents.*"))


def check_noise_injected_dim(notebook, workdir: Path) -> None:
    """Two figures (embedding vs prior, trade-off), the trade-off table and the TensorBoard logs."""
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == 2, "expected the embedding figure and the trade-off figure"
    tables = [output["data"]["text/markdown"] for output in outputs if "text/markdown" in output.get("data", {})]
    assert len(tables) == 1 and "| p | d·C (nats) |" in tables[0]
    text = "".join(output.get("text", "") for output in outputs)
    assert "certificate d·C − Î" in text and "pvalue_henze_zirkler" in text
    assert list((workdir / "dim_notebook_logs" / "digits" / "version_0").glob("events.out.tfevents.*"))


#: Extra checks on an executed notebook and its working directory, by file name.
CHECKS = {"information_plane.ipynb": check_information_plane, "noise_injected_dim.ipynb": check_noise_injected_dim}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, this_interpreter_kernel):
    notebook = nbformat.read(path, as_version=4)
    workdir = tmp_path / "run"
    workdir.mkdir()
    client = NotebookClient(notebook, kernel_name=this_interpreter_kernel, timeout=300,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    if path.name in CHECKS:
        CHECKS[path.name](notebook, workdir)
