"""Public Arabic NER corpora (CoNLL) mapped onto ACTOR / PLACE / DATE through explicit label maps.

A corpus file has `token TAG` per line (more columns are ignored), a blank line between
sentences; `-DOCSTART-` lines and Wojood's `$#$` separators are skipped. Tags are IOB or
IOB2 and are repaired to IOB2 (an I- that continues nothing starts an entity). Sentences
become `corpus.Document`s (tokens joined by spaces, one sentence a line, spans trimmed to word
characters), so external data flows through the same dataset, training and scoring code as the
annotated articles.

A label map is a TSV with a header and `source<TAB>targets[<TAB>note]` rows. `targets` is one of
ACTOR, PLACE, DATE, O, or a set of them joined by `|`: the corpus's tag says only that the word is
one of these in our scheme (ANERcorp's `LOC` is our ACTOR or PLACE depending on the role the place
plays: `LOC<TAB>ACTOR|PLACE`). A row for `O` says what the corpus's unannotated words may be
(`O<TAB>O|DATE` for a corpus that never annotated dates); without one, O stays O.

Three readings of a corpus, one per consumer:
- `load` / `load_test`: plain documents through a ONE-TO-ONE map (the baselines, which cannot
  marginalize, and the scoring of public test corpora). An entry whose `label_map` is set-valued
  uses its `label_map_one_to_one`, else the reference `label_map.tsv` beside its first file.
- `load_training`: what the neural trainer reads. Through a set-valued map, `PartialDocument`s
  that carry each word's allowed IOB2 tags (`allowed_tags`), trained by marginal likelihood
  (arner.train.partial); through a one-to-one map, the plain documents of `load`.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from arner.core.conventions import LABELS, TAG2ID, Span, is_word_char, tags_to_word_ranges, words
from arner.core.corpus import AnnotationError, Document, Problem, read_text

SKIP_TOKENS = {"-DOCSTART-", "$#$"}
TARGETS = (*LABELS, "O")
SEPARATOR = "|"  # between the targets of a set: `LOC<TAB>ACTOR|PLACE`
PROJECT_MAPS = "configs/"  # a label_map path starting here is the project's own, read from the current folder
MAX_WORDS_SEED = 0  # the fixed order in which `max_words` picks documents: the same for every run and fold
HOW_TO_GET = (
    "the public corpora are read from ../shared/external/ (ANERcorp with the CAMeL Lab split, AQMAR, NewsFANE Gold, "
    "the Wojood sample), each folder with its CoNLL files and label_map.tsv; see each corpus's README for its source and licence"
)

LabelMap = dict[str, tuple[str, ...]]  # source type (or "O") -> allowed targets, in TARGETS order


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]
    path: str = ""
    lines: list[int] = field(default_factory=list)  # line of each token (skipped lines make them non-consecutive)

    @property
    def line(self) -> int:
        """The line of the first token."""
        return self.lines[0]


@dataclass
class PartialDocument(Document):
    """A document whose words may allow several IOB2 tags: `word_sets[i]` for `words(text)[i]`.

    `spans` holds only the entities the map makes definite (one non-O target), for counts and
    fingerprints; training reads `word_sets`.
    """

    word_sets: list[tuple[str, ...]] = field(default_factory=list)


def yaml_number(value: Any) -> Any:
    """YAML 1.1 reads 2e-5 (no dot) as a string: take the number it spells ("abc" is left to be refused)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


class ExternalCorpus(BaseModel):
    """A config entry: CoNLL files of one corpus, its label maps, what to leave out, and how much of it to use.

    A pydantic model so that a run config (arner.train.config) validates its `extra_train` /
    `external_test` entries like any other section: unknown keys and wrong types are errors.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=False)

    name: Annotated[str, Strict()] = ""
    files: list[Annotated[str, Strict()]] = Field(default_factory=list)
    # one-to-one or set-valued; `configs/...` is read from the current folder, any other path from external_root;
    # empty: label_map.tsv beside the first file
    label_map: Annotated[str, Strict()] = ""
    # the one-to-one map of the baselines and scoring when label_map is set-valued (empty: label_map.tsv beside the first file)
    label_map_one_to_one: Annotated[str, Strict()] = ""
    exclude: Annotated[str, Strict()] = ""  # file of 0-based sentence indices to drop (e.g. NewsFANE's overlap with ANERcorp test)
    sentences_per_document: Annotated[int, Strict(), Field(ge=1)] = 20
    # training documents relative to the corpus's size (arner.train.data.weighted): 1 all, 0.2 a fifth (seeded by the run's seed), 2 each twice
    weight: Annotated[float, BeforeValidator(yaml_number), Strict(), Field(gt=0, le=100)] = 1.0
    max_words: Annotated[int, Strict(), Field(ge=0)] = 0  # read at most this many tokens (whole documents; 0: all)

    @property
    def key(self) -> str:
        """The corpus's name in metrics and logs: its `name`, else its first file."""
        return self.name or self.files[0]


