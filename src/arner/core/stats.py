"""Counts a reader of the dataset wants: spans per label per article, words, words per label."""

from __future__ import annotations

from collections import Counter

from arner.core.conventions import LABELS, word_tags, words
from arner.core.corpus import Document
from arner.core.tables import table


def stats(documents: list[Document]) -> dict:
    per_doc = {}
    for d in documents:
        ws = words(d.text)
        tags = word_tags(ws, d.spans)
        spans = Counter(s.label for s in d.spans)
        label_words = Counter(t[2:] for t in tags if t != "O")
        per_doc[d.doc] = {
            "characters": len(d.text),
            "words": len(ws),
            "spans": {lab: spans[lab] for lab in LABELS} | {"total": len(d.spans)},
            "words_in_spans": {lab: label_words[lab] for lab in LABELS} | {"total": sum(label_words.values())},
        }
    total = {
        "characters": sum(v["characters"] for v in per_doc.values()),
        "words": sum(v["words"] for v in per_doc.values()),
        "spans": {k: sum(v["spans"][k] for v in per_doc.values()) for k in (*LABELS, "total")},
        "words_in_spans": {k: sum(v["words_in_spans"][k] for v in per_doc.values()) for k in (*LABELS, "total")},
    }
    return {"documents": per_doc, "total": total}


def markdown(result: dict) -> str:
    header = ["doc", "words", *LABELS, "spans", *(f"{lab} words" for lab in LABELS)]
    rows = [
        [doc, v["words"], *(v["spans"][lab] for lab in LABELS), v["spans"]["total"], *(v["words_in_spans"][lab] for lab in LABELS)]
        for doc, v in [*result["documents"].items(), ("**total**", result["total"])]
    ]
    return "\n".join(table(header, rows, "l" + "r" * (len(header) - 1))) + "\n"
