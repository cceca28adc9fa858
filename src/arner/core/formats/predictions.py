"""The predictions file shared by inference and evaluation: JSONL, one line per document.

    {"doc": "<doc>", "entities": [{"start": 15, "end": 21, "label": "PLACE", "text": "أمريكا", "score": 0.98}, ...]}

Offsets are code points into the unnormalized article, end exclusive, as in the annotation
folders; `score` is optional. Reading checks every line against the gold texts with the
span conventions of `arner.core.conventions` (offsets, text, labels, edges, overlaps) and raises one
`AnnotationError` listing every problem (file, line, entity, problem), so a bad file is never
scored as silent zeros.

A gold document with no line in the file is an error by default (`missing="error"`); with
`missing="empty"` it is scored as a document where nothing was predicted. That choice is always
the caller's, never implicit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from arner.core import atomic
from arner.core.conventions import Span, span_problems
from arner.core.corpus import AnnotationError, Document, Problem, loads_json, overlap_problems, parse_span, read_text

ENTITY_KEYS = ("start", "end", "label", "text", "score")
MISSING_MODES = ("error", "empty")


def entity_json(entity: Span | Mapping) -> dict:
    """One entity as a JSON object (`score` only when the entity has one)."""
    get = entity.get if isinstance(entity, Mapping) else lambda key, default=None: getattr(entity, key, default)
    out = {"start": int(get("start")), "end": int(get("end")), "label": str(get("label")), "text": str(get("text"))}
    score = get("score", None)
    if score is not None:
        out["score"] = float(score)
    return out


def _row(row: Document | Mapping | tuple) -> tuple[str, list]:
    if isinstance(row, Document):
        return row.doc, list(row.spans)
    if isinstance(row, Mapping):
        return row["doc"], list(row["entities"])
    doc, entities = row
    return doc, list(entities)


def dumps(rows: Iterable[Document | Mapping | tuple]) -> str:
    """The JSONL text: one line per document, entities sorted by offsets."""
    lines = []
    for row in rows:
        doc, entities = _row(row)
        items = sorted((entity_json(e) for e in entities), key=lambda e: (e["start"], e["end"], e["label"]))
        lines.append(json.dumps({"doc": doc, "entities": items}, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def write(path: str | Path, rows: Iterable[Document | Mapping | tuple]) -> None:
    """Write a predictions file atomically.

    A row is a `Document` (its `spans` are the predictions), a mapping `{"doc", "entities"}`, or a
    `(doc, entities)` pair; an entity is a `Span`, an inference `Entity` or a mapping.
    """
    atomic.write_text(path, dumps(rows))


def _parse_entity(obj: object) -> tuple[Span | None, str | None]:
    span, error = parse_span(obj, "entity", ENTITY_KEYS)
    score = obj.get("score") if span is not None else None
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score)):
        return None, f"'score' must be a finite number, got {score!r}"
    return span, error


def _check_line(
    where: str, n: int, raw: str, texts: Mapping[str, str], seen: dict[str, int]
) -> tuple[str | None, list[Span], list[Problem], bool]:
    """The line's doc (None when it is not usable), its valid spans, its problems, and whether the line could not be read at all."""
    try:
        data = loads_json(raw, where, n)
    except AnnotationError as e:  # bad JSON, nested too deep, a number too long
        return None, [], e.problems, True
    if not isinstance(data, dict) or not isinstance(data.get("doc"), str) or not isinstance(data.get("entities"), list):
        return None, [], [Problem(where, 'expected {"doc": str, "entities": [...]}', n)], True
    extra = sorted(set(data) - {"doc", "entities"})
    doc = data["doc"]
    problems = []
    if extra:
        problems.append(Problem(where, f"doc {doc!r}: unknown key(s) {', '.join(map(repr, extra))} (allowed: doc, entities)", n))
    if doc not in texts:
        known = ", ".join(sorted(texts)) or "none"
        return None, [], problems + [Problem(where, f"unknown doc {doc!r} (gold documents: {known})", n)], False
    if doc in seen:
        return None, [], problems + [Problem(where, f"doc {doc!r} appears twice (also line {seen[doc]})", n)], False
    seen[doc] = n
    text = texts[doc]
    spans, index = [], {}
    for i, obj in enumerate(data["entities"]):
        span, error = _parse_entity(obj)
        if error:
            problems.append(Problem(where, f"doc {doc!r} entity {i}: {error}", n))
            continue
        found = span_problems(text, span)
        for message in found:
            problems.append(Problem(where, f"doc {doc!r} entity {i} [{span.start}:{span.end} {span.label} {span.text!r}]: {message}", n))
        if not found:
            index[id(span)] = i
            spans.append(span)
    problems += overlap_problems(where, spans, index, lambda _: n, "entity", f"doc {doc!r} ", show_label=True)
    return doc, sorted(spans), problems, False


def read(
    path: str | Path,
    gold_documents: Sequence[Document],
    missing: str = "error",
    select: Collection[str] | None = None,
) -> list[Document]:
    """The predictions of `path`, checked against the gold texts, as documents aligned with the gold.

    Every line is checked against `gold_documents` (a doc id not among them is an error). The
    result holds one `Document(doc, gold text, predicted spans)` per gold document, in gold
    order, or only those whose id is in `select`. A selected gold document with no line is an
    error when `missing="error"` and has no predictions when `missing="empty"`. Raises
    `AnnotationError` listing every problem; blank lines are allowed.
    """
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {MISSING_MODES}, got {missing!r}")
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise AnnotationError([Problem(where, "predictions file not found")])
    raw = read_text(path)
    texts = {d.doc: d.text for d in gold_documents}
    if select is not None:
        unknown = sorted(set(select) - set(texts))
        if unknown:
            raise AnnotationError([Problem(where, f"selected doc {d!r} is not a gold document") for d in unknown])
    predicted: dict[str, list[Span]] = {}
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    unreadable = False
    for n, line in enumerate(raw.split("\n"), 1):
        if not line.strip():
            continue
        doc, spans, found, bad = _check_line(where, n, line, texts, seen)
        problems += found
        unreadable |= bad
        if doc is not None:
            predicted[doc] = spans
    wanted = [d for d in gold_documents if select is None or d.doc in select]
    if missing == "error" and not unreadable:  # a line we could not read may well be the missing document's
        for d in wanted:
            if d.doc not in predicted:
                problems.append(
                    Problem(where, f"gold doc {d.doc!r} has no line (pass missing='empty' / --missing empty to score it as empty)")
                )
    if problems:
        raise AnnotationError(problems)
    return [Document(d.doc, d.text, predicted.get(d.doc, [])) for d in wanted]
