"""`arner predict`: read texts, tag them, write predictions in the format a user asks for."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from arner.core import atomic
from arner.core.corpus import AnnotationError, Document, Problem, loads_json, read_text
from arner.core.formats import predictions
from arner.core.names import unique_doc_id
from arner.core.results import pipeline_jsonl

FORMATS = ("jsonl", "conll", "brat", "labelstudio", "pipeline", "html")


def _jsonl_docs(path: Path, text: str, seen: dict[str, str]) -> tuple[list[tuple[str, str]], list[Problem]]:
    """`{"id", "text"}` lines; ids (default `<stem>-<line>`) must be safe file names (brat output uses them)."""
    docs, problems = [], []
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines: a text may hold U+2028
        if not line.strip():
            continue
        try:
            row = loads_json(line, str(path), n)
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise AnnotationError([Problem(str(path), 'bad input line: expected {"id": ..., "text": str}', n)])
            docs.append((unique_doc_id(row.get("id", f"{path.stem}-{n}"), seen, str(path), n), row["text"]))
        except AnnotationError as e:
            problems += e.problems
    return docs, problems


def _source_docs(source: str, seen: dict[str, str]) -> tuple[list[tuple[str, str]], list[Problem]]:
    """The documents of one input: stdin (`-`), a `.jsonl` file or a text file."""
    if source == "-":
        try:
            return [(unique_doc_id("stdin", seen, "<stdin>"), sys.stdin.buffer.read().decode("utf-8"))], []
        except UnicodeDecodeError as e:
            return [], [Problem("<stdin>", f"not UTF-8: invalid byte at offset {e.start}")]
        except AnnotationError as e:
            return [], e.problems
    path = Path(source)
    if not path.is_file():
        return [], [Problem(source, "input file not found")]
    try:
        text = read_text(path)
        if path.suffix == ".jsonl":
            return _jsonl_docs(path, text, seen)
        return [(unique_doc_id(path.stem, seen, source), text)], []
    except AnnotationError as e:
        return [], e.problems


def read_inputs(sources: Sequence[str]) -> list[tuple[str, str]]:
    """(doc id, text) pairs from `.txt` files (id = file stem), `-` (stdin) or `.jsonl` `{"id", "text"}` lines.

    Ids are doc ids as everywhere in arner: safe file names (`names.safe_doc_id`), unique among
    all the inputs; AnnotationError lists every problem.
    """
    docs, problems, seen = [], [], {}
    for source in sources or ["-"]:
        found, bad = _source_docs(source, seen)
        docs += found
        problems += bad
    if problems:
        raise AnnotationError(problems)
    return docs


def check_out(fmt: str, out: Path | None) -> None:
    """Fail before any tagging when `out` cannot take `fmt` (brat: a folder of ours; see `brat.check_out`)."""
    from arner.core.formats import brat

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "brat":
        if out is None:
            raise ValueError("--format brat writes a folder: give --out DIR")
        brat.check_out(out)


def render(fmt: str, docs: list[tuple[str, str]], entities: list[list], out: Path | None, model_version: str | None = None) -> str | None:
    """Write `out` (atomically) in `fmt`, or return the text for stdout (`model_version`: the labelstudio
    predictions' name for the model, `labelstudio.model_version` of its folder)."""
    from arner.core.formats import brat, conll, html, labelstudio

    check_out(fmt, out)
    if fmt == "jsonl":
        text = predictions.dumps([(d, ents) for (d, _), ents in zip(docs, entities)])
    elif fmt == "pipeline":
        text = pipeline_jsonl(entities)
    elif fmt == "html":  # one standalone page, every text under its id
        text = html.documents_page(docs, entities)
    else:
        documents = [Document(d, t, [e.span() for e in ents]) for (d, t), ents in zip(docs, entities)]
        if fmt == "brat":
            brat.export(documents, out)
            return None
        if fmt == "conll":
            text = conll.dumps(documents)
        else:
            text = labelstudio.dumps(documents, "predictions", entities, model_version or labelstudio.MODEL_VERSION)
    if out is None:
        return text
    atomic.write_text(out, text)
    return None
