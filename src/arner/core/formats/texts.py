"""`arner predict`: read texts, tag them, write predictions in the format a user asks for."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from arner.core import atomic
from arner.core.corpus import AnnotationError, Document, Problem, read_text
from arner.core.formats import predictions

FORMATS = ("jsonl", "conll", "brat", "labelstudio")


def read_inputs(sources: Sequence[str]) -> list[tuple[str, str]]:
    """(doc id, text) pairs from `.txt` files (id = file stem), `-` (stdin) or `.jsonl` `{"id", "text"}` lines."""
    docs, problems = [], []
    for source in sources or ["-"]:
        if source == "-":
            data = sys.stdin.buffer.read()
            try:
                docs.append(("stdin", data.decode("utf-8")))
            except UnicodeDecodeError as e:
                problems.append(Problem("<stdin>", f"not UTF-8: invalid byte at offset {e.start}"))
            continue
        path = Path(source)
        if not path.is_file():
            problems.append(Problem(source, "input file not found"))
            continue
        try:
            text = read_text(path)
        except AnnotationError as e:
            problems += e.problems
            continue
        if path.suffix == ".jsonl":
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row.get("text"), str):
                        raise ValueError('expected {"id": ..., "text": str}')
                    docs.append((str(row.get("id", f"{path.stem}-{n}")), row["text"]))
                except (json.JSONDecodeError, ValueError, AttributeError) as e:
                    problems.append(Problem(source, f"bad input line: {e}", n))
        else:
            docs.append((path.stem, text))
    counts = Counter(d for d, _ in docs)
    for d in sorted(d for d, k in counts.items() if k > 1):
        problems.append(Problem(d, "duplicate document id among the inputs"))
    if problems:
        raise AnnotationError(problems)
    return docs


def render(fmt: str, docs: list[tuple[str, str]], entities: list[list], out: Path | None) -> str | None:
    """Write `out` (atomically) in `fmt`, or return the text for stdout."""
    from arner.core.formats import brat, conll, labelstudio

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "jsonl":
        text = predictions.dumps([(d, ents) for (d, _), ents in zip(docs, entities)])
    else:
        documents = [Document(d, t, [e.span() for e in ents]) for (d, t), ents in zip(docs, entities)]
        if fmt == "brat":
            if out is None:
                raise ValueError("--format brat writes a folder: give --out DIR")
            brat.export(documents, out)
            return None
        text = conll.dumps(documents) if fmt == "conll" else labelstudio.dumps(documents, key="predictions", scores=entities)
    if out is None:
        return text
    atomic.write_text(out, text)
    return None
