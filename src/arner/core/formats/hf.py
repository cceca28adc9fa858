"""A `datasets.DatasetDict` of paragraphs in the word view, saved with `save_to_disk`.

Each row carries the `fold` of its document, numbered as `arner train --fold` and `arner cv` number
them (`corpus.split`: fold K holds out the K-th document of the folder), so
`ds.filter(lambda r: r["fold"] != k)` is the training data of fold k and `r["fold"] == k` its held-out article.
"""

from __future__ import annotations

from pathlib import Path

from arner.core import atomic
from arner.core.conventions import TAGS, paragraphs, word_tags, words
from arner.core.corpus import Document, folds


def features():
    from datasets import ClassLabel, Features, Sequence, Value

    return Features(
        {
            "id": Value("string"),
            "doc": Value("string"),
            "paragraph": Value("int32"),
            "fold": Value("int32"),
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(ClassLabel(names=list(TAGS))),
            "char_starts": Sequence(Value("int32")),
            "char_ends": Sequence(Value("int32")),
        }
    )


def rows(documents: list[Document]) -> list[dict]:
    """One row per paragraph; char offsets index the whole article text; `fold` as `corpus.split` numbers `documents`."""
    out, fold = [], folds(documents)
    for d in documents:
        ws = words(d.text)
        tags = word_tags(ws, d.spans)
        for k, (start, end) in enumerate(paragraphs(d.text)):
            idx = [i for i, w in enumerate(ws) if start <= w.start < end]
            out.append(
                {
                    "id": f"{d.doc}-{k}",
                    "doc": d.doc,
                    "paragraph": k,
                    "fold": fold[d.doc],
                    "tokens": [ws[i].text for i in idx],
                    "ner_tags": [tags[i] for i in idx],
                    "char_starts": [ws[i].start for i in idx],
                    "char_ends": [ws[i].end for i in idx],
                }
            )
    return out


def to_dataset_dict(documents: list[Document]):
    from datasets import Dataset, DatasetDict

    return DatasetDict({"train": Dataset.from_list(rows(documents), features=features())})


def export(documents: list[Document], out: Path) -> None:
    """`save_to_disk` into `out`, replaced whole: refused when `out` holds anything but an earlier export."""
    dataset = to_dataset_dict(documents)
    with atomic.directory(out, owned=("dataset_dict.json", "train/"), what="a saved DatasetDict") as tmp:
        dataset.save_to_disk(str(tmp))
