"""doccano sequence-labelling JSONL: `{"id", "text", "label": [[start, end, LABEL], ...]}` a line."""

from __future__ import annotations

import json
from pathlib import Path

from arner.core import atomic
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError, Document, Problem, attempt, gather, is_int, loads_json, read_text, source_span_errors
from arner.core.names import unique_doc_id


def export(documents: list[Document], out: Path) -> None:
    lines = [
        json.dumps({"id": d.doc, "text": d.text, "label": [[s.start, s.end, s.label] for s in d.spans]}, ensure_ascii=False)
        for d in documents
    ]
    atomic.write_text(out, "\n".join(lines) + "\n")


def _triples(row: dict) -> list[tuple[int, int, str]]:
    """`label` triples or `entities` objects as (start, end, label); ValueError saying what is wrong."""
    if "entities" in row:
        items = row["entities"]
        if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
            raise ValueError(f"'entities' must be a list of objects, got {items!r:.80}")
        triples = [(e.get("start_offset"), e.get("end_offset"), e.get("label")) for e in items]
    else:
        items = row.get("label", [])
        if not isinstance(items, list) or not all(isinstance(t, list) and len(t) == 3 for t in items):
            raise ValueError(f"'label' must be a list of [start, end, LABEL], got {items!r:.80}")
        triples = [tuple(t) for t in items]
    for start, end, label in triples:
        if not is_int(start) or not is_int(end) or not isinstance(label, str):
            raise ValueError(f"a span must be (integer start, integer end, string label), got {[start, end, label]!r:.80}")
    return triples


def _document(line: str, n: int, where: str, seen: dict[str, str]) -> tuple[Document, list[Problem]]:
    """One JSONL line as a document and its spans' errors; AnnotationError naming the file and line for a bad line."""
    row = loads_json(line, where, n)
    try:
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ValueError('expected {"id": ..., "text": str, "label": [[start, end, LABEL], ...]}')
        triples = _triples(row)
    except ValueError as e:
        raise AnnotationError([Problem(where, f"bad doccano line: {e}", n)]) from None
    text = row["text"]
    doc = unique_doc_id(row.get("id", n), seen, where, n)
    spans = [Span(s, e, lab, text[s:e]) for s, e, lab in triples]
    return Document(doc, text, sorted(spans)), source_span_errors(where, text, [(s, n) for s in spans], f"{doc}: ")


def load(path: Path) -> list[Document]:
    """Reads `label` (list of triples) or `entities` (doccano's newer objects)."""
    where = str(path)
    seen: dict = {}
    lines = enumerate(read_text(Path(path)).split("\n"), 1)  # not splitlines: a text may hold U+2028
    return gather(attempt(lambda n=n, line=line: _document(line, n, where, seen)) for n, line in lines if line.strip())
