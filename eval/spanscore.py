"""Character-span scores under the SemEval-2013 schemas, through nervaluate.

Used by annotator agreement and by the evaluation harness, so both count alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from arner.core.conventions import LABELS, Span

SCHEMAS = {"strict": "strict", "exact": "exact", "partial": "partial", "type": "ent_type"}


# our key: nervaluate's attribute
_KEYS = (
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "f1"),
    ("support", "possible"),
    ("predicted", "actual"),
    ("correct", "correct"),
    ("partial", "partial"),
    ("incorrect", "incorrect"),
    ("missed", "missed"),
    ("spurious", "spurious"),
)


def _prf(result) -> dict:
    return {key: getattr(result, attr) for key, attr in _KEYS}


def _empty() -> dict:
    return {key: 0 for key, _ in _KEYS}


def span_scores(gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[Span]], labels: Sequence[str] = LABELS) -> dict:
    """`{schema: {"micro": prf, "per_label": {label: prf}}}` over documents paired by position."""
    from nervaluate import Evaluator

    def entities(docs):  # nervaluate counts `end` inclusively
        return [[{"label": s.label, "start": s.start, "end": s.end - 1} for s in d] for d in docs]

    out = {name: {"micro": _empty(), "per_label": {lab: _empty() for lab in labels}} for name in SCHEMAS}
    if not any(gold) and not any(pred):
        return out
    results = Evaluator(entities(gold), entities(pred), tags=list(labels), loader="dict").evaluate()
    for name, key in SCHEMAS.items():
        if key in results["overall"]:
            out[name]["micro"] = _prf(results["overall"][key])
        for lab in labels:
            if lab in results["entities"]:
                out[name]["per_label"][lab] = _prf(results["entities"][lab][key])
    return out
