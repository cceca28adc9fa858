"""Bench data from the annotated articles: whole articles repeated in shuffled rounds, or texts cut to a length."""

from __future__ import annotations

import random
from dataclasses import replace

from arner.core import corpus


def token_counts(tokenizer, texts: list[str]) -> list[int]:
    """Subwords of each text, special tokens left out."""
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def repeat_documents(docs: list[corpus.Document], tokenizer, target_tokens: int, seed: int) -> list[corpus.Document]:
    """Whole articles in shuffled rounds (each round every article once) until `target_tokens` subwords."""
    size = dict(zip([d.doc for d in docs], token_counts(tokenizer, [d.text for d in docs])))
    rng = random.Random(seed)
    out, total = [], 0
    while total < target_tokens or not out:
        order = list(docs)
        rng.shuffle(order)
        for d in order:
            out.append(replace(d, doc=f"{d.doc}-r{len(out):05d}"))
            total += size[d.doc]
            if total >= target_tokens:
                break
    return out


def cut_texts(texts: list[str], tokenizer, length: int, total_tokens: int) -> list[str]:
    """Texts of about `length` subwords, cut at word starts from the articles run together."""
    stream = "\n\n".join(texts)
    offsets = tokenizer(stream, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    out, i = [], 0
    while i < len(offsets) and (not out or len(out) * length < total_tokens):
        j = min(i + length, len(offsets))
        while j < len(offsets) and offsets[j][0] == offsets[j - 1][1] and stream[offsets[j][0] - 1].isalnum():
            j += 1  # do not cut inside a word
        end = offsets[j][0] if j < len(offsets) else len(stream)
        out.append(stream[offsets[i][0] : end].strip())
        i = j
    return out
