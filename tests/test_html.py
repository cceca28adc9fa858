"""The HTML view of entities: the renderer, `arner predict --format html` and the `errors.html` of an evaluation."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from arner.cli import app
from arner.core import corpus
from arner.core.conventions import Span
from arner.core.corpus import Document
from arner.core.formats import html, predictions
from arner.core.formats.texts import check_out, render
from arner.eval.baselines import Memorization
from arner.eval.errors_page import errors_html, window
from arner.eval.metrics import KIND_TITLES, evaluate

from conftest import ANNOTATIONS, TEXT, span


class Marks(HTMLParser):
    """What a reader sees in the `arner-doc` blocks of a page (or a piece of one): their attributes, their text
    (label tags left out) and each mark as a dict; the legend and headings are outside these blocks."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.marks: list[dict] = []
        self.docs: list[dict] = []
        self.text = ""
        self._in_doc = self._in_mark = self._in_label = False
        self.feed(source)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and "arner-doc" in (a.get("class") or "").split():
            self.docs.append(a)
            self._in_doc = True  # no div nests inside one
        elif tag == "mark" and self._in_doc:
            self._in_mark = True
            self.marks.append(
                {"label": a.get("data-label"), "title": a.get("title"), "classes": a["class"].split(), "text": "", "at": len(self.text)}
            )
        elif tag == "span" and self._in_mark and a.get("class") == "arner-label":
            self._in_label = True
            self.marks[-1]["tag"] = ""

    def handle_endtag(self, tag):
        if tag == "div":
            self._in_doc = False
        elif tag == "mark":
            self._in_mark = False
        elif tag == "span":
            self._in_label = False

    def handle_data(self, data):
        if self._in_label:
            self.marks[-1]["tag"] += data
        elif self._in_doc:
            if self._in_mark:
                self.marks[-1]["text"] += data
            self.text += data


def ents(text: str, *items: tuple[str, str, float | None]) -> list[dict]:
    out = []
    for surface, label, score in items:
        start = text.index(surface)
        out.append({"start": start, "end": start + len(surface), "label": label, "score": score})
    return out


# --------------------------------------------------------------------------- the renderer


def test_fragment_highlights_each_entity_with_its_label_and_score():
    entities = ents(TEXT, ("بوتين", "ACTOR", 0.912345), ("موسكو", "PLACE", None), ("يوم الجمعة", "DATE", 1))
    out = html.fragment(TEXT, entities)
    seen = Marks(out)
    assert seen.docs == [{"class": "arner-doc", "dir": "rtl", "lang": "ar"}]
    assert seen.text == TEXT  # the text is all there, in order, the label tags apart
    assert [(m["text"], m["label"], m["tag"], m["title"]) for m in seen.marks] == [
        ("بوتين", "ACTOR", "ACTOR", "ACTOR · score 0.912345"),
        ("موسكو", "PLACE", "PLACE", "PLACE"),  # no score: the label alone
        ("يوم الجمعة", "DATE", "DATE", "DATE · score 1.000000"),
    ]
    assert [m["at"] for m in seen.marks] == [e["start"] for e in entities]


def test_fragment_takes_spans_entities_and_dicts_in_any_order():
    a, b = Span(6, 11, "ACTOR", "بوتين"), SimpleNamespace(start=23, end=28, label="PLACE", text="موسكو", score=0.5)
    assert html.fragment(TEXT, [b, a]) == html.fragment(TEXT, [a, b]) == html.fragment(TEXT, [a.to_json(), vars(b)])


def test_everything_is_escaped_and_lone_surrogates_replaced():
    text = '<script>alert("x")</script> & بوتين \ud800'
    label = 'A"><img src=x onerror=alert(1)>'
    out = html.fragment(text, [{"start": text.index("بوتين"), "end": text.index("بوتين") + 5, "label": label}])
    assert "<script" not in out and "<img" not in out and "\ud800" not in out
    seen = Marks(out)
    assert seen.text == text.replace("\ud800", "\ufffd") and seen.marks[0]["label"] == label and seen.marks[0]["tag"] == label
    out.encode("utf-8")  # writable as UTF-8


def test_a_label_outside_the_three_still_shows_and_the_style_colours_each_of_ours():
    assert Marks(html.fragment("abc def", [{"start": 0, "end": 3, "label": "MISC"}])).marks[0]["label"] == "MISC"
    colours = dict(re.findall(r'\.arner-ent\[data-label="(\w+)"\] \{ background: (#\w+); \}', html.STYLE))
    assert set(colours) == {"ACTOR", "PLACE", "DATE"} and len(set(colours.values())) == 3


