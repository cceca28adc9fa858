"""Scores of predicted spans against gold: words (seqeval), character spans (nervaluate), errors, bootstrap.

`evaluate(gold, pred)` returns the `metrics.json` object:

- `word`: seqeval in strict IOB2 mode over the spec's word view (`conventions.words` /
  `conventions.word_tags`), one sequence per paragraph (`conventions.paragraphs`, the CoNLL
  blocks); `micro`, `macro` (seqeval's unweighted mean over the labels present in gold or
  predictions) and `per_label`, each `{precision, recall, f1, support}`. Word tags built from
  spans are always valid IOB2, so these equal conlleval's figures on the same words and tags.
- `span`: `spanscore.span_scores` (nervaluate's strict / exact / partial / type schemas).
- `per_doc`: strict span P/R/F1 per document.
- `confusion`: gold label x predicted label among spans with identical boundaries (the diagonal
  is the correct spans), plus counts of `type`, `boundary`, `boundary_type`, `missed` and
  `spurious` errors (see `classify`).
- `bootstrap`: percentile intervals from resampling paragraphs with replacement (seeded); the
  strict span micro F1 is at the top level, other figures under `intervals`.

Undefined ratios (nothing predicted, nothing in gold) are 0, as in seqeval's `zero_division=0`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from arner.core.conventions import LABELS, Span, context, paragraph_words, paragraphs, tags_to_word_ranges, word_tags
from arner.core.corpus import Document
from arner.eval.spanscore import span_scores

RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
ERROR_KINDS = ("missed", "spurious", "boundary", "type", "boundary_type")
# how the reports (report.md, errors.html) title each kind, in the order they list them
KIND_TITLES = {
    "missed": "False negatives (missed gold spans)",
    "spurious": "False positives (spurious predictions)",
    "boundary": "Boundary errors (right label, wrong boundaries)",
    "type": "Type errors (right boundaries, wrong label)",
    "boundary_type": "Boundary and type errors (overlapping, wrong boundaries and label)",
}


def _float(x) -> float:
    x = float(x)
    return 0.0 if math.isnan(x) else x


# --- the word view -------------------------------------------------------------------------------


def word_sequences(document: Document, spans: Sequence[Span]) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted IOB2 tags of `document`, one list per paragraph.

    Tags are built per paragraph, so every sequence is valid IOB2 even when a predicted span
    runs across a line break (it then counts as one word-level entity in each paragraph, as in
    the CoNLL export).
    """
    gold_seqs, pred_seqs = [], []
    for ws in paragraph_words(document.text):
        gold_seqs.append(word_tags(ws, document.spans))
        pred_seqs.append(word_tags(ws, spans))
    return gold_seqs, pred_seqs


def word_scores(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]], labels: Sequence[str] = LABELS) -> dict:
    """seqeval, strict IOB2 mode: `{micro, macro, per_label}` each `{precision, recall, f1, support}`."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    out = {"micro": dict(zero), "macro": dict(zero), "per_label": {lab: dict(zero) for lab in labels}}
    has_entities = any(t != "O" for seq in list(gold_seqs) + list(pred_seqs) for t in seq)
    if not has_entities:
        return out
    report = classification_report(
        [list(s) for s in gold_seqs], [list(s) for s in pred_seqs], mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )

    def block(row: dict) -> dict:
        return {
            "precision": _float(row["precision"]),
            "recall": _float(row["recall"]),
            "f1": _float(row["f1-score"]),
            "support": int(row["support"]),
        }

    out["micro"] = block(report["micro avg"])
    out["macro"] = block(report["macro avg"])
    for lab in labels:
        if lab in report:
            out["per_label"][lab] = block(report[lab])
    return out


def chunk_counts(gold_tags: Sequence[str], pred_tags: Sequence[str]) -> tuple[int, int, int]:
    """conlleval's counts on one sequence: (correct chunks, predicted chunks, gold chunks)."""
    gold = set(tags_to_word_ranges(gold_tags))
    pred = set(tags_to_word_ranges(pred_tags))
    return len(gold & pred), len(pred), len(gold)


# --- errors ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Error:
    """One scoring error: `kind` in ERROR_KINDS, the gold span(s) involved and the predicted span."""

    kind: str
    doc: str
    gold: tuple[Span, ...]
    pred: Span | None
    context: str

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "doc": self.doc,
            "gold": [s.to_json() for s in self.gold],
            "pred": self.pred.to_json() if self.pred else None,
            "context": self.context,
        }


