"""Label Studio tasks JSON (a list of tasks, spans as `labels` results on a `text` object)."""

from __future__ import annotations

import json
from pathlib import Path

from arner.core import atomic
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError, Document, Problem, gather, is_int, loads_json, read_text, source_span_errors
from arner.core.names import unique_doc_id

FROM_NAME, TO_NAME = "label", "text"


def result(span: Span, index: int) -> dict:
    return {
        "id": f"s{index}",
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "type": "labels",
        "value": {"start": span.start, "end": span.end, "text": span.text, "labels": [span.label]},
    }


def tasks(documents: list[Document], key: str = "annotations", scores: list[list] | None = None) -> list[dict]:
    """`key="predictions"` makes pre-annotations a person can correct (with `scores`: entities with `.score`)."""
    out = []
    for n, d in enumerate(documents, 1):
        item: dict = {"result": [result(s, i) for i, s in enumerate(d.spans)]}
        if scores is not None and scores[n - 1]:
            for r, e in zip(item["result"], scores[n - 1]):
                r["score"] = e.score
            item["score"] = sum(e.score for e in scores[n - 1]) / len(scores[n - 1])
            item["model_version"] = "arner"
        out.append({"id": n, "data": {"text": d.text, "doc": d.doc}, key: [item]})
    return out


def dumps(documents: list[Document], key: str = "annotations", scores: list[list] | None = None) -> str:
    """The tasks file's text (see `tasks` for `key` and `scores`)."""
    return json.dumps(tasks(documents, key, scores), ensure_ascii=False, indent=1) + "\n"


def export(documents: list[Document], out: Path) -> None:
    atomic.write_text(out, dumps(documents))


def _spans(results: object, text: str, where: str, label: str) -> tuple[list[Span], list[Problem]]:
    """The `labels` results of one annotation as spans; every malformed result is a problem."""
    if not isinstance(results, list):
        return [], [Problem(where, f"{label}: 'result' must be a list, got {results!r:.60}")]
    spans, problems = [], []
    for k, r in enumerate(results):
        if not isinstance(r, dict):
            problems.append(Problem(where, f"{label}: result {k} must be an object, got {r!r:.60}"))
            continue
        if r.get("type") != "labels":
            continue  # relations, choices, text areas: not spans
        name = f"{label}: result {r.get('id', k)!r}"
        v = r.get("value")
        if not isinstance(v, dict) or not is_int(v.get("start")) or not is_int(v.get("end")):
            problems.append(Problem(where, f"{name}: 'value' must hold integer 'start' and 'end', got {v!r:.80}"))
            continue
        labels = v.get("labels")
        if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
            problems.append(Problem(where, f"{name}: 'labels' must be a list of 1 label, got {labels!r:.60}"))
            continue
        surface = text[v["start"] : v["end"]]
        if "text" in v and v["text"] != surface:
            problems.append(Problem(where, f"{name}: text {v['text']!r:.60} != data.text[{v['start']}:{v['end']}]"))
        spans.append(Span(v["start"], v["end"], labels[0], surface))
    return spans, problems


def _chosen(task: dict, where: str, label: str) -> tuple[object, list[Problem]]:
    """The `result` of the task's first non-cancelled annotation, else of its first prediction ([] for none)."""
    for key in ("annotations", "predictions"):
        items = task.get(key) or []
        if not isinstance(items, list) or not all(isinstance(a, dict) for a in items):
            return [], [Problem(where, f"{label}: {key!r} must be a list of objects, got {items!r:.60}")]
        items = [a for a in items if not (key == "annotations" and a.get("was_cancelled"))]
        if items:
            return items[0].get("result", []), []
    return [], []


def _document(task: object, n: int, where: str, seen: dict[str, str]) -> tuple[Document | None, list[Problem]]:
    data = task.get("data") if isinstance(task, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return None, [Problem(where, f'task {n}: no data.text (a task is {{"data": {{"text": str}}, ...}})')]
    try:
        doc = unique_doc_id(data.get("doc") or task.get("id", n), seen, where, context=f"task {n}")
    except AnnotationError as e:
        return None, e.problems
    label = f"task {n} ({doc})"
    results, problems = _chosen(task, where, label)
    spans, found = _spans(results, data["text"], where, label)
    checked = source_span_errors(where, data["text"], [(s, None) for s in spans], f"{label}: ")
    return Document(doc, data["text"], sorted(spans)), problems + found + checked


def load(path: Path) -> list[Document]:
    """Documents from a tasks file; each task's first non-cancelled annotation (else its first prediction)."""
    where = str(path)
    data = loads_json(read_text(Path(path)), where)
    if isinstance(data, dict):  # one task on its own
        data = [data]
    if not isinstance(data, list):
        raise AnnotationError([Problem(where, f"expected a list of Label Studio tasks, got {type(data).__name__}", 1)])
    seen: dict = {}
    return gather(_document(task, n, where, seen) for n, task in enumerate(data))
