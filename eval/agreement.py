"""Agreement between two annotation passes: span P/R/F1, Cohen's kappa on word tags, disagreements."""

from __future__ import annotations

from dataclasses import dataclass

from arner.core.conventions import Span, context, word_tags, words
from arner.core.corpus import Document
from arner.core.tables import table
from arner.eval.spanscore import span_scores


@dataclass(frozen=True)
class Disagreement:
    doc: str
    a: Span | None
    b: Span | None
    context: str

    def to_json(self) -> dict:
        return {
            "doc": self.doc,
            "a": self.a.to_json() if self.a else None,
            "b": self.b.to_json() if self.b else None,
            "context": self.context,
        }


def disagreements(a: Document, b: Document) -> list[Disagreement]:
    """Spans not shared exactly, paired with the overlapping span of the other pass when there is one."""
    in_a, in_b = set(a.spans), set(b.spans)
    only_a = [s for s in a.spans if s not in in_b]
    only_b = [s for s in b.spans if s not in in_a]
    out, used = [], set()
    for s in only_a:
        match = next((t for t in only_b if t.start < s.end and s.start < t.end and t not in used), None)
        if match:
            used.add(match)
        lo, hi = (min(s.start, match.start), max(s.end, match.end)) if match else (s.start, s.end)
        out.append(Disagreement(a.doc, s, match, context(a.text, lo, hi)))
    for t in only_b:
        if t not in used:
            out.append(Disagreement(a.doc, None, t, context(a.text, t.start, t.end)))
    return sorted(out, key=lambda d: (d.a or d.b).start)


def agreement(a_docs: list[Document], b_docs: list[Document]) -> dict:
    """Scores of B against A on the documents both have (A plays gold; F1 is symmetric)."""
    from sklearn.metrics import cohen_kappa_score

    b_by_doc = {d.doc: d for d in b_docs}
    pairs = [(d, b_by_doc[d.doc]) for d in a_docs if d.doc in b_by_doc]
    scores = span_scores([a.spans for a, _ in pairs], [b.spans for _, b in pairs])
    tags_a, tags_b = [], []
    for a, b in pairs:
        ws = words(a.text)
        tags_a += word_tags(ws, a.spans)
        tags_b += word_tags(ws, b.spans)
    kappa = float(cohen_kappa_score(tags_a, tags_b)) if tags_a else 0.0
    diffs = [x for a, b in pairs for x in disagreements(a, b)]
    return {
        "docs": [a.doc for a, _ in pairs],
        "span": {k: scores[k] for k in ("strict", "partial")},
        "word_kappa": kappa,
        "word_tag_agreement": sum(x == y for x, y in zip(tags_a, tags_b)) / max(1, len(tags_a)),
        "disagreements": [d.to_json() for d in diffs],
    }


def markdown(result: dict) -> str:
    rows = [
        (schema, label, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"])
        for schema, block in result["span"].items()
        for label, m in [("micro", block["micro"]), *block["per_label"].items()]
    ]
    lines = table(["schema", "label", "precision", "recall", "F1", "support"], rows)
    lines += ["", f"Cohen's kappa on word tags: {result['word_kappa']:.3f} (raw agreement {result['word_tag_agreement']:.3f})", ""]
    lines.append(f"Disagreements ({len(result['disagreements'])}):")
    for d in result["disagreements"]:
        fmt = lambda s: f"{s['label']} {s['text']!r} [{s['start']}:{s['end']}]" if s else "—"  # noqa: E731
        lines.append(f"- {d['doc']}: A {fmt(d['a'])} / B {fmt(d['b'])} — {d['context']}")
    return "\n".join(lines) + "\n"
