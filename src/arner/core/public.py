"""Public Arabic NER corpora (CoNLL) mapped onto ACTOR / PLACE / DATE through explicit label maps.

A corpus file has `token TAG` per line (more columns are ignored), a blank line between
sentences; `-DOCSTART-` lines and Wojood's `$#$` separators are skipped. Tags are IOB or
IOB2 and are repaired to IOB2 (an I- that continues nothing starts an entity). A label map
is a TSV with a header and `source<TAB>target[<TAB>note]` rows, target ACTOR, PLACE, DATE
or O. Sentences become `corpus.Document`s (tokens joined by spaces, one sentence a line,
spans trimmed to word characters), so external data flows through the same dataset,
training and scoring code as the annotated articles.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

from arner.core.conventions import LABELS, Span, is_word_char, tags_to_word_ranges
from arner.core.corpus import AnnotationError, Document, Problem, read_text

SKIP_TOKENS = {"-DOCSTART-", "$#$"}
TARGETS = (*LABELS, "O")
HOW_TO_GET = (
    "the public corpora are read from ../shared/external/ (ANERcorp with the CAMeL Lab split, AQMAR, NewsFANE Gold, "
    "the Wojood sample), each folder with its CoNLL files and label_map.tsv; see each corpus's README for its source and licence"
)


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]
    line: int  # line number of the first token


class ExternalCorpus(BaseModel):
    """A config entry: CoNLL files of one corpus, its label map, and sentences to leave out.

    A pydantic model so that a run config (arner.train.config) validates its `extra_train` /
    `external_test` entries like any other section: unknown keys and wrong types are errors.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=False)

    name: Annotated[str, Strict()] = ""
    files: list[Annotated[str, Strict()]] = Field(default_factory=list)
    label_map: Annotated[str, Strict()] = ""
    exclude: Annotated[str, Strict()] = ""  # file of 0-based sentence indices to drop (e.g. NewsFANE's overlap with ANERcorp test)
    sentences_per_document: Annotated[int, Strict(), Field(ge=1)] = 20


def read_conll(path: str | Path) -> list[Sentence]:
    """Sentences of a CoNLL file; malformed lines are errors naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError([Problem(str(path), f"corpus file not found: {HOW_TO_GET}")])
    sentences, problems = [], []
    tokens, tags, first = [], [], 0
    for n, line in enumerate(read_text(path).split("\n"), 1):
        fields = line.split()
        if not fields:
            if tokens:
                sentences.append(Sentence(tokens, tags, first))
            tokens, tags = [], []
            continue
        if fields[0] in SKIP_TOKENS:
            continue
        if len(fields) < 2:
            problems.append(Problem(str(path), f"expected 'token TAG', got {line!r}", n))
            continue
        if not tokens:
            first = n
        tokens.append(fields[0])
        tags.append(fields[1])
    if tokens:
        sentences.append(Sentence(tokens, tags, first))
    if problems:
        raise AnnotationError(problems)
    return sentences


def split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type): `B-LOC` -> (B, LOC); `I--ORG` -> (I, ORG); `O` -> (O, ""); a bare `MIS` -> (I, MIS)."""
    if tag == "O":
        return "O", ""
    if tag[:2] in ("B-", "I-"):
        return tag[0], tag[2:].lstrip("-")
    return "I", tag


def read_label_map(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise AnnotationError([Problem(str(path), f"label map not found: {HOW_TO_GET}")])
    mapping, problems = {}, []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if n == 1 or not line.strip():
            continue  # header
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in TARGETS:
            problems.append(Problem(str(path), f"expected source<TAB>target with target in {TARGETS}, got {line!r}", n))
            continue
        if fields[0] in mapping:
            problems.append(Problem(str(path), f"source tag {fields[0]!r} mapped twice", n))
        mapping[fields[0]] = fields[1]
    if problems:
        raise AnnotationError(problems)
    return mapping


def mapped_tags(sentence: Sentence, mapping: dict[str, str], where: str, unknown: Counter) -> list[str]:
    """IOB2 tags over ACTOR/PLACE/DATE: types mapped, then I- that continue nothing made B-."""
    out, prev_type = [], ""
    for tag in sentence.tags:
        prefix, typ = split_tag(tag)
        if prefix == "O":
            out.append("O")
            prev_type = ""
            continue
        if typ not in mapping:
            unknown[typ] += 1
            out.append("O")
            prev_type = ""
            continue
        target = mapping[typ]
        if target == "O":
            out.append("O")
        elif prefix == "I" and prev_type == typ and out and out[-1] != "O" and out[-1][2:] == target:
            out.append(f"I-{target}")
        else:
            out.append(f"B-{target}")
        prev_type = typ
    return out


def to_documents(sentences: list[Sentence], mapping: dict[str, str], name: str, where: str, per_document: int = 20) -> list[Document]:
    """Group sentences into documents (one sentence a line) with character spans on word characters."""
    unknown: Counter = Counter()
    documents = []
    for k in range(0, len(sentences), per_document):
        lines, spans, offset = [], [], 0
        for s in sentences[k : k + per_document]:
            starts, pos = [], offset
            for t in s.tokens:
                starts.append(pos)
                pos += len(t) + 1
            line = " ".join(s.tokens)
            for first, last, label in tags_to_word_ranges(mapped_tags(s, mapping, where, unknown)):
                a, b = starts[first], starts[last - 1] + len(s.tokens[last - 1])
                while a < b and not is_word_char(line[a - offset]):
                    a += 1
                while b > a and not is_word_char(line[b - 1 - offset]):
                    b -= 1
                if a < b:
                    spans.append(Span(a, b, label, line[a - offset : b - offset]))
            lines.append(line)
            offset += len(line) + 1
        documents.append(Document(f"{name}-{k // per_document:05d}", "\n".join(lines), spans))
    if unknown:
        listed = ", ".join(f"{t} ({c})" for t, c in unknown.most_common())
        raise AnnotationError([Problem(where, f"tags missing from the label map: {listed}")])
    return documents


def load_test(entry: ExternalCorpus, root: str | Path = ".") -> tuple[list[Document], bool]:
    """Documents of one configured corpus, and whether its label map has DATE.

    Paths are relative to `root`; the label map is `entry.label_map`, else `label_map.tsv` beside the first file.
    """
    root = Path(root)
    if not entry.files:
        raise AnnotationError([Problem(entry.name or "external corpus", "no files given")])
    sentences = [s for f in entry.files for s in read_conll(root / f)]
    mapping = read_label_map(root / (entry.label_map or Path(entry.files[0]).parent / "label_map.tsv"))
    if entry.exclude:
        drop = {int(x) for x in read_text(root / entry.exclude).split() if x.strip()}
        sentences = [s for i, s in enumerate(sentences) if i not in drop]
    name = entry.name or Path(entry.files[0]).parent.name
    return to_documents(sentences, mapping, name, str(root / entry.files[0]), entry.sentences_per_document), has_date(mapping)


def load(entry: ExternalCorpus, root: str | Path = ".") -> list[Document]:
    """Documents of one configured corpus; paths are relative to `root`."""
    return load_test(entry, root)[0]


def has_date(mapping: dict[str, str]) -> bool:
    return "DATE" in mapping.values()
