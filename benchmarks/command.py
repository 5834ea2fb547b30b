"""What the ``ibkit`` commands share: argparse entry points and the training commands' shorthands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

#: Short options of the training commands -> their Lightning command-line keys.
SHORTHANDS = {"--data-dir": "--data.data_dir", "--epochs": "--trainer.max_epochs"}
#: Where every command writes its results unless told otherwise (``--out``), relative to the
#: working directory: run from the repository root, it is the folder the README's tables come from.
RESULTS = Path("benchmarks") / "results"


def argparse_main(prog: str, description: str, configure: Callable[[argparse.ArgumentParser], None],
                  run: Callable[[argparse.Namespace], int], pass_through: bool = False) -> Callable[[Sequence[str]], int]:
    """A ``main(argv)`` for a command whose options ``configure`` declares and ``run`` executes.

    With ``pass_through`` the arguments the parser does not know are kept in ``args.passed``
    (for a command that hands them to another command line) instead of being an error.
    """

    def main(argv: Sequence[str]) -> int:
        parser = argparse.ArgumentParser(prog=prog, description=description,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        configure(parser)
        if not pass_through:
            return run(parser.parse_args(list(argv)))
        args, args.passed = parser.parse_known_args(list(argv))
        return run(args)

    return main


def expand_shorthands(argv: Sequence[str]) -> list[str]:
    """Lightning command-line arguments from the training commands' shorthands.

    ``--data digits|mnist`` becomes the data module's class path, ``--data-dir D`` becomes
    ``--data.data_dir D`` and ``--epochs N`` ``--trainer.max_epochs N`` (also in ``--key=value``
    form); everything else is passed on unchanged.
    """
    out: list[str] = []
    tokens = list(argv)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        key, equals, value = token.partition("=")
        if key == "--data" and equals:
            out.append(f"--data={data_class_path(value)}")
        elif key == "--data" and index + 1 < len(tokens):
            out += ["--data", data_class_path(tokens[index + 1])]
            index += 1
        elif key in SHORTHANDS:
            out.append(f"{SHORTHANDS[key]}{equals}{value}" if equals else SHORTHANDS[key])
        else:
            out.append(token)
        index += 1
    return out


def data_class_path(name: str) -> str:
    """The class path of the bundled data module ``name`` (``ibkit.data.DATAMODULES``), else ``name`` as given."""
    from ibkit.data import DATAMODULES  # imports torch: only when a training command runs

    module = DATAMODULES.get(name)
    return name if module is None else f"{module.__module__}.{module.__qualname__}"


@contextmanager
def usage_errors() -> Iterator[None]:
    """A ``ValueError`` inside the block (a setting the command's classes refuse, data that are not
    where the command was told, a layer name that does not exist) is the user's: one line
    ``error: ...`` on stderr and exit status 2, as a command-line parser reports a bad option."""
    try:
        yield
    except ValueError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        raise SystemExit(2) from None


@contextmanager
def command_line(prog: str) -> Iterator[None]:
    """``sys.argv`` reduced to ``[prog]`` inside the block.

    ``LightningCLI`` parses the arguments it is given (``args=``), but warns when the process's
    own command line is non-empty too; the ``ibkit`` entry point has already consumed it.
    """
    saved = sys.argv
    sys.argv = [prog]
    try:
        yield
    finally:
        sys.argv = saved