@pytest.mark.parametrize(
    "entities, message",
    [
        ([{"start": 3, "end": 2, "label": "ACTOR"}], "outside the text"),
        ([{"start": 0, "end": 99, "label": "ACTOR"}], "outside the text"),
        ([{"start": 0, "end": 5, "label": "ACTOR"}, {"start": 4, "end": 8, "label": "PLACE"}], "overlaps"),
        ([{"start": "0", "end": 5, "label": "ACTOR"}], "integer start and end"),
        ([{"start": 0, "end": 5, "label": "ACTOR", "score": "high"}], "score must be a number"),
    ],
)
def test_bad_entities_are_one_line_errors(entities, message):
    with pytest.raises(ValueError, match=message) as info:
        html.fragment(TEXT, entities)
    assert "\n" not in str(info.value)


def test_the_page_stands_alone():
    docs = [("d1", TEXT), ("<d2>", "نص بلا كيانات")]
    out = html.documents_page(docs, [ents(TEXT, ("بوتين", "ACTOR", 0.9)), []])
    assert out.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in out and html.STYLE in out
    assert not re.search(r"""(src|href)=|@import|url\(""", out)  # nothing to fetch: read offline
    assert "&lt;d2&gt; (0 entities)" in out and "2 texts, 1 entities" in out
    seen = Marks(out)
    assert len(seen.docs) == 2 and [m["text"] for m in seen.marks] == ["بوتين"]
    assert re.findall(r'<mark class="arner-ent" data-label="(\w+)">\1</mark>', out) == ["ACTOR", "PLACE", "DATE"]  # the legend
    with pytest.raises(ValueError, match="2 texts but 1 lists"):
        html.documents_page(docs, [[]])


# --------------------------------------------------------------------------- arner predict --format html


def test_predict_html_render_writes_one_page(tmp_path):
    check_out("html", tmp_path / "p.html")
    entity = SimpleNamespace(start=6, end=11, label="ACTOR", text="بوتين", score=0.75)
    out = tmp_path / "p.html"
    assert render("html", [("a", TEXT), ("b", "")], [[entity], []], out) is None
    seen = Marks(out.read_text(encoding="utf-8"))
    assert [(m["text"], m["title"]) for m in seen.marks] == [("بوتين", "ACTOR · score 0.750000")] and len(seen.docs) == 2
    assert render("html", [("a", TEXT)], [[entity]], None) == out.read_text(encoding="utf-8").replace(
        "2 texts, 1 entities", "1 texts, 1 entities"
    ).replace('\n<section id="doc-b">\n<h2>b (0 entities)</h2>\n<div class="arner-doc" dir="rtl" lang="ar"></div>\n</section>', "")


