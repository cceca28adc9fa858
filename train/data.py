"""Annotated documents -> model windows with word labels aligned to subwords.

A word's label is an integer the collator pads like any other: below `len(TAGS)` a single IOB2 tag,
as always; from `len(TAGS)` up, an index into `TagSets`, the sets of tags a set-valued label map
allows (a public corpus's `LOC` is our `B-ACTOR` or `B-PLACE`). The loss of those ids is the
marginal likelihood of the set (arner.train.partial). `weighted` picks a public corpus's documents
for its `weight`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable, Sequence

from arner.core.alignment import encode_document
from arner.core.conventions import TAG2ID, TAGS, word_tags, words
from arner.core.corpus import Document
from arner.core.public import LabelMap, allowed_tags

IGNORE = -100


def continuation(tags: Sequence[str]) -> tuple[str, ...]:
    """The tags a word's later subwords take (`label_all_subwords`): B- made I-."""
    return tuple(sorted({"I" + t[1:] if t.startswith("B-") else t for t in tags}, key=TAG2ID.__getitem__))


class TagSets:
    """The registry of label ids >= len(TAGS): each a set of two or more (but not all) IOB2 tags.

    Built from the label maps, not from the data, so ids do not depend on which sentences a run
    reads; sets are ordered by size, then by their tag ids, so the ids are the same on every run.
    A set of one tag is that tag's own id; a set of every tag says nothing and is IGNORE.
    """

    def __init__(self, sets: Iterable[Sequence[str]] = ()):
        unique = {tuple(sorted(set(s), key=TAG2ID.__getitem__)) for s in sets}
        ordered = sorted((s for s in unique if 1 < len(s) < len(TAGS)), key=lambda s: (len(s), [TAG2ID[t] for t in s]))
        self.sets: list[tuple[str, ...]] = ordered
        self.ids = {s: len(TAGS) + k for k, s in enumerate(ordered)}

    @classmethod
    def from_maps(cls, maps: Iterable[LabelMap]) -> TagSets:
        """Every set a map can give a word (at B and I, and as a continuation subword)."""
        sets = []
        for mapping in maps:
            for targets in mapping.values():
                for prefix in ("B", "I"):
                    tags = allowed_tags(prefix, targets)
                    sets += [tags, continuation(tags)]
        return cls(sets)

    def __len__(self) -> int:
        return len(self.sets)

    def encode(self, tags: Sequence[str]) -> int:
        """The label id of a word allowed `tags`."""
        key = tuple(sorted(set(tags), key=TAG2ID.__getitem__))
        if len(key) == 1:
            return TAG2ID[key[0]]
        if len(key) == len(TAGS):
            return IGNORE
        if key not in self.ids:
            raise KeyError(f"tag set {'|'.join(key)} is not in the registry (built from the label maps)")
        return self.ids[key]

    def masks(self) -> list[list[bool]]:
        """Row `id`: the tags label `id` allows; one-hot rows for the single tags first."""
        rows = [[i == j for j in range(len(TAGS))] for i in range(len(TAGS))]
        return rows + [[t in s for t in TAGS] for s in self.sets]


def word_labels(document: Document, ws: Sequence, label_sets: TagSets | None) -> list[tuple[str, ...]]:
    """Each word's allowed tags: its one tag from the spans, or a PartialDocument's word sets (which need the registry)."""
    sets = getattr(document, "word_sets", None)
    if sets is None:
        return [(t,) for t in word_tags(ws, document.spans)]
    if label_sets is None:  # ids from this document alone would clash with other documents' ids
        raise ValueError(f"{document.doc}: a document with allowed-tag sets needs the run's TagSets registry")
    if len(sets) != len(ws):
        raise ValueError(f"{document.doc}: {len(sets)} word tag sets for {len(ws)} words")
    return sets


def window_examples(
    tokenizer, document: Document, max_length: int, stride: int, label_all_subwords: bool = False, label_sets: TagSets | None = None
) -> list[dict]:
    """One example per window; each word is labelled on its first subword (or on all of them).

    With `label_all_subwords`, continuation subwords take the word's label with B- made I-,
    as in the Hugging Face token-classification example. A `PartialDocument`'s words take the ids
    of their allowed sets in `label_sets`.
    """
    ws = words(document.text)
    sets = word_labels(document, ws, label_sets)
    label_sets = label_sets or TagSets()  # single tags need no registry
    enc = encode_document(tokenizer, document.text, ws, max_length, stride)
    token_label = [IGNORE] * len(enc.input_ids)
    for i, t in enumerate(enc.word_first_token):
        if t < 0:
            continue
        token_label[t] = label_sets.encode(sets[i])
        if label_all_subwords:
            cont = label_sets.encode(continuation(sets[i]))
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
    """A hash of the texts and spans (and allowed word tags, where a map gave sets) a model was trained on."""
    h = hashlib.sha256()
    for d in sorted(documents, key=lambda d: d.doc):
        row = [d.doc, d.text, [s.to_json() for s in d.spans]]
        if getattr(d, "word_sets", None) is not None:
            row.append(d.word_sets)
        h.update(json.dumps(row, ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def weighted(documents: Sequence[Document], weight: float, seed: int, name: str) -> list[Document]:
    """The documents a run trains on for a corpus of this `weight`: floor(weight) copies of each, plus a seeded sample.

    The sample (round(fraction x documents) of them, kept in corpus order) depends only on the run's
    seed and the corpus name, so every cv fold trains on the same extra data. Documents, not windows,
    are drawn so that the choice does not depend on the tokenizer (learned per fold for the tiny model).
    The sample is fixed for the run, not drawn again each epoch: the loop's batches come from one
    fixed list of windows (arner.train.loop), so a weight below 1 is a seeded subset of the corpus.
    """
    whole, fraction = int(math.floor(weight)), weight - math.floor(weight)
    count = round(fraction * len(documents))
    if not whole and documents:
        count = max(1, count)  # a small weight still trains on something
    picked = sorted(random.Random(f"{seed}-{name}").sample(range(len(documents)), count))
    return [d for d in documents for _ in range(whole)] + [documents[i] for i in picked]