def read_conll(path: str | Path) -> list[Sentence]:
    """Sentences of a CoNLL file; malformed lines are errors naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError([Problem(str(path), f"corpus file not found: {HOW_TO_GET}")])
    sentences, problems = [], []
    tokens, tags, lines = [], [], []
    for n, line in enumerate(read_text(path).split("\n"), 1):
        fields = line.split()
        if not fields:
            if tokens:
                sentences.append(Sentence(tokens, tags, str(path), lines))
            tokens, tags, lines = [], [], []
            continue
        if fields[0] in SKIP_TOKENS:
            continue
        if len(fields) < 2:
            problems.append(Problem(str(path), f"expected 'token TAG', got {line!r}", n))
            continue
        tokens.append(fields[0])
        tags.append(fields[1])
        lines.append(n)
    if tokens:
        sentences.append(Sentence(tokens, tags, str(path), lines))
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


# ---------------------------------------------------------------- label maps


def _targets(text: str) -> tuple[tuple[str, ...], str]:
    """(targets in TARGETS order, '' ) or ((), why not) for one map cell such as `ACTOR|PLACE`."""
    parts = text.split(SEPARATOR)
    if not text.strip() or any(not p.strip() for p in parts):
        return (), f"empty target set {text!r}: give one or more of {', '.join(TARGETS)} joined by {SEPARATOR!r}"
    parts = [p.strip() for p in parts]
    unknown = [p for p in parts if p not in TARGETS]
    if unknown:
        where = f" in set {text!r}" if len(parts) > 1 else ""
        return (), f"unknown target {unknown[0]!r}{where} (targets: {', '.join(TARGETS)})"
    if len(set(parts)) < len(parts):
        return (), f"a target is listed twice in {text!r}"
    return tuple(t for t in TARGETS if t in parts), ""


def read_label_map(path: str | Path) -> LabelMap:
    """source -> allowed targets; every bad row is a problem naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError([Problem(str(path), f"label map not found: {HOW_TO_GET}")])
    mapping: LabelMap = {}
    first: dict[str, int] = {}
    problems = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if n == 1 or not line.strip():
            continue  # header
        fields = line.split("\t")
        source = fields[0].strip()
        if len(fields) < 2 or not source:
            problems.append(Problem(str(path), f"expected source<TAB>targets[<TAB>note], got {line!r}", n))
            continue
        targets, why = _targets(fields[1])
        if why:
            problems.append(Problem(str(path), f"source tag {source!r}: {why}", n))
            continue
        if source in first:
            problems.append(Problem(str(path), f"source tag {source!r} mapped twice (first at line {first[source]})", n))
            continue
        if source == "O" and "O" not in targets:
            problems.append(Problem(str(path), f"the O row must allow O (got {fields[1]!r}): unannotated words are not all entities", n))
            continue
        mapping[source], first[source] = targets, n
    if problems:
        raise AnnotationError(problems)
    return mapping


def is_one_to_one(mapping: LabelMap) -> bool:
    """Every source has one target and O stays O: the map gives plain documents."""
    return all(len(t) == 1 for t in mapping.values()) and mapping.get("O", ("O",)) == ("O",)


def has_date(mapping: LabelMap) -> bool:
    return any("DATE" in t for s, t in mapping.items() if s != "O")


def allowed_tags(prefix: str, targets: tuple[str, ...]) -> tuple[str, ...]:
    """The IOB2 tags a word may take, in tag-id order: `prefix` (B or I) is its place in the source span.

    `ACTOR|PLACE` at B gives (B-ACTOR, B-PLACE), at I (I-ACTOR, I-PLACE). A set with O says the source
    span may hold one of our entities only in part (or, for the O row, that one may lie anywhere in
    unannotated text), so such an entity may begin on any of its words: `O|DATE` gives (O, B-DATE, I-DATE).
    """
    free = "O" in targets
    prefixes = ("B", "I") if free else (prefix,)
    tags = {"O"} if free else set()
    tags |= {f"{p}-{t}" for t in targets if t != "O" for p in prefixes}
    return tuple(sorted(tags, key=TAG2ID.__getitem__))


