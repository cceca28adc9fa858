"""doccano sequence-labelling JSONL: `{"id", "text", "label": [[start, end, LABEL], ...]}` a line."""

from __future__ import annotations

import json
from pathlib import Path

from arner.core import atomic
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError, Document, Problem, read_text


def export(documents: list[Document], out: Path) -> None:
    lines = [
        json.dumps({"id": d.doc, "text": d.text, "label": [[s.start, s.end, s.label] for s in d.spans]}, ensure_ascii=False)
        for d in documents
    ]
    atomic.write_text(out, "\n".join(lines) + "\n")


def load(path: Path) -> list[Document]:
    """Reads `label` (list of triples) or `entities` (doccano's newer objects)."""
    documents, problems = [], []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text = row["text"]
            if "entities" in row:
                triples = [(e["start_offset"], e["end_offset"], e["label"]) for e in row["entities"]]
            else:
                triples = [tuple(t) for t in row.get("label", [])]
            spans = sorted(Span(s, e, lab, text[s:e]) for s, e, lab in triples)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            problems.append(Problem(str(path), f"bad doccano line: {e}", n))
            continue
        documents.append(Document(str(row.get("id", n)), text, spans))
    if problems:
        raise AnnotationError(problems)
    return documents
