"""Scores on public corpora whose label schemes differ from ours.

These corpora tag countries and cities by type (LOC/GPE), not by role, so besides the strict
per-label score a *loose* score merges ACTOR and PLACE into one NAME label: a role error on a
country does not count there. DATE is scored only where the corpus has DATE; elsewhere DATE
predictions are left out rather than counted as spurious.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from arner.core import public as external
from arner.core.conventions import LABELS, Span
from arner.core.corpus import Document
from arner.core.tables import table
from arner.eval.spanscore import span_scores

NAME = "NAME"


def _merge(spans: Sequence[Span]) -> list[Span]:
    return [Span(s.start, s.end, NAME if s.label in ("ACTOR", "PLACE") else s.label, s.text) for s in spans]


def external_scores(gold: Sequence[Document], pred: Sequence[Sequence[Span]], has_date: bool) -> dict:
    """`strict` (per mapped label) and `loose` (ACTOR+PLACE merged) span scores, micro and per label."""
    labels = LABELS if has_date else ("ACTOR", "PLACE")
    pred = [[s for s in p if s.label in labels] for p in pred]
    strict = span_scores([d.spans for d in gold], pred, labels)
    loose_labels = (NAME, "DATE") if has_date else (NAME,)
    loose = span_scores([_merge(d.spans) for d in gold], [_merge(p) for p in pred], loose_labels)
    return {
        "labels": list(labels),
        "has_date": has_date,
        "documents": len(gold),
        "gold_spans": sum(len(d.spans) for d in gold),
        "strict": strict["strict"],
        "loose": loose["strict"],
        "loose_partial": loose["partial"]["micro"],
    }


def score_corpus(predict: Callable[[list[str]], list[list[Span]]], entry: external.ExternalCorpus, root: str | Path) -> dict:
    """Tag a configured corpus with `predict(texts) -> spans per text` and score it."""
    gold, has_date = external.load_test(entry, root)
    return external_scores(gold, predict([d.text for d in gold]), has_date)


def headline(scores: dict) -> dict:
    """The few numbers a comparison table shows."""
    out = {"strict_f1": scores["strict"]["micro"]["f1"], "loose_f1": scores["loose"]["micro"]["f1"]}
    for label in scores["labels"]:
        out[f"{label}_f1"] = scores["strict"]["per_label"][label]["f1"]
    return out


def markdown(scores: dict[str, dict]) -> str:
    """A report section: strict and loose span P/R/F1 on each public corpus."""
    lines = [
        "## External test corpora",
        "",
        "*strict*: boundaries and mapped label; *loose*: ACTOR and PLACE merged into NAME (these corpora tag countries and "
        "cities by type, not by role). DATE only where the corpus has DATE.",
        "",
    ]
    rows = [
        (name, scheme, label, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"])
        for name, s in scores.items()
        for scheme in ("strict", "loose")
        for label, m in [("micro", s[scheme]["micro"]), *s[scheme]["per_label"].items()]
    ]
    lines += table(["corpus", "scheme", "label", "precision", "recall", "F1", "support"], rows)
    return "\n".join(lines) + "\n"
