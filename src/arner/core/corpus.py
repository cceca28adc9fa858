"""Annotation folders on disk: `articles/<doc>.txt` plus `spans/<doc>.json`, read, checked and written.

Every problem is reported with its file (and line where there is one), all at once,
so an annotator fixes a folder in one pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from arner.core import atomic
from arner.core.conventions import Span, overlaps, proclitic_warning, span_problems, words

DEFAULT_ROOT = Path("annotations")


@dataclass
class Document:
    doc: str
    text: str
    spans: list[Span] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


class AnnotationError(ValueError):
    """Raised with every error found, one line each."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Layout:
    """Where an annotation folder keeps its articles and span files."""

    articles: Path
    spans: Path

    @classmethod
    def of(cls, root: str | Path, articles: str | Path | None = None) -> Layout:
        """`root/spans` (or `root` itself) for spans; `root/articles`, else `articles`, for texts."""
        root = Path(root)
        spans = root / "spans" if (root / "spans").is_dir() else root
        if (root / "articles").is_dir():
            arts = root / "articles"
        else:
            arts = Path(articles) if articles else DEFAULT_ROOT / "articles"
        return cls(arts, spans)


def read_text(path: Path) -> str:
    """Decode a UTF-8 file exactly (no newline or any other normalization)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise AnnotationError([Problem(str(path), f"not UTF-8: invalid byte at offset {e.start}", line)]) from None


def spans_json(doc: str, spans: Iterable[Span]) -> str:
    """The canonical span file: sorted by start, one span per line so diffs stay readable."""
    rows = [json.dumps(s.to_json(), ensure_ascii=False) for s in sorted(spans)]
    body = ",\n    ".join(rows)
    return (
        f'{{\n  "doc": {json.dumps(doc, ensure_ascii=False)},\n  "spans": [\n    {body}\n  ]\n}}\n'
        if rows
        else (f'{{\n  "doc": {json.dumps(doc, ensure_ascii=False)},\n  "spans": []\n}}\n')
    )


def _span_lines(raw: str) -> list[int]:
    """Line number of each span object, found by its `"start"` key."""
    return [raw.count("\n", 0, m.start()) + 1 for m in re.finditer(r'"start"\s*:', raw)]


def _parse_span(obj: object) -> tuple[Span | None, str | None]:
    if not isinstance(obj, dict):
        return None, "a span must be an object"
    want = {"start": int, "end": int, "label": str, "text": str}
    for key, typ in want.items():
        if key not in obj:
            return None, f"missing key {key!r}"
        if not isinstance(obj[key], typ) or isinstance(obj[key], bool):
            return None, f"{key!r} must be {typ.__name__}, got {obj[key]!r}"
    return Span(obj["start"], obj["end"], obj["label"], obj["text"]), None


def check_document_spans(path: str, text: str, spans: list[Span], lines: list[int | None]) -> list[Problem]:
    """Problems of one document's spans: each span's own, then order and overlaps."""
    problems = []
    vocabulary = {w.text for w in words(text)}
    for i, span in enumerate(spans):
        label = f"span {i} [{span.start}:{span.end} {span.label} {span.text!r}]"
        errors = span_problems(text, span)
        problems += [Problem(path, f"{label}: {message}", lines[i]) for message in errors]
        warning = None if errors else proclitic_warning(text, span, vocabulary)
        if warning:
            problems.append(Problem(path, f"{label}: {warning}", lines[i], "warning"))
    for i in range(1, len(spans)):
        if spans[i].start < spans[i - 1].start:
            problems.append(
                Problem(
                    path,
                    f"span {i} starts at {spans[i].start}, before span {i - 1} ({spans[i - 1].start}): spans must be sorted by start",
                    lines[i],
                )
            )
    index = {id(s): i for i, s in enumerate(spans)}
    for a, b in overlaps([s for s in spans if 0 <= s.start < s.end <= len(text)]):
        problems.append(
            Problem(
                path,
                f"span {index[id(b)]} [{b.start}:{b.end} {b.text!r}] overlaps span {index[id(a)]} [{a.start}:{a.end} {a.text!r}]",
                lines[index[id(b)]],
            )
        )
    return problems


def read_spans_file(path: Path, texts: dict[str, str]) -> tuple[Document | None, list[Problem]]:
    """Parse and check one span file against the article texts (keyed by doc id)."""
    where = str(path)
    try:
        raw = read_text(path)
    except AnnotationError as e:
        return None, e.problems
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        return None, [Problem(where, f"bad JSON: {e.msg} (column {e.colno})", e.lineno)]
    if not isinstance(data, dict) or not isinstance(data.get("doc"), str) or not isinstance(data.get("spans"), list):
        return None, [Problem(where, 'expected {"doc": str, "spans": [...]}', 1)]
    doc = data["doc"]
    problems = []
    if doc != path.stem:
        problems.append(Problem(where, f"doc id {doc!r} does not match the file name {path.stem!r}", 2))
    if doc not in texts:
        problems.append(Problem(where, f"no article for doc {doc!r} ({doc}.txt is missing)"))
        return None, problems
    lines: list[int | None] = list(_span_lines(raw))
    if len(lines) != len(data["spans"]):
        lines = [None] * len(data["spans"])
    spans = []
    for i, obj in enumerate(data["spans"]):
        span, error = _parse_span(obj)
        if error:
            problems.append(Problem(where, f"span {i}: {error}", lines[i]))
        else:
            spans.append(span)
    if len(spans) == len(data["spans"]):
        problems += check_document_spans(where, texts[doc], spans, lines)
    return Document(doc, texts[doc], spans), problems


def read_articles(articles_dir: Path) -> tuple[dict[str, str], list[Problem]]:
    texts, problems = {}, []
    if not articles_dir.is_dir():
        return texts, [Problem(str(articles_dir), "articles folder not found")]
    for path in sorted(articles_dir.glob("*.txt")):
        try:
            texts[path.stem] = read_text(path)
        except AnnotationError as e:
            problems += e.problems
    return texts, problems


def check(root: str | Path, articles: str | Path | None = None, require_all: bool = True) -> tuple[list[Document], list[Problem]]:
    """Read an annotation folder and return its documents with every problem found."""
    layout = Layout.of(root, articles)
    texts, problems = read_articles(layout.articles)
    if not layout.spans.is_dir():
        return [], problems + [Problem(str(layout.spans), "spans folder not found")]
    documents, seen = [], {}
    for path in sorted(layout.spans.glob("*.json")):
        doc, found = read_spans_file(path, texts)
        problems += found
        if doc is None:
            continue
        if doc.doc in seen:
            problems.append(Problem(str(path), f"duplicate doc id {doc.doc!r} (also in {seen[doc.doc]})"))
            continue
        seen[doc.doc] = str(path)
        documents.append(doc)
    if require_all:
        present = {p.stem for p in layout.spans.glob("*.json")} | set(seen)
        for doc in sorted(set(texts) - present):
            problems.append(Problem(str(layout.articles / f"{doc}.txt"), f"article has no span file {layout.spans / (doc + '.json')}"))
    return documents, problems


def load(root: str | Path = DEFAULT_ROOT, articles: str | Path | None = None, require_all: bool = True) -> list[Document]:
    """The documents of an annotation folder; raises AnnotationError on any error."""
    documents, problems = check(root, articles, require_all)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise AnnotationError(errors)
    return documents


def save(documents: Iterable[Document], root: str | Path, with_articles: bool = True) -> None:
    """Write `root/spans` (and `root/articles`), each replaced whole, after checking every span."""
    documents = list(documents)
    errors = []
    for d in documents:
        errors += check_document_spans(d.doc, d.text, sorted(d.spans), [None] * len(d.spans))
    errors = [p for p in errors if p.severity == "error"]
    if errors:
        raise AnnotationError(errors)
    root = Path(root)
    with atomic.directory(root / "spans") as tmp:
        for d in documents:
            (tmp / f"{d.doc}.json").write_text(spans_json(d.doc, d.spans), encoding="utf-8")
    if with_articles:
        with atomic.directory(root / "articles") as tmp:
            for d in documents:
                (tmp / f"{d.doc}.txt").write_text(d.text, encoding="utf-8", newline="")


def split(documents: Sequence[Document], fold: int | None) -> tuple[list[Document], list[Document]]:
    """Leave-one-article-out: fold K holds out documents[K] (sorted by doc id); no fold (None) trains on all."""
    if fold is None:
        return list(documents), []
    if not 0 <= fold < len(documents):
        raise ValueError(f"--fold must be in 0..{len(documents) - 1}, got {fold}")
    return [d for i, d in enumerate(documents) if i != fold], [documents[fold]]
