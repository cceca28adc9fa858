"""Markdown tables: the one helper every report uses (evaluation, cross-validation, benchmarks, statistics)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> list[str]:
    """The lines of a Markdown table; `align` gives one letter a column, `l` (default) or `r`."""
    align = align.ljust(len(header), "l")
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r} must give l or r for each of the {len(header)} columns")
    lines = [row(header), "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for cells in rows:
        cells = list(cells)
        if len(cells) != len(header):
            raise ValueError(f"a row has {len(cells)} cells for {len(header)} columns: {cells!r}")
        lines.append(row(cells))
    return lines
