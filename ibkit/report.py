"""Writing result tables: one CSV writer and one markdown-table builder for every report."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` (dicts) to ``path`` as CSV with a header; returns the path.

    ``columns``: the header (default: every key of the rows, in first-seen order).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                   formats: Mapping[str, str | Callable[[Any], str]] | None = None) -> str:
    """A GitHub-markdown table of ``rows``.

    Args:
        rows: dicts, one per table row.
        columns: the keys to show, in order (default: the first row's keys); also the header.
        formats: per column, a format spec (``".3f"``) or a callable turning a value into text;
            other values are shown with ``str`` (floats with ``.3g``).
    """
    columns = list(columns or (rows[0] if rows else []))
    formats = dict(formats or {})

    def cell(column: str, value: Any) -> str:
        fmt = formats.get(column)
        if callable(fmt):
            return fmt(value)
        if fmt is not None:
            return format(value, fmt)
        return format(value, ".3g") if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