def classify(document: Document, spans: Sequence[Span]) -> tuple[list[tuple[str, str]], list[Error]]:
    """Pair predicted with gold spans of one document.

    Returns the `(gold label, predicted label)` pairs of spans with identical boundaries (correct
    spans and type errors) and the errors, each predicted span counted once:
    - `type`: same boundaries as a gold span, other label;
    - `boundary`: overlaps gold span(s), other boundaries, the label of one of them (an entity
      split in two gives two boundary errors; two entities merged in one gives one);
    - `boundary_type`: overlaps gold span(s), other boundaries, none with its label;
    - `spurious`: overlaps no gold span (false positive);
    - `missed`: a gold span that no prediction touches (false negative).
    """
    gold = sorted(document.spans)
    by_bounds = {(g.start, g.end): g for g in gold}
    pairs, errors, touched = [], [], set()

    def ctx(items: Sequence[Span]) -> str:
        return context(document.text, min(s.start for s in items), max(s.end for s in items))

    for p in sorted(spans):
        same = by_bounds.get((p.start, p.end))
        if same is not None:
            touched.add(same)
            pairs.append((same.label, p.label))
            if same.label != p.label:
                errors.append(Error("type", document.doc, (same,), p, ctx([p])))
            continue
        hit = tuple(g for g in gold if g.start < p.end and p.start < g.end)
        touched.update(hit)
        if not hit:
            errors.append(Error("spurious", document.doc, (), p, ctx([p])))
        else:
            kind = "boundary" if any(g.label == p.label for g in hit) else "boundary_type"
            errors.append(Error(kind, document.doc, hit, p, ctx([p, *hit])))
    for g in gold:
        if g not in touched:
            errors.append(Error("missed", document.doc, (g,), None, ctx([g])))
    errors.sort(key=lambda e: min(s.start for s in (*e.gold, *([e.pred] if e.pred else []))))
    return pairs, errors


def confusion(pairs: Sequence[tuple[str, str]], errors: Sequence[Error], labels: Sequence[str] = LABELS) -> dict:
    matrix = {g: {p: 0 for p in labels} for g in labels}
    for g, p in pairs:
        matrix[g][p] += 1
    counts = {kind: sum(e.kind == kind for e in errors) for kind in ERROR_KINDS}
    return {
        "rows": "gold",
        "columns": "predicted",
        "matrix": matrix,
        "correct": sum(g == p for g, p in pairs),
        **counts,
    }


# --- bootstrap ------------------------------------------------------------------------------------


def resampling_units(document: Document, spans: Sequence[Span]) -> list[tuple[int, int]]:
    """Bootstrap units of one document: `(first, last exclusive)` paragraph indices.

    Each paragraph is a unit, except that a gold or predicted span running across a line
    break joins the paragraphs it touches into one unit, so every span lies in exactly one unit
    and the units' counts add up to the document's.
    """
    pars = paragraphs(document.text)
    starts = [s for s, _ in pars]
    joined = [False] * len(pars)  # joined[i]: paragraph i belongs with paragraph i + 1
    for span in (*document.spans, *spans):
        first = max(bisect.bisect_right(starts, span.start) - 1, 0)
        last = max(bisect.bisect_right(starts, span.end - 1) - 1, 0)
        for i in range(first, last):
            joined[i] = True
    units, begin = [], 0
    for i in range(len(pars)):
        if not joined[i]:
            units.append((begin, i + 1))
            begin = i + 1
    return units


COUNT_NAMES = ["word.correct", "word.predicted", "word.support"]
COUNT_NAMES += [
    f"{schema}.{scope}.{key}"
    for schema in ("strict", "partial")
    for scope in ("micro", *LABELS)
    for key in ("correct", "partial", "predicted", "support")
]


Sequences = list[tuple[list[list[str]], list[list[str]]]]  # `word_sequences` of each document


def unit_counts(gold: Sequence[Document], pred: Sequence[Sequence[Span]], sequences: Sequences | None = None) -> np.ndarray:
    """One row per resampling unit (all documents), columns COUNT_NAMES: the counts every bootstrapped figure needs.

    `sequences`: the documents' `word_sequences` when the caller has them already.
    """
    if sequences is None:
        sequences = [word_sequences(d, s) for d, s in zip(gold, pred)]
    rows = []
    for document, spans, (gold_seqs, pred_seqs) in zip(gold, pred, sequences):
        pars = paragraphs(document.text)
        for first, last in resampling_units(document, spans):
            lo, hi = pars[first][0], pars[last - 1][1]
            row = [sum(x) for x in zip(*(chunk_counts(gold_seqs[i], pred_seqs[i]) for i in range(first, last)))]
            inside = [[s for s in group if lo <= s.start < hi] for group in (document.spans, spans)]
            scores = span_scores([inside[0]], [inside[1]])
            for schema in ("strict", "partial"):
                for scope in ("micro", *LABELS):
                    m = scores[schema]["micro"] if scope == "micro" else scores[schema]["per_label"][scope]
                    row += [m["correct"], m["partial"], m["predicted"], m["support"]]
            rows.append(row)
    return np.asarray(rows, dtype=float).reshape(len(rows), len(COUNT_NAMES))


