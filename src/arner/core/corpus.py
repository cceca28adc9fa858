"""Annotation folders on disk: `articles/<doc>.txt` plus `spans/<doc>.json`, read, checked and written.

Every problem is reported with its file (and line where there is one), all at once,
so an annotator fixes a folder in one pass: an unreadable file (a broken link, a folder named
like a file, JSON nested too deep) is one more problem, never a traceback. A file that is a
symlink must point inside the annotation folder. Saving replaces `spans/` (and `articles/`) in
one step after everything is checked and encoded, so a failure leaves the folder as it was.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from arner.core import atomic
from arner.core.conventions import Span, overlaps, proclitic_warning, span_problems, words
from arner.core.names import doc_id_problem, unique_doc_id

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


def _unreadable(path: Path, error: OSError) -> str:
    """Why `path` cannot be read, in words an annotator can act on."""
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    if error.errno == errno.ELOOP:
        return "symlink loop"
    if path.is_symlink() and isinstance(error, FileNotFoundError):
        return f"broken symlink to {os.readlink(path)}"
    return f"cannot read: {error.strerror or error}"


def read_text(path: Path) -> str:
    """Decode a UTF-8 file exactly (no newline or any other normalization).

    A missing file stays a FileNotFoundError (a wrong argument); any other unreadable file
    (a broken link, a loop, a folder) is an AnnotationError naming it.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        if not path.is_symlink():
            raise
        raise AnnotationError([Problem(str(path), _unreadable(path, e))]) from None
    except OSError as e:
        raise AnnotationError([Problem(str(path), _unreadable(path, e))]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise AnnotationError([Problem(str(path), f"not UTF-8: invalid byte at offset {e.start}", line)]) from None


def loads_json(raw: str, where: str, line: int | None = None) -> object:
    """Parse JSON; bad JSON, nesting too deep or a number too long is an AnnotationError naming `where`.

    `line` is the file line of `raw` when it is one line of a JSONL file (else JSON's own line).
    """
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise AnnotationError([Problem(where, f"bad JSON: {e.msg} (column {e.colno})", line or e.lineno)]) from None
    except RecursionError:
        raise AnnotationError([Problem(where, "bad JSON: nested too deep", line)]) from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise AnnotationError([Problem(where, f"bad JSON: {e}", line)]) from None


def is_int(value: object) -> bool:
    """An int that is not a bool (JSON `true` would otherwise pass for offset 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


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


SPAN_KEYS = {"start": int, "end": int, "label": str, "text": str}


def parse_span(obj: object, noun: str = "span", allowed: Collection[str] | None = None) -> tuple[Span | None, str | None]:
    """A span from its JSON object, or why it is not one: one rule for span files and predictions files."""
    if not isinstance(obj, dict):
        return None, f"{'an' if noun[0] in 'aeiou' else 'a'} {noun} must be an object, got {obj!r}"
    unknown = sorted(set(obj) - set(allowed)) if allowed is not None else []
    if unknown:
        return None, f"unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(allowed)})"
    for key, typ in SPAN_KEYS.items():
        if key not in obj:
            return None, f"missing key {key!r}"
        if not (is_int(obj[key]) if typ is int else isinstance(obj[key], typ)):
            return None, f"{key!r} must be {typ.__name__}, got {obj[key]!r}"
    return Span(obj["start"], obj["end"], obj["label"], obj["text"]), None


def overlap_problems(
    path: str, spans: Sequence[Span], index: dict[int, int], line_of, noun: str = "span", prefix: str = "", show_label: bool = False
) -> list[Problem]:
    """One problem per overlapping pair: `<prefix><noun> j [...] overlaps <noun> i [...]`, at the later span's line."""

    def show(s: Span) -> str:
        return f"[{s.start}:{s.end} {s.label} {s.text!r}]" if show_label else f"[{s.start}:{s.end} {s.text!r}]"

    return [
        Problem(path, f"{prefix}{noun} {index[id(b)]} {show(b)} overlaps {noun} {index[id(a)]} {show(a)}", line_of(index[id(b)]))
        for a, b in overlaps(spans)
    ]


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
    in_range = [s for s in spans if 0 <= s.start < s.end <= len(text)]
    return problems + overlap_problems(path, in_range, index, lines.__getitem__)


def source_span_errors(where: str, text: str, spans: Sequence[tuple[Span, int | None]], context: str = "") -> list[Problem]:
    """The errors of an imported document's (span, source line) pairs, named by the source file and line.

    Importers report these with their format errors, in one pass, so a user fixes a file once.
    """
    ordered = sorted(spans, key=lambda pair: pair[0])
    found = check_document_spans(where, text, [s for s, _ in ordered], [line for _, line in ordered])
    return [Problem(p.path, f"{context}{p.message}", p.line) for p in found if p.severity == "error"]


def read_spans_file(path: Path, texts: dict[str, str], unreadable: Collection[str] = ()) -> tuple[Document | None, list[Problem]]:
    """Parse and check one span file against the article texts (keyed by doc id).

    A doc in `unreadable` has an article whose own problem is already reported: not "missing" too.
    """
    where = str(path)
    try:
        raw = read_text(path)
        data = loads_json(raw, where)
    except AnnotationError as e:
        return None, e.problems
    if not isinstance(data, dict) or not isinstance(data.get("doc"), str) or not isinstance(data.get("spans"), list):
        return None, [Problem(where, 'expected {"doc": str, "spans": [...]}', 1)]
    doc = data["doc"]
    problems = []
    if doc != path.stem:
        problems.append(Problem(where, f"doc id {doc!r} does not match the file name {path.stem!r}", 2))
    elif bad_id := doc_id_problem(doc):  # e.g. `.x.json`: checked here too, so a folder that checks clean can be saved
        problems.append(Problem(where, bad_id, 2))
    if doc in unreadable:
        return None, problems
    if doc not in texts:
        problems.append(Problem(where, f"no article for doc {doc!r} ({doc}.txt is missing)"))
        return None, problems
    lines: list[int | None] = list(_span_lines(raw))
    if len(lines) != len(data["spans"]):
        lines = [None] * len(data["spans"])
    spans = []
    for i, obj in enumerate(data["spans"]):
        span, error = parse_span(obj)
        if error:
            problems.append(Problem(where, f"span {i}: {error}", lines[i]))
        else:
            spans.append(span)
    if len(spans) == len(data["spans"]):
        problems += check_document_spans(where, texts[doc], spans, lines)
    return Document(doc, texts[doc], spans), problems


def _outside(path: Path, bases: Sequence[Path]) -> Problem | None:
    """A symlink pointing outside the annotation folder: refused, so a folder never reads (or ships) a stray file."""
    if not path.is_symlink():
        return None
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # broken or looping: `read_text` says which
        return None
    if any(target.is_relative_to(base.resolve()) for base in bases):
        return None
    return Problem(
        str(path), f"symlink to {os.readlink(path)} ({target}) points outside the annotation folder {bases[-1]}: copy the file in instead"
    )


def _read_listed(path: Path, bases: Sequence[Path]) -> str:
    """A file listed in an annotation folder: inside it (links included) and readable, else AnnotationError."""
    problem = _outside(path, bases)
    if problem:
        raise AnnotationError([problem])
    return read_text(path)


def read_articles(articles_dir: Path, root: Path | None = None) -> tuple[dict[str, str], list[Problem]]:
    """The texts of `articles_dir/*.txt` by doc id; a link must stay inside `root` (default: the folder's parent)."""
    texts, problems = {}, []
    if not articles_dir.is_dir():
        return texts, [Problem(str(articles_dir), "articles folder not found")]
    bases = [articles_dir, root if root is not None else articles_dir.parent]
    for path in sorted(articles_dir.glob("*.txt")):
        try:
            texts[path.stem] = _read_listed(path, bases)
        except AnnotationError as e:
            problems += e.problems
    return texts, problems


def check(root: str | Path, articles: str | Path | None = None, require_all: bool = True) -> tuple[list[Document], list[Problem]]:
    """Read an annotation folder and return its documents with every problem found."""
    layout = Layout.of(root, articles)
    texts, problems = read_articles(layout.articles, Path(root))
    unreadable = {Path(p.path).stem for p in problems}
    if not layout.spans.is_dir():
        return [], problems + [Problem(str(layout.spans), "spans folder not found")]
    documents, seen = [], {}
    for path in sorted(layout.spans.glob("*.json")):
        escape = _outside(path, [layout.spans, Path(root)])
        doc, found = (None, [escape]) if escape else read_spans_file(path, texts, unreadable)
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


def _encode(where: str, text: str) -> tuple[bytes | None, Problem | None]:
    try:
        return text.encode("utf-8"), None
    except UnicodeEncodeError as e:
        return None, Problem(where, f"text has a lone surrogate at code point {e.start} (not valid Unicode, cannot be written as UTF-8)")


def encode_folder(documents: Sequence[Document], root: Path, with_articles: bool) -> list[dict[str, bytes]]:
    """The bytes of every file of `spans/` (and `articles/`), by name; AnnotationError listing every problem.

    Ids must be safe file names and unique, spans valid, texts encodable: all found before a
    single file is written.
    """
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    spans: dict[str, bytes] = {}
    articles: dict[str, bytes] = {}
    for n, d in enumerate(documents):
        try:
            unique_doc_id(d.doc, seen, str(root), context=f"document {n}")
        except AnnotationError as e:
            problems += e.problems
            continue
        found = check_document_spans(d.doc, d.text, sorted(d.spans), [None] * len(d.spans))
        problems += [p for p in found if p.severity == "error"]
        text, problem = _encode(str(root / "articles" / f"{d.doc}.txt"), d.text)
        if problem is None:  # a span's text is a slice of the text: encodable when the text is
            articles[f"{d.doc}.txt"] = text
            spans[f"{d.doc}.json"], problem = _encode(str(root / "spans" / f"{d.doc}.json"), spans_json(d.doc, d.spans))
        problems += [problem] if problem else []
    if problems:
        raise AnnotationError(problems)
    return [spans, articles] if with_articles else [spans]


def save(documents: Iterable[Document], root: str | Path, with_articles: bool = True) -> None:
    """Replace `root/spans` (and `root/articles`) whole with `documents`, in one step; the rest of `root` is kept.

    Everything is checked and encoded first (AnnotationError naming each problem: unsafe or
    duplicate ids, bad spans, texts that are not valid Unicode); the new folders are then
    written beside the old ones and swapped in together, so on any failure (a full disk
    included) `root` is left exactly as it was.
    """
    root = Path(root)
    contents = encode_folder(list(documents), root, with_articles)
    targets = [root / "spans", root / "articles"][: len(contents)]
    with atomic.directories(targets) as temps:
        for tmp, files in zip(temps, contents):
            for name, data in files.items():
                (tmp / name).write_bytes(data)


def split(documents: Sequence[Document], fold: int | None) -> tuple[list[Document], list[Document]]:
    """Leave-one-article-out: fold K holds out documents[K] (sorted by doc id); no fold (None) trains on all."""
    if fold is None:
        return list(documents), []
    if not 0 <= fold < len(documents):
        raise ValueError(f"--fold must be in 0..{len(documents) - 1}, got {fold}")
    return [d for i, d in enumerate(documents) if i != fold], [documents[fold]]


def folds(documents: Sequence[Document]) -> dict[str, int]:
    """The leave-one-article-out fold of each document: K for documents[K], the one fold K holds out (see `split`)."""
    return {d.doc: k for k, d in enumerate(documents)}


def attempt(read: Callable[[], tuple[Document | None, list[Problem]]]) -> tuple[Document | None, list[Problem]]:
    """`read()`, with an AnnotationError it raises turned into its problems (for `gather`)."""
    try:
        return read()
    except AnnotationError as e:
        return None, e.problems


def gather(results: Iterable[tuple[Document | None, list[Problem]]]) -> list[Document]:
    """The documents read from every source, or one AnnotationError with every problem of every source."""
    documents, problems = [], []
    for document, found in results:
        problems += found
        if document is not None:
            documents.append(document)
    if problems:
        raise AnnotationError(problems)
    return documents
