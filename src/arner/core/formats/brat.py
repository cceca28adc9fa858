"""brat standoff: `<doc>.txt` and `<doc>.ann` with `T<n><TAB>LABEL START END<TAB>TEXT` lines."""

from __future__ import annotations

from pathlib import Path

from arner.core import atomic
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError, Document, Problem, read_text


def ann(document: Document) -> str:
    return "".join(f"T{i}\t{s.label} {s.start} {s.end}\t{s.text}\n" for i, s in enumerate(document.spans, 1))


def export(documents: list[Document], out: Path) -> None:
    with atomic.directory(out) as tmp:
        for d in documents:
            (tmp / f"{d.doc}.txt").write_text(d.text, encoding="utf-8", newline="")
            (tmp / f"{d.doc}.ann").write_text(ann(d), encoding="utf-8")


def load(folder: Path) -> list[Document]:
    """Text-bound annotations (T lines) only; discontinuous fragments are an error."""
    documents, problems = [], []
    for txt in sorted(Path(folder).glob("*.txt")):
        text = read_text(txt)
        ann_path = txt.with_suffix(".ann")
        if not ann_path.exists():
            problems.append(Problem(str(ann_path), "missing .ann file for " + txt.name))
            continue
        spans = []
        for n, line in enumerate(read_text(ann_path).splitlines(), 1):
            if not line.startswith("T"):
                continue
            try:
                _, kind, surface = line.split("\t", 2)
                label, offsets = kind.split(" ", 1)
                if ";" in offsets:
                    raise ValueError("discontinuous span")
                start, end = (int(x) for x in offsets.split())
            except ValueError as e:
                problems.append(Problem(str(ann_path), f"bad brat line {line!r}: {e}", n))
                continue
            if text[start:end] != surface:
                problems.append(Problem(str(ann_path), f"text {surface!r} != {txt.name}[{start}:{end}] {text[start:end]!r}", n))
            spans.append(Span(start, end, label, text[start:end]))
        documents.append(Document(txt.stem, text, sorted(spans)))
    if problems:
        raise AnnotationError(problems)
    return documents