def _figures(sums: np.ndarray) -> dict[str, np.ndarray]:
    """F1 of each bootstrapped figure from summed counts (any leading shape)."""
    col = {name: sums[..., i] for i, name in enumerate(COUNT_NAMES)}

    def f1_of(correct, predicted, support):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(predicted > 0, correct / np.maximum(predicted, 1e-300), 0.0)
            r = np.where(support > 0, correct / np.maximum(support, 1e-300), 0.0)
            return np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0.0)

    out = {"word_micro_f1": f1_of(col["word.correct"], col["word.predicted"], col["word.support"])}
    for schema in ("strict", "partial"):
        for scope in ("micro", *LABELS):
            key = f"{schema}.{scope}"
            weight = 0.5 if schema == "partial" else 0.0  # nervaluate: partial matches count half
            correct = col[f"{key}.correct"] + weight * col[f"{key}.partial"]
            name = f"span_{schema}_{'micro' if scope == 'micro' else scope}_f1"
            out[name] = f1_of(correct, col[f"{key}.predicted"], col[f"{key}.support"])
    return out


def bootstrap(counts: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED, confidence: float = CONFIDENCE) -> dict:
    """Percentile intervals from resampling the rows of `counts` (paragraphs, see `resampling_units`) with replacement."""
    n = len(counts)
    estimates = {k: float(v) for k, v in _figures(counts.sum(axis=0)).items()}
    alpha = (1 - confidence) / 2
    if n and resamples:
        rng = np.random.default_rng(seed)
        index = rng.integers(0, n, size=(resamples, n))
        # sum counts of each resample in chunks to bound memory
        sums = np.concatenate([counts[index[i : i + 200]].sum(axis=1) for i in range(0, resamples, 200)])
        samples = _figures(sums)
        bounds = {k: (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))) for k, v in samples.items()}
    else:
        bounds = {k: (v, v) for k, v in estimates.items()}
    intervals = {k: {"estimate": estimates[k], "low": bounds[k][0], "high": bounds[k][1]} for k in estimates}
    main = intervals["span_strict_micro_f1"]
    return {
        "metric": "span.strict.micro.f1",
        "estimate": main["estimate"],
        "low": main["low"],
        "high": main["high"],
        "confidence": confidence,
        "method": "percentile",
        "unit": "paragraph (a span across a line break joins the paragraphs it touches)",
        "paragraphs": n,
        "resamples": resamples,
        "seed": seed,
        "intervals": intervals,
    }


# --- everything -----------------------------------------------------------------------------------


def _pred_spans(gold: Sequence[Document], pred: Sequence[Document] | Sequence[Sequence[Span]]) -> list[list[Span]]:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold documents but {len(pred)} predicted")
    out = []
    for g, p in zip(gold, pred):
        if isinstance(p, Document):
            if p.doc != g.doc:
                raise ValueError(f"predicted document {p.doc!r} is paired with gold {g.doc!r}")
            p = p.spans
        out.append(sorted(p))
    return out


def scores(gold: Sequence[Document], pred: Sequence[Document] | Sequence[Sequence[Span]], sequences: Sequences | None = None) -> dict:
    """`{word, span}` of `evaluate`, alone: seqeval over the word view and the span schemas (`sequences` as in `unit_counts`)."""
    pred_spans = _pred_spans(gold, pred)
    if sequences is None:
        sequences = [word_sequences(d, s) for d, s in zip(gold, pred_spans)]
    return {
        "word": word_scores([seq for g, _ in sequences for seq in g], [seq for _, p in sequences for seq in p]),
        "span": span_scores([d.spans for d in gold], pred_spans),
    }


def evaluate(
    gold: Sequence[Document],
    pred: Sequence[Document] | Sequence[Sequence[Span]],
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[dict, list[Error]]:
    """`(metrics, errors)` of predictions paired with gold documents by position."""
    pred_spans = _pred_spans(gold, pred)
    sequences = [word_sequences(d, s) for d, s in zip(gold, pred_spans)]
    per_doc = {}
    all_pairs, all_errors = [], []
    for document, spans in zip(gold, pred_spans):
        strict = span_scores([document.spans], [spans])["strict"]["micro"]
        per_doc[document.doc] = {k: strict[k] for k in ("precision", "recall", "f1", "support", "predicted", "correct")}
        pairs, errors = classify(document, spans)
        all_pairs += pairs
        all_errors += errors
    metrics = {
        **scores(gold, pred_spans, sequences),
        "per_doc": per_doc,
        "confusion": confusion(all_pairs, all_errors),
        "bootstrap": bootstrap(unit_counts(gold, pred_spans, sequences), resamples, seed),
    }
    return metrics, all_errors
