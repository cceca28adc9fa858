"""Agreement figures on hand-computed cases, and the locator that turns mention lists into spans."""

import pytest
from typer.testing import CliRunner

from arner.cli import app
from arner.core import corpus
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError, Document
from arner.core.locate import Mention, locate, locate_folder
from arner.eval.agreement import agreement

from conftest import ANNOTATIONS

runner = CliRunner()
TEXT = "قال بوتين إن روسيا وأوكرانيا تحدثتا في جنيف أمس"


def s(surface: str, label: str) -> Span:
    i = TEXT.index(surface)
    return Span(i, i + len(surface), label, surface)


def test_hand_computed_agreement():
    a = Document("d", TEXT, [s("بوتين", "ACTOR"), s("روسيا", "ACTOR"), s("أوكرانيا", "ACTOR"), s("جنيف", "PLACE")])
    # B: one exact, one wrong label, one boundary error (proclitic inside), one missed, one extra
    b = Document("d", TEXT, [s("بوتين", "ACTOR"), s("روسيا", "PLACE"), s("وأوكرانيا", "ACTOR"), s("أمس", "DATE")])
    r = agreement([a], [b])
    strict = r["span"]["strict"]
    assert strict["micro"]["precision"] == pytest.approx(1 / 4)
    assert strict["micro"]["recall"] == pytest.approx(1 / 4)
    assert strict["per_label"]["ACTOR"]["f1"] == pytest.approx(2 * (1 / 2 * 1 / 3) / (1 / 2 + 1 / 3))
    # partial (same label, overlapping): ACTOR gets بوتين correct + أوكرانيا half
    actor = r["span"]["partial"]["per_label"]["ACTOR"]
    assert actor["precision"] == pytest.approx(1.5 / 2) and actor["recall"] == pytest.approx(1.5 / 3)
    # words: قال بوتين إن روسيا وأوكرانيا تحدثتا في جنيف أمس
    # A: O B-A O B-A B-A O O B-P O ; B: O B-A O B-P B-A O O O B-D
    po = 6 / 9
    pa = {"O": 5 / 9, "B-ACTOR": 3 / 9, "B-PLACE": 1 / 9}
    pb = {"O": 5 / 9, "B-ACTOR": 2 / 9, "B-PLACE": 1 / 9, "B-DATE": 1 / 9}
    pe = sum(pa[k] * pb.get(k, 0) for k in pa)
    assert r["word_kappa"] == pytest.approx((po - pe) / (1 - pe))
    kinds = {(d["a"] and d["a"]["text"], d["b"] and d["b"]["text"]) for d in r["disagreements"]}
    assert kinds == {("روسيا", "روسيا"), ("أوكرانيا", "وأوكرانيا"), ("جنيف", None), (None, "أمس")}


def test_agree_cli_on_the_two_passes():
    result = runner.invoke(
        app,
        ["annotations", "agree", str(ANNOTATIONS / "passes/a"), str(ANNOTATIONS / "passes/b"), "--articles", str(ANNOTATIONS / "articles")],
    )
    assert result.exit_code == 0 and "Cohen's kappa" in result.output and "| strict | micro |" in result.output


def test_locate_handles_proclitics_order_and_left_context():
    text = "روسيا وروسيا، ثم الروسية وروسيا"
    spans = locate(text, [Mention(1, "ACTOR", "روسيا"), Mention(2, "PLACE", "روسيا"), Mention(3, "ACTOR", "روسيا", "ثم الروسية و")])
    assert [(x.start, x.label) for x in spans] == [(0, "ACTOR"), (7, "PLACE"), (26, "ACTOR")]
    with pytest.raises(AnnotationError) as e:
        locate(text, [Mention(4, "ACTOR", "موسكو")], "m.tsv")
    assert "m.tsv:4" in str(e.value)


def test_locate_never_matches_inside_a_word():
    text = "الروسي روس"
    (span,) = locate(text, [Mention(1, "ACTOR", "روس")])
    assert span.start == 7


@pytest.mark.parametrize("folder", [ANNOTATIONS, ANNOTATIONS / "passes/a", ANNOTATIONS / "passes/b"])
def test_committed_spans_are_exactly_the_located_mentions(folder):
    texts, _ = corpus.read_articles(ANNOTATIONS / "articles")
    located = locate_folder(folder / "mentions", texts)
    committed = corpus.load(folder, ANNOTATIONS / "articles")
    assert [(d.doc, d.spans) for d in located] == [(d.doc, d.spans) for d in committed]
