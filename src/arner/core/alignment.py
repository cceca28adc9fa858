"""Subword tokens <-> the spec's words, and documents <-> model windows.

Training labels, inference decoding and evaluation all read words through here, so a
word's prediction always comes from the same token: the first subword overlapping it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from arner.core.conventions import Word


@dataclass(frozen=True)
class Window:
    """Content tokens `[start, end)` of a document, wrapped in the model's special tokens."""

    start: int
    end: int
    input_ids: list[int]
    prefix: int  # number of special tokens before the content


@dataclass(frozen=True)
class EncodedDocument:
    input_ids: list[int]
    offsets: list[tuple[int, int]]
    word_first_token: list[int]  # per word: index of its first subword token, -1 if none
    windows: list[Window]


def first_tokens(offsets: Sequence[tuple[int, int]], words: Sequence[Word]) -> list[int]:
    """For each word, the first non-empty token whose characters overlap it (-1 when none does)."""
    if not words:
        return []
    if not offsets:
        return [-1] * len(words)
    spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    keep = np.flatnonzero(spans[:, 1] > spans[:, 0])  # skip empty tokens
    ends = spans[keep, 1]
    w_start = np.fromiter((w.start for w in words), dtype=np.int64, count=len(words))
    w_end = np.fromiter((w.end for w in words), dtype=np.int64, count=len(words))
    k = np.searchsorted(ends, w_start, side="right")  # first kept token ending after the word starts
    valid = k < len(keep)
    idx = np.where(valid, keep[np.minimum(k, len(keep) - 1)], -1)
    valid &= spans[np.maximum(idx, 0), 0] < w_end
    return np.where(valid, idx, -1).tolist()


def plan_windows(n_tokens: int, word_starts: Sequence[bool], size: int, stride: int) -> list[tuple[int, int]]:
    """Cover `n_tokens` with windows of at most `size` tokens overlapping by about `stride`.

    Window edges are moved to word starts when possible, so no word is cut, and each
    window starts no later than the previous one ends, so no token is dropped.
    """
    if size < 1 or not 0 <= stride < size:
        raise ValueError(f"need size >= 1 and 0 <= stride < size, got size={size}, stride={stride}")
    spans, start = [], 0
    while True:
        end = min(n_tokens, start + size)
        if end < n_tokens:
            cut = end
            while cut > start + 1 and not word_starts[cut]:
                cut -= 1
            end = cut if cut > start + 1 else end
        spans.append((start, end))
        if end >= n_tokens:
            return spans
        nxt = max(start + 1, end - stride)
        while nxt > start + 1 and not word_starts[nxt]:
            nxt -= 1
        start = min(nxt, end)


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The special token ids a tokenizer puts before and after one sequence ([CLS] … [SEP], <s> … </s>)."""
    content = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(content) + 1):
        if full[i : i + len(content)] == content:
            return full[:i], full[i + len(content) :]
    raise ValueError(f"cannot find the special tokens of {type(tokenizer).__name__}")


def encode_document(tokenizer, text: str, words: Sequence[Word], max_length: int, stride: int) -> EncodedDocument:
    """Tokenize a whole document once, then cut it into windows of at most `max_length` tokens."""
    return encode_documents(tokenizer, [text], [words], max_length, stride)[0]


def encode_documents(
    tokenizer, texts: Sequence[str], words: Sequence[Sequence[Word]], max_length: int, stride: int
) -> list[EncodedDocument]:
    """`encode_document` for many texts, tokenized in one (parallel) call."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer: character offsets are needed")
    if not texts:
        return []
    batch = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    head, tail = special_tokens(tokenizer)
    size = max_length - len(head) - len(tail)
    return [
        _windowed(ids, [tuple(o) for o in offsets], ws, head, tail, size, stride)
        for ids, offsets, ws in zip(batch["input_ids"], batch["offset_mapping"], words)
    ]


def _windowed(ids, offsets, ws, head, tail, size, stride) -> EncodedDocument:
    firsts = first_tokens(offsets, ws)
    starts = [False] * (len(ids) + 1)
    for t in firsts:
        if t >= 0:
            starts[t] = True
    starts[len(ids)] = True
    windows = [Window(a, b, head + ids[a:b] + tail, len(head)) for a, b in plan_windows(len(ids), starts, size, stride)]
    return EncodedDocument(ids, offsets, firsts, windows)


def window_owners(n_tokens: int, windows: Sequence[Window]) -> np.ndarray:
    """For each token, the window in which it sits furthest from an edge (ties: the earlier window).

    Vectorized over tokens; merging overlapping windows this way is deterministic and keeps
    each prediction away from the truncated context at window edges.
    """
    owner = np.full(n_tokens, -1, dtype=np.int64)
    margin = np.full(n_tokens, -1, dtype=np.int64)
    for i, w in enumerate(windows):
        t = np.arange(w.start, w.end)
        m = np.minimum(t - w.start, w.end - 1 - t)
        better = m > margin[w.start : w.end]
        owner[w.start : w.end][better] = i
        margin[w.start : w.end][better] = m[better]
    return owner
