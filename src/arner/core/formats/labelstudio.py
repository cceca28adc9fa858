"""Label Studio tasks JSON (a list of tasks, spans as `labels` results on a `text` object), the
labeling config's names, and the predictions a Label Studio ML backend answers with."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from arner.core import atomic
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError, Document, Problem, gather, is_int, loads_json, read_text, source_span_errors
from arner.core.names import unique_doc_id

# the names of annotations/labelstudio.xml: results go from the <Labels name="label"> control to the
# <Text name="text" value="$text"> object, which shows the task's data.text
FROM_NAME, TO_NAME = "label", "text"
DATA_KEY = "text"
MODEL_VERSION = "arner"  # a prediction's model_version when the model folder is not known
VARIABLE = re.compile(r"\$(\w+)")


@dataclass(frozen=True)
class LabelingConfig:
    """What a labeling config tells a prediction: where results go, which data key holds the text,
    and the labels the project offers (None: not known, any label goes)."""

    from_name: str = FROM_NAME
    to_name: str = TO_NAME
    data_key: str = DATA_KEY
    labels: tuple[str, ...] | None = None


@functools.lru_cache(maxsize=32)  # Label Studio sends the project's config with every request
def parse_config(xml: str) -> LabelingConfig:
    """The first `<Labels>` control of a labeling config that labels a `<Text>` object, that object's
    data key and the control's labels; a `ValueError` of one line when there is none.

    Label Studio sends the config (its `label_config` or `schema`); annotations/labelstudio.xml is
    arner's. Expat in the standard library refuses entity expansion bombs and fetches nothing."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise ValueError(f"the labeling config is not valid XML ({e})") from None
    texts = {el.get("name"): el for el in root.iter("Text") if el.get("name")}
    for control in root.iter("Labels"):
        targets = [t.strip() for t in (control.get("toName") or "").split(",")]
        to_name = next((t for t in targets if t in texts), None)
        if to_name is None or not control.get("name"):
            continue
        text = texts[to_name]
        key = VARIABLE.fullmatch(text.get("value") or "")
        if key is None:
            raise ValueError(
                f'the labeling config\'s <Text name="{to_name}"> must show a task\'s text as value="$KEY", got {text.get("value")!r}'
            )
        if text.get("valueType", "text") != "text":  # the data would be a URL, which arner does not fetch
            raise ValueError(
                f'the labeling config\'s <Text name="{to_name}"> has valueType="{text.get("valueType")}": put the text in the task'
            )
        labels = tuple(lab.get("value") or "" for lab in control.iter("Label"))
        return LabelingConfig(control.get("name"), to_name, key.group(1), labels)
    raise ValueError("the labeling config has no <Labels> control whose toName is a <Text> object (arner's: annotations/labelstudio.xml)")


def model_version(model_dir: str | Path) -> str:
    """How predictions name the model that made them: the folder's name and the first 8 hex digits
    of the SHA-256 of its arner.json, which every training run writes anew (so a model retrained in
    the same folder is a new version, and the same model is the same version in a tasks file and
    from the live backend); a folder without arner.json, or a hub id, by its name alone."""
    path = Path(model_dir)
    name = path.resolve().name if path.is_dir() else str(model_dir)
    try:
        digest = hashlib.sha256((path / "arner.json").read_bytes()).hexdigest()[:8]
    except OSError:
        return name or MODEL_VERSION
    return f"{name}@{digest}"


def result(span: Span, index: int, from_name: str = FROM_NAME, to_name: str = TO_NAME) -> dict:
    return {
        "id": f"s{index}",
        "from_name": from_name,
        "to_name": to_name,
        "type": "labels",
        "value": {"start": span.start, "end": span.end, "text": span.text, "labels": [span.label]},
    }


def prediction(
    spans: Sequence[Span], scores: Sequence[float], config: LabelingConfig | None = None, model_version: str = MODEL_VERSION
) -> dict:
    """One task's prediction (a pre-annotation a person corrects): a `labels` result per span with its
    score, the mean of those as the prediction's `score` (none without spans), and the model's version."""
    config = config or LabelingConfig()
    results = [{**result(s, i, config.from_name, config.to_name), "score": score} for i, (s, score) in enumerate(zip(spans, scores))]
    item: dict = {"result": results, "model_version": model_version}
    if scores:
        item["score"] = sum(scores) / len(scores)
    return item


def tasks(
    documents: list[Document], key: str = "annotations", scores: list[list] | None = None, model_version: str = MODEL_VERSION
) -> list[dict]:
    """`key="predictions"` makes pre-annotations a person can correct (with `scores`: entities with `.score`)."""
    out = []
    for n, d in enumerate(documents, 1):
        if scores is None:
            item: dict = {"result": [result(s, i) for i, s in enumerate(d.spans)]}
        else:
            item = prediction(d.spans, [e.score for e in scores[n - 1]], model_version=model_version)
        out.append({"id": n, "data": {DATA_KEY: d.text, "doc": d.doc}, key: [item]})
    return out


def dumps(documents: list[Document], key: str = "annotations", scores: list[list] | None = None, model_version: str = MODEL_VERSION) -> str:
    """The tasks file's text (see `tasks` for `key`, `scores` and `model_version`)."""
    return json.dumps(tasks(documents, key, scores, model_version), ensure_ascii=False, indent=1) + "\n"


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
    if not isinstance(data, dict) or not isinstance(data.get(DATA_KEY), str):
        return None, [Problem(where, f'task {n}: no data.text (a task is {{"data": {{"text": str}}, ...}})')]
    try:
        doc = unique_doc_id(data.get("doc") or task.get("id", n), seen, where, context=f"task {n}")
    except AnnotationError as e:
        return None, e.problems
    label = f"task {n} ({doc})"
    results, problems = _chosen(task, where, label)
    spans, found = _spans(results, data[DATA_KEY], where, label)
    checked = source_span_errors(where, data[DATA_KEY], [(s, None) for s in spans], f"{label}: ")
    return Document(doc, data[DATA_KEY], sorted(spans)), problems + found + checked


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