def _map_path(path: str, root: Path) -> Path:
    """A label map path of the config: `configs/...` from the current folder (the project's maps), else from root."""
    return Path(path) if path.startswith(PROJECT_MAPS) else root / path


def reference_map_path(entry: ExternalCorpus, root: Path) -> Path:
    """The corpus's own one-to-one map: label_map.tsv beside its first file."""
    return root / Path(entry.files[0]).parent / "label_map.tsv"


def training_map_path(entry: ExternalCorpus, root: str | Path = ".") -> Path:
    """The entry's own map (one-to-one or set-valued): `label_map`, else label_map.tsv beside the first file."""
    root = Path(root)
    return _map_path(entry.label_map, root) if entry.label_map else reference_map_path(entry, root)


def one_to_one_map(entry: ExternalCorpus, root: str | Path = ".") -> tuple[LabelMap, Path]:
    """The entry's one-to-one map and its path: its own map when that is one-to-one, else `label_map_one_to_one` or the reference."""
    root = Path(root)
    path = training_map_path(entry, root)
    mapping = read_label_map(path)
    if is_one_to_one(mapping):
        return mapping, path
    path = _map_path(entry.label_map_one_to_one, root) if entry.label_map_one_to_one else reference_map_path(entry, root)
    mapping = read_label_map(path)
    if not is_one_to_one(mapping):
        raise AnnotationError([Problem(str(path), "the one-to-one map of a corpus with a set-valued label_map is itself set-valued")])
    return mapping, path


def check_coverage(sentences: list[Sentence], mapping: LabelMap, map_path: Path) -> None:
    """Every source type present in the corpus has a row: one problem per missing type, at its first line."""
    counts: Counter = Counter()
    first: dict[str, tuple[str, int]] = {}
    for s in sentences:
        for k, tag in enumerate(s.tags):
            typ = split_tag(tag)[1]
            if typ and typ not in mapping:
                counts[typ] += 1
                first.setdefault(typ, (s.path, s.lines[k]))
    if counts:
        raise AnnotationError(
            [
                Problem(
                    first[t][0],
                    f"tag {t!r} ({c} word{'s' if c != 1 else ''}, first here) is missing from the label map {map_path}",
                    first[t][1],
                )
                for t, c in counts.most_common()
            ]
        )


# ---------------------------------------------------------------- sentences -> documents


def source_spans(sentence: Sentence) -> list[tuple[int, int, str]]:
    """(first token, last token exclusive, source type), IOB repaired to IOB2 as seqeval reads it."""
    iob = []
    for tag in sentence.tags:
        prefix, typ = split_tag(tag)
        iob.append("O" if prefix == "O" or not typ else f"{prefix}-{typ}")
    return tags_to_word_ranges(iob)


def _layout(block: list[Sentence]) -> tuple[str, list[tuple[int, int, str]]]:
    """The text of a block (a sentence a line, tokens joined by spaces) and its source spans as character ranges."""
    lines, ranges, offset = [], [], 0
    for s in block:
        starts, pos = [], offset
        for t in s.tokens:
            starts.append(pos)
            pos += len(t) + 1
        for first, last, typ in source_spans(s):
            ranges.append((starts[first], starts[last - 1] + len(s.tokens[last - 1]), typ))
        line = " ".join(s.tokens)
        lines.append(line)
        offset += len(line) + 1
    return "\n".join(lines), ranges


def _definite_spans(text: str, ranges: list[tuple[int, int, str]], mapping: LabelMap) -> list[Span]:
    """Spans of the source spans whose map gives one non-O target, trimmed to word characters."""
    spans = []
    for a, b, typ in ranges:
        targets = mapping[typ]
        if len(targets) != 1 or targets[0] == "O":
            continue
        while a < b and not is_word_char(text[a]):
            a += 1
        while b > a and not is_word_char(text[b - 1]):
            b -= 1
        if a < b:
            spans.append(Span(a, b, targets[0], text[a:b]))
    return spans


