"""Entities highlighted inline in HTML, as displaCy shows them: the one renderer of arner's pages.

`fragment(text, entities)` gives a `<div class="arner-doc" dir="rtl" lang="ar">` holding the
text with each entity in a `<mark class="arner-ent" data-label="LABEL" title="LABEL · score S">`,
its label as a small tag after it; `page(title, body)` wraps fragments in a standalone page (inline
CSS, no external resources: the pages are read offline). `arner predict --format html`, the
`errors.html` of an evaluation and the page `arner serve` answers at `/` all use `STYLE`, and the
service's JavaScript builds exactly the markup of `fragment` (tested in a real browser), so one
stylesheet serves them all.

Entities are anything with `start`, `end`, `label` and optionally `score` (a `Span`, an inference
`Entity`, or a dict with those keys); offsets are code points into `text`, as everywhere in arner.
Everything from the caller is escaped (`html.escape`); lone surrogates become U+FFFD, since a page
is UTF-8 and a JSON input may carry them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from arner.core.conventions import LABELS

# displaCy's colours for the nearest spaCy types: PERSON/ORG for actors, GPE for places, DATE for dates
COLOURS: dict[str, str] = {"ACTOR": "#aa9cfc", "PLACE": "#feca74", "DATE": "#bfe1d9"}
OTHER_COLOUR = "#ddd"  # a label outside LABELS (another model's) still shows, in grey
_SURROGATE = re.compile("[\ud800-\udfff]")

STYLE = (
    """
body { margin: 1.5em auto; max-width: 60em; padding: 0 1em; font-family: "DejaVu Sans", Arial, sans-serif; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; } h3 { font-size: 1em; }
.arner-doc { white-space: pre-wrap; line-height: 2.6; font-size: 1.15em; unicode-bidi: isolate;
  font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "DejaVu Sans", serif; }
.arner-ent { padding: 0.2em 0.35em; margin: 0 0.15em; border-radius: 0.35em; line-height: 1; color: inherit;
  background: """
    + OTHER_COLOUR
    + """; box-decoration-break: clone; -webkit-box-decoration-break: clone; }
.arner-label { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 0.55em; font-weight: bold; vertical-align: middle;
  margin-inline-start: 0.5em; direction: ltr; unicode-bidi: isolate; }
.arner-focus { outline: 2px dashed #c0392b; outline-offset: 2px; }
.arner-legend { margin: 0.5em 0 1em; } .arner-legend .arner-ent { font-size: 0.85em; }
.arner-pair { border-collapse: collapse; width: 100%; margin: 0.3em 0 1.2em; }
.arner-pair th { width: 6em; text-align: start; vertical-align: top; padding: 0.6em 0.5em; color: #555; font-weight: normal; }
.arner-pair td { border-top: 1px solid #eee; padding: 0 0.5em; }
.arner-note { color: #555; font-size: 0.9em; }
.arner-error { color: #c0392b; }
"""
    + "".join(f'.arner-ent[data-label="{label}"] {{ background: {colour}; }}\n' for label, colour in COLOURS.items())
)


@dataclass(frozen=True)
class Mark:
    """One entity to highlight: `[start, end)` in code points, its label, its score if any."""

    start: int
    end: int
    label: str
    score: float | None = None


def escape(text: str) -> str:
    """`text` safe in HTML content and in a quoted attribute; lone surrogates as U+FFFD (UTF-8 cannot hold them)."""
    return html.escape(_SURROGATE.sub("\ufffd", text), quote=True)


def as_mark(entity: Any) -> Mark:
    """A `Mark` from a `Span`, an `Entity` or a dict with `start`, `end`, `label` (and `score`)."""
    get = entity.get if isinstance(entity, dict) else lambda key, default=None: getattr(entity, key, default)
    start, end, label, score = get("start"), get("end"), get("label"), get("score")
    if not (type(start) is int and type(end) is int and isinstance(label, str)):
        raise ValueError(f"an entity needs integer start and end and a string label, got {entity!r}")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise ValueError(f"entity [{start}:{end} {label}]: score must be a number, got {score!r}")
    return Mark(start, end, label, None if score is None else float(score))


def check_marks(text: str, entities: Iterable[Any]) -> list[Mark]:
    """The entities as marks sorted by start; a ValueError naming the first one out of range or overlapping another."""
    marks = sorted((as_mark(e) for e in entities), key=lambda m: (m.start, m.end))
    previous = None
    for m in marks:
        if not 0 <= m.start < m.end <= len(text):
            raise ValueError(f"entity [{m.start}:{m.end} {m.label}] is outside the text (0 to {len(text)}) or empty")
        if previous is not None and m.start < previous.end:
            raise ValueError(f"entity [{m.start}:{m.end} {m.label}] overlaps [{previous.start}:{previous.end} {previous.label}]")
        previous = m
    return marks


def title(mark: Mark) -> str:
    """The hover text: the label, and the score to 6 decimals (as the service rounds it; the JavaScript uses toFixed(6))."""
    return mark.label if mark.score is None else f"{mark.label} · score {mark.score:.6f}"


def mark_html(text: str, mark: Mark, focus: bool = False) -> str:
    """One entity as displaCy draws it: the highlighted text, then its label as a small tag."""
    css = "arner-ent arner-focus" if focus else "arner-ent"
    return (
        f'<mark class="{css}" data-label="{escape(mark.label)}" title="{escape(title(mark))}">'
        f'{escape(text[mark.start : mark.end])}<span class="arner-label">{escape(mark.label)}</span></mark>'
    )


def fragment(text: str, entities: Iterable[Any] = (), focus: Collection[tuple[int, int]] = ()) -> str:
    """`text` as a right-to-left Arabic block with `entities` highlighted; those whose `(start, end)` is in `focus` outlined."""
    parts, at = [], 0
    for m in check_marks(text, entities):
        parts += [escape(text[at : m.start]), mark_html(text, m, (m.start, m.end) in focus)]
        at = m.end
    parts.append(escape(text[at:]))
    return f'<div class="arner-doc" dir="rtl" lang="ar">{"".join(parts)}</div>'


def legend(labels: Sequence[str] = LABELS) -> str:
    """One highlighted sample per label, so a reader knows the colours."""
    items = "".join(f'<mark class="arner-ent" data-label="{escape(lab)}">{escape(lab)}</mark>' for lab in labels)
    return f'<div class="arner-legend">{items}</div>'


def page(title_text: str, body: str, intro: str = "") -> str:
    """A standalone UTF-8 page: `STYLE` inline, a heading, the legend, `intro` (plain text) and `body` (HTML, already escaped)."""
    note = f'<p class="arner-note">{escape(intro)}</p>\n' if intro else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title_text)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title_text)}</h1>\n{note}{legend()}\n{body}\n</body>\n</html>\n"
    )


def documents_page(docs: Sequence[tuple[str, str]], entities: Sequence[Iterable[Any]], title_text: str = "arner: entities") -> str:
    """`arner predict --format html`: every (doc id, text) rendered with its entities, in order, under its id."""
    if len(docs) != len(entities):
        raise ValueError(f"{len(docs)} texts but {len(entities)} lists of entities")
    marks = [check_marks(text, ents) for (_, text), ents in zip(docs, entities)]  # every input checked before any markup
    sections = [
        f'<section id="doc-{escape(doc)}">\n<h2>{escape(doc)} ({len(ms)} entities)</h2>\n{fragment(text, ms)}\n</section>'
        for (doc, text), ms in zip(docs, marks)
    ]
    intro = f"{len(docs)} texts, {sum(map(len, marks))} entities; hover an entity for its score."
    return page(title_text, "\n".join(sections), intro)
