"""The ``ibkit`` command line: ``ibkit <group> <command> [options]``.

Every command lives in its own module of this package with a ``main(argv) -> int``; this file only
names them, with a one-line help each, and imports a command's module when it runs, so
``ibkit --help`` answers without loading torch or Lightning.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: (group, command) -> (module, one-line help). The help is the module docstring's first line.
COMMANDS: dict[tuple[str, str], tuple[str, str]] = {
    ("train", "classifier"): ("ibkit.benchmarks.train_classifier",
                              "Train the stochastic MNIST classifier with the information-plane callback (ICLR 2024, §6)."),
    ("train", "dim"): ("ibkit.benchmarks.train_dim",
                       "Train a noise-injected Deep InfoMax encoder and evaluate its embedding on held-out data."),
    ("bench", "battery"): ("ibkit.benchmarks.battery",
                           "Every estimator and preprocessing on the known-MI battery, scored against the truth."),
    ("bench", "public"): ("ibkit.benchmarks.public",
                          'The default call on the public "Beyond Normal" MI benchmark (Czyż et al., NeurIPS 2023).'),
    ("bench", "plane"): ("ibkit.benchmarks.plane",
                         "The information plane on stochastic layers whose MI is known: the test the plane itself must pass."),
    ("bench", "phases"): ("ibkit.benchmarks.phases",
                          "Significant phases: are the plane's rise and fall marks right, on layers whose MI path is known?"),
    ("bench", "stderr"): ("ibkit.benchmarks.stderr",
                          "Are the error bars right? Reported standard errors against the seed-to-seed spread."),
    ("bench", "synthetic"): ("ibkit.benchmarks.synthetic",
                             "Estimate MI on synthetic data with known MI and compare with the truth (ICLR-2024 §5)."),
    ("bench", "flows"): ("ibkit.benchmarks.flow_vectors",
                         "The flow estimator (MIENF) on vectors of known MI at high MI and through monotone maps."),
    ("bench", "flow-images"): ("ibkit.benchmarks.flow_images",
                               "Why MIENF on raw images fails or works: its training curves on pixels of known MI."),
    ("bench", "speed"): ("ibkit.benchmarks.speed",
                         "Speed of ibkit's kNN MI estimators against the peers users already have, on the same data."),
    ("bench", "scale"): ("ibkit.benchmarks.scale",
                         "The information plane at the scale of the networks people train: torchvision's ResNet-18."),
    ("bench", "callback"): ("ibkit.benchmarks.callback",
                            "What the information-plane callback costs a training run (MNIST classifier, N = 10k)."),
    ("bench", "dim"): ("ibkit.benchmarks.dim",
                       "Sweep the output-noise level of noise-injected Deep InfoMax: the information/matching trade-off."),
    ("bench", "dim-curve"): ("ibkit.benchmarks.dim_curve",
                             "Learning curves of noise-injected Deep InfoMax at one noise level: what limits probe accuracy."),
}

GROUP_HELP = {
    "bench": "benchmarks that print and save result tables",
    "train": "train a bundled model with Lightning's command line (--config, --print_config, --trainer.*, ...)",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser, for help and usage errors only (commands parse their own options)."""
    parser = argparse.ArgumentParser(prog="ibkit", description="Information Bottleneck toolkit")
    groups = parser.add_subparsers(dest="group", required=True, metavar="{" + ",".join(GROUP_HELP) + "}")
    for group, group_help in GROUP_HELP.items():
        commands = groups.add_parser(group, help=group_help).add_subparsers(dest="command", required=True)
        for (owner, name), (_, summary) in COMMANDS.items():
            if owner == group:
                commands.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and (argv[0], argv[1]) in COMMANDS:
        module = importlib.import_module(COMMANDS[(argv[0], argv[1])][0])
        return int(module.main(argv[2:]) or 0)
    build_parser().parse_args(argv)  # prints help, or a usage error naming the valid choices
    return 2


if __name__ == "__main__":
    sys.exit(main())
