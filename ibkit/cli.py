"""The ``ibkit`` command line: ``ibkit <group> <command> [options]``.

Every command lives in its own module exposing ``configure(parser)`` (add arguments) and
``run(args) -> int`` (do the work, return an exit status); the module docstring's first line is
the command's help. This file is the composition root: it only names those modules, so the
library itself never imports the model or callback packages.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[tuple[str, str], str] = {
    ("bench", "battery"): "ibkit.bench.battery",
    ("bench", "synthetic"): "ibkit.bench.synthetic",
    ("train", "classifier"): "ibkit.models.train_classifier",
    ("train", "dim"): "ibkit.models.train_dim",
    ("bench", "dim"): "ibkit.models.bench_dim",
}

GROUP_HELP = {
    "bench": "benchmarks that print and save result tables",
    "train": "train a bundled model with the information-plane callback attached",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ibkit", description="Information Bottleneck toolkit")
    groups = parser.add_subparsers(dest="group", required=True, metavar="{" + ",".join(sorted({g for g, _ in COMMANDS})) + "}")
    group_parsers: dict[str, argparse._SubParsersAction] = {}
    for (group, name), module_name in COMMANDS.items():
        if group not in group_parsers:
            group_parser = groups.add_parser(group, help=GROUP_HELP.get(group))
            group_parsers[group] = group_parser.add_subparsers(dest="command", required=True)
        module = importlib.import_module(module_name)
        summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None
        command_parser = group_parsers[group].add_parser(name, help=summary, description=module.__doc__,
                                                        formatter_class=argparse.RawDescriptionHelpFormatter)
        module.configure(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
