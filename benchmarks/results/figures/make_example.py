"""The example figures of this folder, from synthetic data (no training run).

    python benchmarks/results/figures/make_example.py [--logdir DIR]

Writes ``layer_planes_example.png`` here (the per-layer grid, coloured by the change of a
synthetic training loss) and, with ``--logdir``, a TensorBoard event file holding the grid
(``ib/information_plane``), one card per layer (``ib/planes/<layer>``) and the all-layers overview
(``ib/overview``), as the TensorBoard screenshot of this folder shows them.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ibkit.plotting import change_since_previous, plot_layer_cards, plot_layer_planes, plot_overview

HERE = Path(__file__).resolve().parent
LAYERS = ("L1", "L2", "L3", "L4", "L5", "probs")


def synthetic_history(n_epochs: int = 12, probe_size: int = 539, seed: int = 0) -> tuple[dict, np.ndarray, float, float]:
    """Arrays shaped like ``InformationPlaneHistory.as_arrays()`` with every flag kind set somewhere,
    a training loss per analysed epoch, H(Y) = log 10 and log N (nats)."""
    rng = np.random.default_rng(seed)
    shape = (n_epochs, len(LAYERS))
    t = np.arange(n_epochs)
    log_n, label_entropy = math.log(probe_size), math.log(10)
    i_xl, i_yl = np.empty(shape), np.empty(shape)
    for j in range(len(LAYERS)):
        fitting = 0.6 * np.exp(-((t - 3) ** 2) / 4) * (j >= 3)  # a rise of I(X;L), then compression
        i_xl[:, j] = 6.2 - 0.35 * j - 0.9 * (1 - np.exp(-t / 3)) * j / 5 + fitting + rng.normal(0, 0.05, n_epochs)
        i_yl[:, j] = 1.2 + 0.9 * (1 - np.exp(-t / (2 + j))) + rng.normal(0, 0.03, n_epochs)
    arrays = {"epochs": 2 * t, "layers": list(LAYERS), "I_XL": i_xl, "I_YL": i_yl,
              "I_XL_stderr": 0.08 + rng.uniform(0, 0.05, shape), "I_YL_stderr": 0.03 + rng.uniform(0, 0.02, shape)}
    for quantity in ("I_XL", "I_YL"):
        for kind in ("censored", "compression_loss", "negative", "capped"):
            arrays[f"{quantity}_{kind}"] = np.zeros(shape, dtype=bool)
    i_xl[:, 0] = np.minimum(i_xl[:, 0] + 0.02 + 0.05 * np.sin(t), log_n)  # L1 reaches log N: censored
    arrays["I_XL_censored"][:, 0] = i_xl[:, 0] >= log_n
    i_yl[8:, 0] = label_entropy  # L1 above H(Y) late: capped
    arrays["I_YL_capped"][8:, 0] = True
    arrays["I_YL_compression_loss"][1:3, 4] = True  # L5 below a deeper layer's early
    i_yl[0, 5] = 0.0  # probs below 0 at the start: drawn at 0
    arrays["I_YL_negative"][0, 5] = True
    i_xl[6, 2] = np.nan  # a failed estimate: a gap
    for quantity, threshold in (("I_XL", 0.25), ("I_YL", 0.12)):  # stand-in for the paired significance test
        change = np.diff(arrays[quantity], axis=0)
        trend = np.full(shape, "", dtype=object)
        trend[1:][change > threshold] = "up"
        trend[1:][change < -threshold] = "down"
        arrays[f"{quantity}_trend"] = trend
    loss = 2.3 * np.exp(-t / 2.5) + 0.1 + rng.normal(0, 0.02, n_epochs)
    loss[7] += 0.15
    return arrays, loss, label_entropy, log_n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, help="also write a TensorBoard event file here")
    args = parser.parse_args(argv)
    arrays, loss, label_entropy, log_n = synthetic_history()
    style = {"colour": change_since_previous(loss), "colour_label": "Δ training loss since previous analysed epoch",
             "label_entropy": label_entropy, "log_n": log_n}
    grid = plot_layer_planes(arrays, title="Information plane per layer (synthetic data)", **style)
    grid.savefig(HERE / "layer_planes_example.png")
    if args.logdir is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(args.logdir)) as writer:
            writer.add_figure("ib/information_plane", grid, 0)
            for layer, card in plot_layer_cards(arrays, **style).items():
                writer.add_figure(f"ib/planes/{layer}", card, 0)
            writer.add_figure("ib/overview", plot_overview(arrays, label_entropy=label_entropy, log_n=log_n), 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