def _word_sets(text: str, ranges: list[tuple[int, int, str]], mapping: LabelMap) -> list[tuple[str, ...]]:
    """Each word's allowed IOB2 tags: the O row's outside source spans; B/I by its place in a source span inside."""
    ws = words(text)
    sets = [allowed_tags("B", mapping.get("O", ("O",)))] * len(ws)
    starts = [w.start for w in ws]
    for a, b, typ in ranges:
        first = bisect.bisect_left(starts, a)
        for i in range(first, bisect.bisect_left(starts, b)):
            sets[i] = allowed_tags("B" if i == first else "I", mapping[typ])
    return sets


def blocks(sentences: list[Sentence], per_document: int, max_words: int = 0) -> list[tuple[int, list[Sentence]]]:
    """(document index, sentences): consecutive sentences, a document each; capped at `max_words` tokens.

    The cap keeps whole documents picked in a fixed pseudo-random order (seed MAX_WORDS_SEED, the same for
    every run and fold, so a capped corpus is spread over the whole of it rather than its first articles),
    skipping any that would pass the cap, and returns them in corpus order.
    """
    out = [(k // per_document, sentences[k : k + per_document]) for k in range(0, len(sentences), per_document)]
    if not max_words:
        return out
    order = list(range(len(out)))
    random.Random(MAX_WORDS_SEED).shuffle(order)
    kept, total = [], 0
    for i in order:
        size = sum(len(s.tokens) for s in out[i][1])
        if total + size <= max_words:
            kept.append(i)
            total += size
    if not kept:
        raise ValueError(
            f"max_words {max_words} is smaller than every document ({per_document} sentences); raise it or lower sentences_per_document"
        )
    return [out[i] for i in sorted(kept)]


def read_entry(entry: ExternalCorpus, root: str | Path = ".") -> tuple[list[Sentence], str]:
    """All sentences of the entry's files, less `exclude`, and the corpus name; paths are relative to `root`."""
    root = Path(root)
    if not entry.files:
        raise AnnotationError([Problem(entry.name or "external corpus", "no files given")])
    sentences = [s for f in entry.files for s in read_conll(root / f)]
    if entry.exclude:
        drop = {int(x) for x in read_text(root / entry.exclude).split() if x.strip()}
        sentences = [s for i, s in enumerate(sentences) if i not in drop]
    return sentences, entry.name or Path(entry.files[0]).parent.name


def to_documents(sentences: list[Sentence], mapping: LabelMap, name: str, per_document: int = 20, max_words: int = 0) -> list[Document]:
    """Plain documents through a one-to-one map."""
    docs = []
    for k, block in blocks(sentences, per_document, max_words):
        text, ranges = _layout(block)
        docs.append(Document(f"{name}-{k:05d}", text, _definite_spans(text, ranges, mapping)))
    return docs


def to_partial_documents(
    sentences: list[Sentence], mapping: LabelMap, name: str, per_document: int = 20, max_words: int = 0
) -> list[PartialDocument]:
    """Documents with each word's allowed tags through a set-valued map."""
    docs = []
    for k, block in blocks(sentences, per_document, max_words):
        text, ranges = _layout(block)
        docs.append(PartialDocument(f"{name}-{k:05d}", text, _definite_spans(text, ranges, mapping), _word_sets(text, ranges, mapping)))
    return docs


def load_test(entry: ExternalCorpus, root: str | Path = ".") -> tuple[list[Document], bool]:
    """Plain documents of one configured corpus through its one-to-one map, and whether that map has DATE."""
    sentences, name = read_entry(entry, root)
    mapping, path = one_to_one_map(entry, root)
    check_coverage(sentences, mapping, path)
    return to_documents(sentences, mapping, name, entry.sentences_per_document, entry.max_words), has_date(mapping)


def load(entry: ExternalCorpus, root: str | Path = ".") -> list[Document]:
    """Plain documents of one configured corpus, always through a one-to-one map (what the baselines train on)."""
    return load_test(entry, root)[0]


def load_training(entry: ExternalCorpus, root: str | Path = ".") -> list[Document]:
    """What the neural trainer reads: `PartialDocument`s through a set-valued map, plain documents through a one-to-one one."""
    path = training_map_path(entry, root)
    mapping = read_label_map(path)
    sentences, name = read_entry(entry, root)
    check_coverage(sentences, mapping, path)
    make = to_documents if is_one_to_one(mapping) else to_partial_documents  # the map read once, whichever it is
    return make(sentences, mapping, name, entry.sentences_per_document, entry.max_words)
