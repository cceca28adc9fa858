"""Two baselines that need no GPU, with the same interface: `fit(train_documents)`, `predict(texts)`.

- `Memorization`: longest-match tagging with the surface strings seen as spans in training,
  each with its majority label.
- `CRF`: a linear-chain CRF (sklearn-crfsuite) on the spec's word view, one sequence per
  paragraph; predicted words become spans with `conventions.tags_to_spans`, and proclitics
  are moved out with `conventions.strip_proclitics` as the spec requires.

Both are deterministic: same training documents, same predictions.

**One-to-one label maps only.** Both learn from single labels: neither can marginalize over a
set of allowed tags as the neural trainer does (arner.train.partial). Public corpora therefore
reach them through `arner.core.public.load`, which reads every corpus through a one-to-one map:
the entry's `label_map` when that is one-to-one, else its `label_map_one_to_one`, else the
reference `label_map.tsv` beside the corpus (e.g. `../shared/external/anercorp/label_map.tsv`:
LOC -> PLACE, MISC -> O, no DATE). So with a set-valued map the baselines and the BERT do not
train on the same labels: report them as such. A corpus's `weight` does not apply here (it samples
the trainer's documents); `max_words` does (it is applied when the corpus is read). `fit` refuses
documents that carry allowed-tag sets (`PartialDocument`) rather than silently keeping only their
definite spans.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence

from arner.core.conventions import (
    LABELS,
    MAX_PROCLITICS,
    PROCLITICS,
    Span,
    Word,
    paragraph_words,
    strip_proclitics,
    tags_to_spans,
    word_tags,
    words,
)
from arner.core.corpus import Document


def one_to_one(documents: Sequence[Document], system: str) -> Sequence[Document]:
    """`documents`, refused if any carries allowed-tag sets: a baseline needs single labels (see the module docstring)."""
    partial = next((d.doc for d in documents if getattr(d, "word_sets", None) is not None), None)
    if partial is not None:
        raise ValueError(
            f"the {system} baseline cannot train on set-valued labels (document {partial!r}): "
            "read public corpora with arner.core.public.load, through a one-to-one label map"
        )
    return documents


def proclitic_starts(word: Word) -> list[int]:
    """Where a span may start inside `word`: its first letter, or after 1 to MAX_PROCLITICS leading proclitic letters."""
    starts = [word.start]
    for k in range(1, MAX_PROCLITICS + 1):
        if k >= len(word.text) or word.text[k - 1] not in PROCLITICS:
            break
        starts.append(word.start + k)
    return starts


class Memorization:
    """Tag every occurrence of a surface string seen as a span in training, longest match first.

    A match starts at a word start or after proclitics only (`وروسيا` -> `روسيا`) and ends at a
    word end; at each word the longest match wins, then the one with fewest stripped letters;
    matches never overlap. The label is the surface's majority label in training (ties go to
    the label listed first in `conventions.LABELS`).
    """

    name = "memorization"

    def __init__(self) -> None:
        self.labels: dict[str, str] = {}

    def fit(self, documents: Sequence[Document]) -> Memorization:
        counts: dict[str, Counter] = {}
        for d in one_to_one(documents, self.name):
            for s in d.spans:
                counts.setdefault(s.text, Counter())[s.label] += 1
        self.labels = {text: max(LABELS, key=lambda lab, c=c: (c[lab], -LABELS.index(lab))) for text, c in counts.items()}
        return self

    def predict_one(self, text: str) -> list[Span]:
        if not self.labels:
            return []
        ws = words(text)
        max_len = max(len(s) for s in self.labels)
        spans: list[Span] = []
        i = 0
        while i < len(ws):
            best: tuple[int, int, int] | None = None  # (end, -letters stripped, last word index)
            for start in proclitic_starts(ws[i]):
                j = i
                while j < len(ws) and ws[j].end - start <= max_len:
                    end = ws[j].end
                    key = (end, ws[i].start - start, j)
                    if text[start:end] in self.labels and (best is None or key[:2] > best[:2]):
                        best = key
                    j += 1
            if best is None:
                i += 1
                continue
            end, minus_stripped, j = best
            start = ws[i].start - minus_stripped
            spans.append(Span(start, end, self.labels[text[start:end]], text[start:end]))
            i = j + 1
        return spans

    def predict(self, texts: Sequence[str]) -> list[list[Span]]:
        return [self.predict_one(t) for t in texts]


# --- CRF --------------------------------------------------------------------------------------------


def strip_word(word: str) -> str:
    """The word without one leading proclitic letter (`وروسيا` -> `روسيا`) when 4+ letters remain, else the word.

    A feature only: the word itself is a feature too, so names that begin with و ف ب ل ك keep
    their own weight.
    """
    if len(word) > 4 and word[0] in PROCLITICS:
        return word[1:]
    return word


def without_article(word: str) -> str:
    """The word without a leading ال when 3+ letters remain."""
    return word[2:] if word.startswith("ال") and len(word) > 4 else word


def shape(word: str) -> str:
    """Character classes, runs collapsed: Arabic letter `a`, other letters `x`/`X`, digit `d`, mark `m`."""
    out = []
    for c in word:
        cat = unicodedata.category(c)
        if cat[0] == "N":
            k = "d"
        elif cat[0] == "M":
            k = "m"
        elif "\u0600" <= c <= "\u06ff" or "\u0750" <= c <= "\u077f" or "\ufb50" <= c <= "\ufeff":
            k = "a"
        else:
            k = "X" if c.isupper() else "x"
        if not out or out[-1] != k:
            out.append(k)
    return "".join(out)


def _between(text: str, a: int, b: int) -> str:
    """What separates two words: their punctuation, or `_` for whitespace only."""
    gap = "".join(c for c in text[a:b] if not c.isspace())
    return gap[:3] or "_"


def word_features(text: str, ws: Sequence[Word], i: int) -> dict[str, str | float]:
    """Word, proclitic-stripped form, prefixes/suffixes, shape, punctuation around it, and two neighbours each side.

    No feature looks at the training spans (a "seen as an entity" feature would be true of every
    training entity and teach the CRF to tag only what it has seen).
    """
    w = ws[i].text
    stem = strip_word(w)
    f: dict[str, str | float] = {
        "bias": 1.0,
        "w": w,
        "stem": stem,
        "stem.noal": without_article(stem),
        "proclitic": w[0] if stem != w else "",
        "shape": shape(w),
        "len": str(min(len(w), 10)),
        "before": _between(text, ws[i - 1].end if i else 0, ws[i].start),
        "after": _between(text, ws[i].end, ws[i + 1].start if i + 1 < len(ws) else len(text)),
    }
    for k in (1, 2, 3):
        f[f"pre{k}"] = stem[:k]
        f[f"suf{k}"] = w[-k:]
    for off in (-2, -1, 1, 2):
        j = i + off
        if 0 <= j < len(ws):
            o = ws[j].text
            f[f"{off}:w"] = o
            f[f"{off}:stem"] = strip_word(o)
            f[f"{off}:suf2"] = o[-2:]
            f[f"{off}:shape"] = shape(o)
        else:
            f[f"{off}:w"] = "<BOS>" if j < 0 else "<EOS>"
    if i + 1 < len(ws):
        f["+1:bigram"] = f"{stem}|{strip_word(ws[i + 1].text)}"
    if i:
        f["-1:bigram"] = f"{strip_word(ws[i - 1].text)}|{stem}"
    return f


class CRF:
    """sklearn-crfsuite CRF (L-BFGS, elastic net) on word features; deterministic.

    A linear-chain CRF could in principle marginalize over partial labels (Tsuboi et al. 2008), but
    crfsuite trains on one tag per word only: public corpora reach it through one-to-one maps
    (`arner.core.public.load`), and `fit` refuses documents with allowed-tag sets.
    """

    name = "crf"

    def __init__(self, c1: float = 0.05, c2: float = 0.05, max_iterations: int = 150) -> None:
        self.params = {"c1": c1, "c2": c2, "max_iterations": max_iterations}
        self.known: frozenset[str] = frozenset()
        self.model = None

    def _sequence(self, text: str, ws: Sequence[Word]) -> list[dict]:
        return [word_features(text, ws, i) for i in range(len(ws))]

    def fit(self, documents: Sequence[Document]) -> CRF:
        import sklearn_crfsuite

        self.known = frozenset(s.text for d in one_to_one(documents, self.name) for s in d.spans)
        xs, ys = [], []
        for d in documents:
            for ws in paragraph_words(d.text):
                xs.append(self._sequence(d.text, ws))
                ys.append(word_tags(ws, d.spans))
        self.model = sklearn_crfsuite.CRF(algorithm="lbfgs", all_possible_transitions=True, **self.params)
        if xs:
            self.model.fit(xs, ys)
        else:
            self.model = None
        return self

    def predict_one(self, text: str) -> list[Span]:
        if self.model is None:
            return []
        spans = []
        for ws in paragraph_words(text):
            tags = self.model.predict_single(self._sequence(text, ws))
            spans += [strip_proclitics(text, s, self.known) for s in tags_to_spans(text, ws, tags)]
        return spans

    def predict(self, texts: Sequence[str]) -> list[list[Span]]:
        return [self.predict_one(t) for t in texts]


BASELINES = {"memorization": Memorization, "crf": CRF}
