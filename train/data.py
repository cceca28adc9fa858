"""Annotated documents -> model windows with word labels aligned to subwords."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from arner.core.alignment import encode_document
from arner.core.conventions import TAG2ID, word_tags, words
from arner.core.corpus import Document

IGNORE = -100


def window_examples(tokenizer, document: Document, max_length: int, stride: int, label_all_subwords: bool = False) -> list[dict]:
    """One example per window; each word is labelled on its first subword (or on all of them).

    With `label_all_subwords`, continuation subwords take the word's label with B- made I-,
    as in the Hugging Face token-classification example.
    """
    ws = words(document.text)
    tags = word_tags(ws, document.spans)
    enc = encode_document(tokenizer, document.text, ws, max_length, stride)
    token_label = [IGNORE] * len(enc.input_ids)
    for i, t in enumerate(enc.word_first_token):
        if t < 0:
            continue
        token_label[t] = TAG2ID[tags[i]]
        if label_all_subwords:
            cont = TAG2ID["I-" + tags[i][2:]] if tags[i] != "O" else TAG2ID["O"]
            k = t + 1
            while k < len(enc.offsets) and enc.offsets[k][0] < ws[i].end and token_label[k] == IGNORE:
                if k not in enc.word_first_token:
                    token_label[k] = cont
                k += 1
    examples = []
    for w in enc.windows:
        labels = [IGNORE] * len(w.input_ids)
        labels[w.prefix : w.prefix + (w.end - w.start)] = token_label[w.start : w.end]
        examples.append({"input_ids": w.input_ids, "labels": labels, "doc": document.doc, "window": (w.start, w.end)})
    return examples


def fingerprint(documents: Sequence[Document]) -> str:
    """A hash of the texts and spans a model was trained on."""
    h = hashlib.sha256()
    for d in sorted(documents, key=lambda d: d.doc):
        h.update(json.dumps([d.doc, d.text, [s.to_json() for s in d.spans]], ensure_ascii=False).encode())
    return h.hexdigest()[:16]
