"""CoNLL: `word<TAB>IOB2 tag`, a blank line between paragraphs, `-DOCSTART-` before each document."""

from __future__ import annotations

from pathlib import Path

from arner.core import atomic
from arner.core.conventions import paragraphs, word_tags, words
from arner.core.corpus import Document


def lines(documents: list[Document], docstart: bool = True) -> list[str]:
    out: list[str] = []
    for d in documents:
        ws = words(d.text)
        tags = word_tags(ws, d.spans)
        if docstart:
            out += ["-DOCSTART-\tO", ""]
        i = 0
        for start, end in paragraphs(d.text):
            block = []
            while i < len(ws) and ws[i].start < end:
                if ws[i].start >= start:
                    block.append(f"{ws[i].text}\t{tags[i]}")
                i += 1
            if block:
                out += block + [""]
    return out


def dumps(documents: list[Document], docstart: bool = True) -> str:
    return "\n".join(lines(documents, docstart)) + "\n"


def export(documents: list[Document], out: Path) -> None:
    atomic.write_text(out, dumps(documents))
