"""brat standoff: `<doc>.txt` and `<doc>.ann` with `T<n><TAB>LABEL START END<TAB>TEXT` lines.

An export folder is replaced whole, so it must be new, empty, or hold only `.txt`/`.ann` files
(an earlier export): anything else in it is refused, never deleted.
"""

from __future__ import annotations

import re
from pathlib import Path

from arner.core import atomic
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError, Document, Problem, attempt, gather, read_text, source_span_errors
from arner.core.names import safe_doc_id, unique_doc_id

OWNED = ("*.txt", "*.ann")
WHAT = "brat output"
OFFSETS = re.compile(r"([0-9]+) ([0-9]+)")  # ASCII digits only: int() would also take "٣", "+3" or "3_0"


def ann(document: Document) -> str:
    return "".join(f"T{i}\t{s.label} {s.start} {s.end}\t{s.text}\n" for i, s in enumerate(document.spans, 1))


def check_out(out: Path) -> None:
    """ValueError unless `out` may be replaced by a brat export (see the module's rule); call before long work."""
    atomic.check_owned(atomic.check_target(out), OWNED, WHAT)


def export(documents: list[Document], out: Path) -> None:
    """`out/<doc>.txt` and `.ann` for every document, replacing `out` whole (only when it holds brat output)."""
    problems, seen, files = [], {}, {}
    for n, d in enumerate(documents):
        try:
            doc = unique_doc_id(d.doc, seen, str(out), context=f"document {n}")
        except AnnotationError as e:
            problems += e.problems
            continue
        files[f"{doc}.txt"], files[f"{doc}.ann"] = d.text, ann(d)
    if problems:
        raise AnnotationError(problems)
    with atomic.directory(out, owned=OWNED, what=WHAT) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8", newline="")


def _span(line: str, n: int, text: str, ann_path: Path) -> tuple[Span | None, Problem | None]:
    """One `T` line as a span (checked against the text), or the problem with it."""
    try:
        _, kind, surface = line.split("\t", 2)
        label, offsets = kind.split(" ", 1)
        if ";" in offsets:
            raise ValueError("discontinuous span")
        match = OFFSETS.fullmatch(offsets)
        if not match:
            raise ValueError(f"offsets {offsets!r} are not two integers")
    except ValueError as e:
        return None, Problem(str(ann_path), f"bad brat line {line!r}: {e}", n)
    start, end = int(match.group(1)), int(match.group(2))
    if text[start:end] != surface:
        return None, Problem(
            str(ann_path), f"text {surface!r} != {ann_path.with_suffix('.txt').name}[{start}:{end}] {text[start:end]!r}", n
        )
    return Span(start, end, label, surface), None


def _document(txt: Path) -> tuple[Document | None, list[Problem]]:
    doc = safe_doc_id(txt.stem, str(txt))
    text = read_text(txt)
    ann_path = txt.with_suffix(".ann")
    if not ann_path.exists():
        return None, [Problem(str(ann_path), "missing .ann file for " + txt.name)]
    spans, problems = [], []
    for n, line in enumerate(read_text(ann_path).split("\n"), 1):  # not splitlines: a surface may hold U+2028
        if not line.startswith("T"):
            continue
        span, problem = _span(line.rstrip("\r"), n, text, ann_path)
        spans += [(span, n)] if span else []
        problems += [problem] if problem else []
    problems += source_span_errors(str(ann_path), text, spans)
    return Document(doc, text, sorted(s for s, _ in spans)), problems


def load(folder: Path) -> list[Document]:
    """Text-bound annotations (T lines) only; discontinuous fragments are an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnnotationError([Problem(str(folder), "not a folder of brat .txt/.ann files")])
    return gather(attempt(lambda txt=txt: _document(txt)) for txt in sorted(folder.glob("*.txt")))
