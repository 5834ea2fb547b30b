"""A real TensorBoard server lists the callback's scalars and custom-scalars layout.

Trains a tiny run with a ``TensorBoardLogger``, starts ``tensorboard`` on a free local port as a
subprocess, polls its HTTP API (bounded waits) and always terminates it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import lightning as L
from digits_mlp import digits_loaders, seeded_model
from lightning.pytorch.loggers import TensorBoardLogger

from ibkit.callbacks import InformationPlane

STARTUP_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def poll(url: str, ready, server: subprocess.Popen, deadline: float):
    """GET ``url`` until ``ready(payload)`` holds; fail if the server dies or the deadline passes."""
    payload = None
    while time.monotonic() < deadline:
        assert server.poll() is None, f"tensorboard exited with code {server.returncode} (see tensorboard.log)"
        try:
            payload = get_json(url)
            if ready(payload):
                return payload
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready after {STARTUP_TIMEOUT_S} s; last payload: {payload}")


def test_tensorboard_serves_information_plane_tags(tmp_path):
    callback = InformationPlane(x_compressor="pca", probe_size=500, layers=["hidden1", "out"])
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=TensorBoardLogger(tmp_path, name="run"),
                        callbacks=[callback], enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, log_every_n_steps=5)
    train, val = digits_loaders()
    trainer.fit(seeded_model(), train, val)

    port = free_port()
    server_log = open(tmp_path / "tensorboard.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path), "--host", "127.0.0.1",
         "--port", str(port), "--reload_interval", "1"],
        stdout=server_log, stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}/data/plugin"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S

        def has_ib_tags(payload) -> bool:
            return any(any(tag.startswith("ib/") for tag in tags) for tags in payload.values())

        tags = poll(f"{base}/scalars/tags", has_ib_tags, server, deadline)
        run_tags = next(tags for tags in tags.values() if any(t.startswith("ib/") for t in tags))
        for layer in ("hidden1", "out"):
            assert {f"ib/{layer}/I_XL", f"ib/{layer}/I_YL", f"ib_band/{layer}/I_YL_stderr",
                    f"ib_band/{layer}/I_XL_lower", f"ib_band/{layer}/I_XL_upper"} <= set(run_tags)
        # The Scalars tab's "ib" group holds the estimates and times; the error bars have their own.
        assert not any(tag.startswith("ib/") and tag.endswith(("_stderr", "_lower", "_upper")) for tag in run_tags)
        layout = poll(f"{base}/custom_scalars/layout", lambda p: bool(p.get("category")), server, deadline)
        categories = {category["title"]: category["chart"] for category in layout["category"]}
        assert set(categories) == {"I(X;L) ± 2 SE, nats", "I(Y;L) ± 2 SE, nats"}
        charts = {chart["title"]: chart for chart in categories["I(X;L) ± 2 SE, nats"]}
        assert set(charts) == {"hidden1", "out"}
        # One margin chart per layer: the estimate with its ±2 SE band, no stray stderr lines.
        assert charts["out"]["margin"]["series"] == [
            {"value": "ib/out/I_XL", "lower": "ib_band/out/I_XL_lower", "upper": "ib_band/out/I_XL_upper"}]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        server_log.close()
