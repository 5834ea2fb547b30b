"""Two-process CPU DDP gives the same information plane as a single process on the same probe.

Each DDP rank captures its shard of the probe (499 samples: the second shard is padded), the
shards are gathered and estimated on rank 0. With a learning rate of 0 both runs see the same
weights, PCA and the estimator are deterministic and the capture batches are aligned, so the
estimates must agree to 1e-6 nats. The DDP trainer runs in a subprocess script because the
``ddp`` strategy re-launches the script for its second rank.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest
from digits_mlp import digits_loaders, digits_tensors, seeded_model

from ibkit.callbacks import InformationPlane

TESTS_DIR = Path(__file__).resolve().parent
N_PROBE = 499
SETTINGS = dict(x_compressor="pca", batch_size=50, probe_size=N_PROBE, epochs=[0, 1])

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import lightning as L
    from digits_mlp import digits_loaders, digits_tensors, seeded_model
    from ibkit.callbacks import InformationPlane

    if __name__ == "__main__":
        out_path, settings = sys.argv[1], json.loads(sys.argv[2])
        x, y = digits_tensors()
        callback = InformationPlane(probe=(x[-settings["probe_size"]:], y[-settings["probe_size"]:]), **settings)
        trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", logger=False,
                            callbacks=[callback], enable_progress_bar=False, enable_model_summary=False,
                            enable_checkpointing=False, default_root_dir=sys.argv[3])
        train, val = digits_loaders()
        trainer.fit(seeded_model(lr=0.0), train, val)
        if trainer.is_global_zero:
            rows = [p.__dict__ for p in callback.history.rows()]
            json.dump({"world_size": trainer.world_size, "rows": rows}, open(out_path, "w"))
    """
)


def single_process_rows(root: Path) -> list[dict]:
    x, y = digits_tensors()
    callback = InformationPlane(probe=(x[-N_PROBE:], y[-N_PROBE:]), **SETTINGS)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, callbacks=[callback],
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        default_root_dir=root)
    train, val = digits_loaders()
    trainer.fit(seeded_model(lr=0.0), train, val)
    return [p.__dict__ for p in callback.history.rows()]


@pytest.mark.filterwarnings("ignore:InformationPlane. no TensorBoardLogger")
@pytest.mark.parametrize("asynchronous", [False, True], ids=["synchronous", "background"])
def test_ddp_two_cpu_processes_match_single_process(tmp_path, asynchronous):
    script = tmp_path / "ddp_information_plane.py"
    script.write_text(SCRIPT)
    out_path = tmp_path / "ddp_history.json"
    settings = {**SETTINGS, "asynchronous": asynchronous}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(script), str(out_path), json.dumps(settings), str(tmp_path / "ddp")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    ddp = json.loads(out_path.read_text())
    assert ddp["world_size"] == 2

    single = single_process_rows(tmp_path / "single")
    assert [(r["epoch"], r["layer"]) for r in ddp["rows"]] == [(r["epoch"], r["layer"]) for r in single]
    assert len(single) == 6
    for got, expected in zip(ddp["rows"], single):
        for key in ("I_XL", "I_XL_stderr", "I_YL", "I_YL_stderr"):
            assert got[key] == pytest.approx(expected[key], abs=1e-6), (got, expected)
