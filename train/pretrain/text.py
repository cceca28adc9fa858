"""Reading the text inputs of `arner pretrain`: plain text, `.jsonl` and CoNLL, each optionally gzipped.

Everything here streams: a unit is read, handed on and forgotten, so an input of any size
works. A bad line is an `AnnotationError` naming the file and the line.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path

from arner.core.corpus import AnnotationError, Problem, loads_json
from arner.core.public import SKIP_TOKENS
from arner.train.config import ConfigError, TextInput


def input_kind(path: str | Path) -> str:
    """conll, jsonl or text, from the file name (a trailing .gz is read through gzip)."""
    name = str(path).lower().removesuffix(".gz")
    if name.endswith(".conll"):
        return "conll"
    if name.endswith(".jsonl"):
        return "jsonl"
    return "text"


def _open(path: Path):
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its end) of a UTF-8 file, gzipped or not."""
    n = 0
    try:
        with _open(path) as f:
            for n, line in enumerate(f, 1):
                yield n, line.rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise AnnotationError([Problem(str(path), f"not UTF-8 ({e.reason})", n + 1)]) from None
    except (OSError, EOFError) as e:  # a truncated or corrupt .gz
        raise AnnotationError([Problem(str(path), f"cannot be read: {e}", n + 1)]) from None


def _jsonl_units(path: Path) -> Iterator[tuple[int, str]]:
    for n, line in _lines(path):
        if not line.strip():
            continue
        record = loads_json(line, str(path), n)  # bad JSON, nested too deep, a number too long: one problem naming file and line
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise AnnotationError([Problem(str(path), 'expected a JSON object with a string "text" field', n)])
        yield n - 1, record["text"]


def _conll_units(path: Path) -> Iterator[tuple[int, str]]:
    tokens: list[str] = []
    index = 0
    for _, line in _lines(path):
        fields = line.split()
        if not fields:
            if tokens:
                yield index, " ".join(tokens)
                index += 1
            tokens = []
        elif fields[0] not in SKIP_TOKENS:
            tokens.append(fields[0])
    if tokens:
        yield index, " ".join(tokens)


def read_units(path: str | Path) -> Iterator[tuple[int, str]]:
    """(unit index, text) of one input, streamed: text lines, `.jsonl` records' `text`, CoNLL sentences' tokens.

    Indices count every line of a text or `.jsonl` file (blank ones too) and every sentence of a
    CoNLL file as `arner.core.public.read_conll` does (`-DOCSTART-` and `$#$` lines skipped), so an
    `exclude` file written for `arner.core.public` leaves out the same sentences here.
    """
    path = Path(path)
    kind = input_kind(path)
    if kind == "jsonl":
        yield from _jsonl_units(path)
    elif kind == "conll":
        yield from _conll_units(path)
    else:
        for n, line in _lines(path):
            yield n - 1, line


def _excluded(source: TextInput) -> set[int]:
    if not source.exclude:
        return set()
    path = Path(source.exclude)
    if not path.is_file():
        raise AnnotationError([Problem(str(path), f"exclude file of {source.path} not found")])
    out = set()
    for n, line in _lines(path):
        for x in line.split():
            if not x.isdigit():
                raise AnnotationError([Problem(str(path), f"expected 0-based unit indices, got {x!r}", n)])
            out.add(int(x))
    return out


def iter_texts(source: TextInput) -> Iterator[str]:
    """The non-blank units of one input, minus its excluded ones."""
    drop = _excluded(source)
    for index, unit in read_units(source.path):
        if index not in drop and unit.strip():
            yield unit


def all_texts(inputs: Sequence[TextInput]) -> Iterator[str]:
    """Every unit of every input, in order."""
    for source in inputs:
        yield from iter_texts(source)


def as_inputs(texts: Sequence[str | TextInput | Path]) -> list[TextInput]:
    return [t if isinstance(t, TextInput) else TextInput(path=str(t)) for t in texts]


def check_inputs(inputs: Sequence[TextInput], where: str) -> None:
    if not inputs:
        raise ConfigError(f"{where}: no text to pretrain on: give --text PATH... or list `text:` in the config")
    problems = [Problem(p, "text input not found") for x in inputs for p in (x.path, x.exclude) if p and not Path(p).is_file()]
    if problems:
        raise AnnotationError(problems)


def stamp(path: str) -> list:
    """What says a file changed: its resolved path, size and modification time."""
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def input_stamps(inputs: Sequence[TextInput]) -> list:
    return [[stamp(x.path), x.exclude and stamp(x.exclude)] for x in inputs]
