"""The span, word and label conventions of ../shared/annotation-spec.md, defined once.

Training, evaluation, inference and the annotation tools all import from here, so a
word or a tag means the same thing everywhere.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

import regex

LABELS: tuple[str, ...] = ("ACTOR", "PLACE", "DATE")
TAGS: tuple[str, ...] = ("O",) + tuple(f"{p}-{label}" for label in LABELS for p in ("B", "I"))
TAG2ID: dict[str, int] = {tag: i for i, tag in enumerate(TAGS)}
ID2TAG: dict[int, str] = dict(enumerate(TAGS))

# Attached proclitics that stay outside a span (the article ال stays inside).
PROCLITICS: frozenset[str] = frozenset("وفبلك")
MAX_PROCLITICS = 3  # at most three attached proclitics in a row (وبال...)


@dataclass(frozen=True, order=True)
class Span:
    """A labelled `[start, end)` range of code points; `text` is `doc_text[start:end]`."""

    start: int
    end: int
    label: str
    text: str

    def to_json(self) -> dict:
        return asdict(self)


class Word(NamedTuple):
    """A maximal run of letters, combining marks and digits (the spec's word view).

    A named tuple: a text holds thousands of words, and a tuple is the cheapest immutable record to make.
    """

    start: int
    end: int
    text: str


# Letters (L*), combining marks (M*) and digits (N*) make words. One pattern, from the `regex`
# package (a transformers dependency), so every module splits words alike and fast.
WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+")
_WORD_CHAR = regex.compile(r"[\p{L}\p{M}\p{N}]")


def is_word_char(char: str) -> bool:
    return _WORD_CHAR.match(char) is not None


def is_boundary_char(char: str) -> bool:
    """Whitespace, punctuation and symbols: a span may not begin or end with one."""
    return char.isspace() or unicodedata.category(char)[0] in "PZSC"


def words(text: str) -> list[Word]:
    """Split `text` into words; whitespace and punctuation belong to none."""
    return [Word(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]


def paragraphs(text: str) -> list[tuple[int, int]]:
    """`[start, end)` of each line that holds at least one word: the unit of CoNLL blocks."""
    out = []
    pos = 0
    for line in text.split("\n"):
        end = pos + len(line)
        if WORD.search(line):
            out.append((pos, end))
        pos = end + 1
    return out


def word_tags(words_: Sequence[Word], spans: Iterable[Span]) -> list[str]:
    """IOB2 tags: a word takes the label of the span covering any of its characters."""
    tags = ["O"] * len(words_)
    starts = [w.start for w in words_]
    for span in sorted(spans):
        first = bisect.bisect_right(starts, span.start) - 1
        if first < 0 or words_[first].end <= span.start:
            first += 1
        i = first
        inside = False
        while i < len(words_) and words_[i].start < span.end:
            if words_[i].end > span.start:
                tags[i] = f"{'I' if inside else 'B'}-{span.label}"
                inside = True
            i += 1
    return tags


def tags_to_word_ranges(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Decode IOB2 to `(first_word, last_word_exclusive, label)`.

    An I- tag that does not continue an entity of its label starts a new one, as
    conlleval and seqeval do.
    """
    out: list[tuple[int, int, str]] = []
    current: list | None = None
    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if prefix == "B" or (prefix == "I" and (current is None or current[2] != label)):
            if current:
                out.append(tuple(current))
            current = [i, i + 1, label]
        elif prefix == "I":
            current[1] = i + 1
        else:
            if current:
                out.append(tuple(current))
            current = None
    if current:
        out.append(tuple(current))
    return out


def tags_to_spans(text: str, words_: Sequence[Word], tags: Sequence[str]) -> list[Span]:
    """Word tags back to character spans covering whole words (first word start to last word end)."""
    spans = []
    for first, last, label in tags_to_word_ranges(tags):
        start, end = words_[first].start, words_[last - 1].end
        spans.append(Span(start, end, label, text[start:end]))
    return spans


def strip_proclitics(text: str, span: Span, known: Iterable[str] = ()) -> Span:
    """Move attached proclitics out of a word-aligned span (`وويتكوف` -> `ويتكوف`).

    Arabic names often begin with و ف ب ل ك themselves, so a letter is only stripped
    when the rest of the span is in `known` (surface forms seen as spans).
    """
    known = set(known)
    for k in range(1, MAX_PROCLITICS + 1):
        head = text[span.start : span.start + k]
        if span.start + k >= span.end or any(c not in PROCLITICS for c in head):
            break
        if text[span.start + k : span.end] in known:
            return Span(span.start + k, span.end, span.label, text[span.start + k : span.end])
    return span


def span_problems(text: str, span: Span) -> list[str]:
    """Everything wrong with one span against its document text (empty when valid)."""
    problems = []
    if span.label not in LABELS:
        problems.append(f"unknown label {span.label!r} (expected one of {', '.join(LABELS)})")
    if not (0 <= span.start < span.end <= len(text)):
        problems.append(f"offsets [{span.start}, {span.end}) out of range or reversed (text has {len(text)} code points)")
        return problems
    actual = text[span.start : span.end]
    if actual != span.text:
        problems.append(f"text mismatch: span says {span.text!r}, article has {actual!r}")
    if is_boundary_char(actual[0]) or is_boundary_char(actual[-1]):
        problems.append(f"span {actual!r} begins or ends with whitespace or punctuation")
    return problems


def proclitic_warning(text: str, span: Span, vocabulary: set[str] | None = None) -> str | None:
    """A warning when a span begins, at a word start, with what looks like an attached proclitic.

    Many names begin with و ف ب ل ك (`واشنطن`, `بوتين`), so with a `vocabulary` (the words of
    the document) it warns only when the first word minus its leading proclitics is itself a word
    there (`وويتكوف` next to `ويتكوف`).
    """
    if not (0 <= span.start < len(text)) or text[span.start] not in PROCLITICS:
        return None
    if span.start > 0 and is_word_char(text[span.start - 1]):
        return None
    first = words(text[span.start : span.end])[0].text if words(text[span.start : span.end]) else ""
    if vocabulary is not None:
        stripped = [first[k:] for k in range(1, 3) if len(first) > k + 1 and all(c in PROCLITICS for c in first[:k])]
        if not any(rest in vocabulary for rest in stripped):
            return None
    return f"span {span.text!r} starts with {text[span.start]!r}, which may be a proclitic to leave outside"


def overlaps(spans: Sequence[Span]) -> list[tuple[Span, Span]]:
    """Pairs of spans that overlap or nest (spans sorted by start)."""
    out = []
    widest: Span | None = None
    for span in sorted(spans):
        if widest is not None and span.start < widest.end:
            out.append((widest, span))
        if widest is None or span.end > widest.end:
            widest = span
    return out


def context(text: str, start: int, end: int, width: int = 40) -> str:
    """`left[[span]]right` on one line, `width` characters each side."""
    left = text[max(0, start - width) : start]
    right = text[end : end + width]
    return f"{left}[[{text[start:end]}]]{right}".replace("\n", " ⏎ ")


def paragraph_words(text: str) -> list[list[Word]]:
    """The words of each paragraph (`paragraphs`, the CoNLL blocks)."""
    ws = words(text)
    starts = [w.start for w in ws]
    return [ws[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, end)] for start, end in paragraphs(text)]
