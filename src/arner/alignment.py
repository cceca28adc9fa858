"""Subword tokens <-> the spec's words, and documents <-> model windows.

Training labels, inference decoding and evaluation all read words through here, so a
word's prediction always comes from the same token: the first subword overlapping it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from arner.conventions import Word


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
    """For each word, the first token whose characters overlap it (-1 when no token does)."""
    out = []
    t = 0
    for w in words:
        while t < len(offsets) and offsets[t][1] <= w.start:
            t += 1
        k = t
        while k < len(offsets) and offsets[k][0] < w.end and offsets[k][1] <= offsets[k][0]:
            k += 1  # skip empty tokens
        out.append(k if k < len(offsets) and offsets[k][0] < w.end and offsets[k][1] > w.start else -1)
    return out


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
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer: character offsets are needed")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids, offsets = enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]
    firsts = first_tokens(offsets, words)
    starts = [False] * (len(ids) + 1)
    for t in firsts:
        if t >= 0:
            starts[t] = True
    starts[len(ids)] = True
    head, tail = special_tokens(tokenizer)
    size = max_length - len(head) - len(tail)
    windows = [Window(a, b, head + ids[a:b] + tail, len(head)) for a, b in plan_windows(len(ids), starts, size, stride)]
    return EncodedDocument(ids, offsets, firsts, windows)


def best_window(token: int, windows: Sequence[Window]) -> int:
    """The window in which `token` sits furthest from an edge (ties: the earlier window)."""
    best, best_margin = -1, -1
    for i, w in enumerate(windows):
        if w.start <= token < w.end:
            margin = min(token - w.start, w.end - 1 - token)
            if margin > best_margin:
                best, best_margin = i, margin
    return best
