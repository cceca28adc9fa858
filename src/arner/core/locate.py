"""Turn an annotator's mention list into character spans, so no offset is ever typed by hand.

A mention file `<doc>.tsv` lists, in document order, one mention a line:
`LABEL<TAB>SURFACE[<TAB>LEFT]`. Each mention is matched at the next occurrence of
SURFACE after the previous mention that ends at a word end and starts at a word start
or after proclitics only (`وويتكوف` -> `ويتكوف`); LEFT, when given, must be the text
just before it. Lines starting with `;` are comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from arner.core.conventions import LABELS, PROCLITICS, Span, is_word_char
from arner.core.corpus import AnnotationError, Document, Problem, read_text


@dataclass(frozen=True)
class Mention:
    line: int
    label: str
    surface: str
    left: str = ""


def parse_mentions(path: Path) -> list[Mention]:
    mentions, problems = [], []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip() or line.startswith(";"):
            continue
        parts = line.split("\t")
        if len(parts) not in (2, 3) or parts[0] not in LABELS or not parts[1]:
            problems.append(Problem(str(path), f"expected LABEL<TAB>SURFACE[<TAB>LEFT] with LABEL in {LABELS}, got {line!r}", n))
            continue
        mentions.append(Mention(n, parts[0], parts[1], parts[2] if len(parts) == 3 else ""))
    if problems:
        raise AnnotationError(problems)
    return mentions


def _fits(text: str, start: int, end: int, left: str) -> bool:
    if end < len(text) and is_word_char(text[end]) and is_word_char(text[end - 1]):
        return False
    word_start = start
    while word_start > 0 and is_word_char(text[word_start - 1]):
        word_start -= 1
    if any(c not in PROCLITICS for c in text[word_start:start]):
        return False
    return not left or text[:start].endswith(left)


def locate(text: str, mentions: list[Mention], where: str = "") -> list[Span]:
    """Spans for `mentions` in order; AnnotationError names every mention not found."""
    spans, problems, cursor = [], [], 0
    for m in mentions:
        pos = cursor
        while (i := text.find(m.surface, pos)) >= 0 and not _fits(text, i, i + len(m.surface), m.left):
            pos = i + 1
        if i < 0:
            problems.append(Problem(where, f"{m.label} {m.surface!r} not found after offset {cursor}", m.line))
            continue
        spans.append(Span(i, i + len(m.surface), m.label, m.surface))
        cursor = i + len(m.surface)
    if problems:
        raise AnnotationError(problems)
    return spans


def locate_folder(mentions_dir: Path, texts: dict[str, str]) -> list[Document]:
    """Documents for every `<doc>.tsv` in `mentions_dir`, with all problems raised at once."""
    documents, problems = [], []
    for path in sorted(Path(mentions_dir).glob("*.tsv")):
        if path.stem not in texts:
            problems.append(Problem(str(path), f"no article for doc {path.stem!r}"))
            continue
        try:
            spans = locate(texts[path.stem], parse_mentions(path), str(path))
            documents.append(Document(path.stem, texts[path.stem], spans))
        except AnnotationError as e:
            problems += e.problems
    if problems:
        raise AnnotationError(problems)
    return documents
