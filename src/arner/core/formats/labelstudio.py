"""Label Studio tasks JSON (a list of tasks, spans as `labels` results on a `text` object)."""

from __future__ import annotations

import json
from pathlib import Path

from arner.core import atomic
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError, Document, Problem, read_text

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


def load(path: Path) -> list[Document]:
    """Documents from a tasks file; each task's first non-cancelled annotation (else its first prediction)."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise AnnotationError([Problem(str(path), f"bad JSON: {e.msg}", e.lineno)]) from None
    if isinstance(data, dict):
        data = [data]
    documents, problems = [], []
    for n, task in enumerate(data):
        text = (task.get("data") or {}).get("text") if isinstance(task, dict) else None
        if not isinstance(text, str):
            problems.append(Problem(str(path), f"task {n}: no data.text"))
            continue
        doc = str(task["data"].get("doc") or task.get("id", n))
        chosen = [a for a in task.get("annotations", []) if not a.get("was_cancelled")] or task.get("predictions", [])
        spans = []
        for r in chosen[0]["result"] if chosen else []:
            if r.get("type") != "labels":
                continue
            v = r["value"]
            labels = v.get("labels") or []
            if len(labels) != 1:
                problems.append(Problem(str(path), f"task {n} ({doc}): result {r.get('id')} has {len(labels)} labels, expected 1"))
                continue
            spans.append(Span(v["start"], v["end"], labels[0], text[v["start"] : v["end"]]))
            if "text" in v and v["text"] != text[v["start"] : v["end"]]:
                problems.append(
                    Problem(str(path), f"task {n} ({doc}): result {r.get('id')} text {v['text']!r} != data.text[{v['start']}:{v['end']}]")
                )
        documents.append(Document(doc, text, sorted(spans)))
    if problems:
        raise AnnotationError(problems)
    return documents