def test_predict_cli_html_has_the_entities_of_jsonl(tmp_path, tiny_model):
    article = sorted((ANNOTATIONS / "articles").glob("*.txt"))[0]
    runner = CliRunner()
    for fmt, name in (("html", "p.html"), ("jsonl", "p.jsonl")):
        result = runner.invoke(app, ["predict", "--model", str(tiny_model), str(article), "--format", fmt, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    rows = [r for r in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines() if r]
    expected = json.loads(rows[0])["entities"]
    seen = Marks((tmp_path / "p.html").read_text(encoding="utf-8"))
    assert seen.text.endswith(article.read_text(encoding="utf-8"))
    assert [(m["text"], m["label"], m["title"]) for m in seen.marks] == [
        (e["text"], e["label"], f"{e['label']} · score {e['score']:.6f}") for e in expected
    ]


# --------------------------------------------------------------------------- errors.html


DOC_TEXT = "سطر أول فيه واشنطن.\nالتقى بوتين وويتكوف في موسكو يوم الجمعة مع وزير الخارجية.\nسطر أخير."
GOLD = [
    Span(**span(DOC_TEXT, "واشنطن", "ACTOR")),
    Span(**span(DOC_TEXT, "بوتين", "ACTOR")),
    Span(**span(DOC_TEXT, "ويتكوف", "ACTOR")),
    Span(**span(DOC_TEXT, "موسكو", "PLACE")),
    Span(**span(DOC_TEXT, "يوم الجمعة", "DATE")),
]


def test_errors_html_shows_every_error_twice_gold_above_predicted_below():
    doc = Document("d1", DOC_TEXT, GOLD)
    pred = [
        GOLD[1],  # correct
        Span(**span(DOC_TEXT, "وويتكوف", "ACTOR")),  # boundary: the proclitic left inside
        Span(**span(DOC_TEXT, "موسكو", "ACTOR")),  # type
        Span(**span(DOC_TEXT, "الجمعة", "DATE")),  # boundary
        Span(**span(DOC_TEXT, "وزير", "ACTOR")),  # spurious
    ]  # واشنطن missed
    _, errors = evaluate([doc], [pred], resamples=0)
    page = errors_html(errors, [doc], [Document("d1", DOC_TEXT, pred)], "Test")
    cases = re.findall(r'<div class="arner-case" id="error-(\d+)" data-kind="(\w+)">(.*?)</table>', page, re.S)
    assert len(cases) == len(errors) == 5
    assert [k for _, k, _ in cases] == ["missed", "spurious", "boundary", "boundary", "type"]  # report.md's order of kinds
    in_order = [e for kind in KIND_TITLES for e in errors if e.kind == kind]
    for (_, kind, body), error in zip(cases, in_order):
        assert kind == error.kind
        gold_row, pred_row = body.split('<tr class="arner-predicted">')
        gold, predicted = Marks(gold_row), Marks(pred_row)
        assert gold.text.strip("…") in DOC_TEXT and gold.text == predicted.text  # the same passage, twice
        assert "\n" not in gold.text  # within its paragraph
        # the error's own spans are outlined: the gold ones above, the predicted one below
        assert {m["text"] for m in gold.marks if "arner-focus" in m["classes"]} == {s.text for s in error.gold}
        assert {m["text"] for m in predicted.marks if "arner-focus" in m["classes"]} == ({error.pred.text} if error.pred else set())
    missed = Marks(cases[0][2])
    assert missed.text.startswith("سطر أول") and [m["text"] for m in missed.marks] == ["واشنطن"]  # nothing predicted there
    type_error = cases[4][2].split('<tr class="arner-predicted">')
    assert [m["label"] for m in Marks(type_error[0]).marks if m["text"] == "موسكو"] == ["PLACE"]
    assert [m["label"] for m in Marks(type_error[1]).marks if m["text"] == "موسكو"] == ["ACTOR"]
    assert '<a href="#missed">' in page and "Test: errors" in page and "5 errors" in page


def test_the_window_never_cuts_a_span_and_stays_bounded():
    text = "أ" * 200 + " كلمة " + "ب" * 200
    gold = [Span(0, 150, "ACTOR", text[:150]), Span(201, 205, "PLACE", "كلمة")]
    doc = Document("d", text, gold)
    _, errors = evaluate([doc], [[]], resamples=0)
    lo, hi = window(text, errors[1], gold)
    assert (lo, hi) == (0, 205 + 60 + 20)  # the long first span pulled in whole; the run without spaces stopped at the slack
    words = "كلمة " * 100  # words of 4 letters: the window moves out to whole words
    middle = Span(250, 254, "PLACE", "كلمة")
    (error,) = evaluate([Document("w", words, [middle])], [[]], resamples=0)[1]
    lo, hi = window(words, error, [middle])
    assert words[lo - 1] == " " and words[hi] == " " and 250 - 60 - 5 < lo <= 250 - 60 and 254 + 60 <= hi < 254 + 60 + 5


def test_errors_html_refuses_an_unknown_document():
    _, errors = evaluate([Document("d1", DOC_TEXT, GOLD)], [[]], resamples=0)
    with pytest.raises(ValueError, match="not among the gold documents: d1"):
        errors_html(errors, [], [], "x")


def test_eval_writes_errors_html_with_every_error(tmp_path):
    documents = corpus.load(ANNOTATIONS)
    pred = tmp_path / "memo.jsonl"
    memo = Memorization().fit(documents[1:])
    predictions.write(pred, [(d.doc, spans) for d, spans in zip(documents, memo.predict([d.text for d in documents]))])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["eval", "--pred", str(pred), "--out", str(out), "--gold", str(ANNOTATIONS), "--resamples", "10"])
    assert result.exit_code == 0, result.output
    errors = json.loads((out / "errors.json").read_text(encoding="utf-8"))
    page = (out / "errors.html").read_text(encoding="utf-8")
    assert len(errors) > 20 and page.count('<div class="arner-case"') == len(errors)
    assert page.count('<tr class="arner-gold">') == page.count('<tr class="arner-predicted">') == len(errors)
    # every error's spans are there, outlined, with their labels
    focused = [m for m in Marks(page).marks if "arner-focus" in m["classes"]]
    expected = [s for e in errors for s in (*e["gold"], *([e["pred"]] if e["pred"] else []))]
    assert sorted((m["text"], m["label"]) for m in focused) == sorted((s["text"], s["label"]) for s in expected)
