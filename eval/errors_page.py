"""`errors.html` of an evaluation: every error in its context, the gold spans and the predicted spans in two rendered rows.

`report.md` lists the errors as text with `[[...]]` around the spans involved; this page shows each
one as the reader would see the article: the gold row highlights every gold span of the passage,
the predicted row every predicted span, and the spans of the error are outlined, so a missed name,
a proclitic left inside or a place tagged as an actor is seen at a glance. The markup is
`arner.core.formats.html`'s, as in `arner predict --format html` and the page of `arner serve`.
"""

from __future__ import annotations

from collections.abc import Sequence

from arner.core.conventions import Span
from arner.core.corpus import Document
from arner.core.formats.html import Mark, escape, fragment, page
from arner.eval.metrics import KIND_TITLES, Error

CONTEXT = 60  # characters of context either side of the spans involved, before moving out to word edges
WORD_SLACK = 20  # at most this many more characters to reach a space, so a line without spaces stays bounded


def involved(error: Error) -> list[Span]:
    return [*error.gold, *([error.pred] if error.pred else [])]


def window(text: str, error: Error, spans: Sequence[Span], width: int = CONTEXT) -> tuple[int, int]:
    """The passage shown for `error`: `width` characters either side of its spans, within their paragraph,
    out to whole words, and never cutting one of `spans` (gold or predicted) in two."""
    start = min(s.start for s in involved(error))
    end = max(s.end for s in involved(error))
    lo = max(0, start - width, text.rfind("\n", 0, start) + 1)
    newline = text.find("\n", end)
    hi = min(len(text), end + width, newline if newline >= 0 else len(text))
    floor, ceiling = max(0, lo - WORD_SLACK), min(len(text), hi + WORD_SLACK)
    while lo > floor and not text[lo - 1].isspace():
        lo -= 1
    while hi < ceiling and not text[hi].isspace():
        hi += 1
    moved = True
    while moved:  # only ever widens, so it ends
        moved = False
        for s in spans:
            if s.start < lo < s.end or s.start < hi < s.end:
                lo, hi, moved = min(lo, s.start), max(hi, s.end), True
    return lo, hi


def passage(text: str, lo: int, hi: int, spans: Sequence[Span], focus: Sequence[Span]) -> str:
    """`text[lo:hi]` rendered with the spans inside it, `…` where the article goes on; `focus` outlined."""
    before = "…" if lo > 0 else ""
    after = "…" if hi < len(text) else ""
    shift = len(before) - lo
    marks = [Mark(s.start + shift, s.end + shift, s.label) for s in spans if lo <= s.start and s.end <= hi]
    outlined = {(s.start + shift, s.end + shift) for s in focus}
    return fragment(before + text[lo:hi] + after, marks, outlined)


def describe(error: Error) -> str:
    """One line of HTML: what gold says and what was predicted, as in report.md. The Arabic is isolated
    (`<bdi>`), else the bidi algorithm pulls the offsets and guillemets of an English line into it."""

    def one(s: Span) -> str:
        return f'{escape(s.label)} «<bdi lang="ar">{escape(s.text)}</bdi>» [{s.start}:{s.end}]'

    parts = []
    if error.gold:
        parts.append("gold " + " + ".join(one(s) for s in error.gold))
    if error.pred:
        parts.append("predicted " + one(error.pred))
    return " → ".join(parts)


def case(n: int, error: Error, document: Document, predicted: Sequence[Span]) -> str:
    """One error: a heading, then the passage twice, gold above and predicted below."""
    lo, hi = window(document.text, error, [*document.spans, *predicted])
    gold_row = passage(document.text, lo, hi, document.spans, error.gold)
    pred_row = passage(document.text, lo, hi, predicted, [error.pred] if error.pred else [])
    return (
        f'<div class="arner-case" id="error-{n}" data-kind="{escape(error.kind)}">\n'
        f"<h3>{n}. {escape(error.doc)}: {describe(error)}</h3>\n"
        '<table class="arner-pair">\n'
        f'<tr class="arner-gold"><th>gold</th><td>{gold_row}</td></tr>\n'
        f'<tr class="arner-predicted"><th>predicted</th><td>{pred_row}</td></tr>\n'
        "</table>\n</div>"
    )


def errors_html(errors: Sequence[Error], gold: Sequence[Document], pred: Sequence[Document], title: str = "Evaluation") -> str:
    """The page: a count per kind (linked), then every error of each kind in the order of `report.md`.

    `gold` holds the documents scored, `pred` the predicted spans of each (as `Document`s, in any order)."""
    texts = {d.doc: d for d in gold}
    predicted = {d.doc: sorted(d.spans) for d in pred}
    unknown = sorted({e.doc for e in errors} - set(texts))
    if unknown:
        raise ValueError(f"errors name document(s) not among the gold documents: {', '.join(unknown)}")
    toc, sections, n = [], [], 0
    for kind, heading in KIND_TITLES.items():
        found = [e for e in errors if e.kind == kind]
        toc.append(f'<li><a href="#{kind}">{escape(heading)}</a>: {len(found)}</li>')
        cases = []
        for e in found:
            n += 1
            cases.append(case(n, e, texts[e.doc], predicted.get(e.doc, [])))
        sections.append(f'<section id="{kind}">\n<h2>{escape(heading)}: {len(found)}</h2>\n' + "\n".join(cases) + "\n</section>")
    intro = (
        f"{len(errors)} errors. Each passage is shown twice: gold above, predicted below; the spans of the error are outlined. "
        "report.md beside this page lists the same errors as text."
    )
    return page(f"{title}: errors", "<ul>" + "".join(toc) + "</ul>\n" + "\n".join(sections), intro)
