"""Every metric on hand-computed cases: words (seqeval = conlleval), span schemas, per document, confusion, bootstrap."""

import numpy as np
import pytest

from arner.core.conventions import Span
from arner.core.corpus import Document
from arner.eval.metrics import bootstrap, classify, evaluate, resampling_units, unit_counts, word_scores

P1 = "قال بوتين إن روسيا وأوكرانيا تحدثتا في جنيف أمس"
P2 = "وصل كيريل دميترييف إلى ميامي يوم السبت"
TEXT = P1 + "\n\n" + P2


def s(surface: str, label: str, nth: int = 0, text: str = TEXT) -> Span:
    i = -1
    for _ in range(nth + 1):
        i = text.index(surface, i + 1)
    return Span(i, i + len(surface), label, surface)


GOLD = [
    s("بوتين", "ACTOR"),
    s("روسيا", "ACTOR"),
    s("أوكرانيا", "ACTOR"),
    s("جنيف", "PLACE"),
    s("أمس", "DATE"),
    s("كيريل دميترييف", "ACTOR"),
    s("ميامي", "PLACE"),
    s("يوم السبت", "DATE"),
]
PRED = [
    s("بوتين", "ACTOR"),  # correct
    s("روسيا", "PLACE"),  # type error
    s("وأوكرانيا", "ACTOR"),  # boundary error (proclitic inside); the same word, so right in the word view
    # جنيف missed
    s("أمس", "DATE"),  # correct
    s("تحدثتا", "PLACE"),  # spurious
    s("كيريل", "ACTOR"),  # the entity split in two
    s("دميترييف", "ACTOR"),
    s("ميامي", "PLACE"),  # correct
    # يوم السبت missed
]
DOC = Document("d", TEXT, GOLD)


def close(block: dict, precision: float, recall: float, f1: float | None = None) -> bool:
    f1 = 2 * precision * recall / (precision + recall) if f1 is None and precision + recall else (f1 or 0.0)
    return block["precision"] == pytest.approx(precision) and block["recall"] == pytest.approx(recall) and block["f1"] == pytest.approx(f1)


@pytest.fixture(scope="module")
def result():
    return evaluate([DOC], [PRED], resamples=200)[0]


def test_word_view_is_conlleval(result):
    # words and tags (one sequence per paragraph):
    # قال بوتين إن روسيا وأوكرانيا تحدثتا في جنيف أمس
    #   gold O B-A O B-A B-A O   O B-P B-D   pred O B-A O B-P B-A B-P O O B-D
    # وصل كيريل دميترييف إلى ميامي يوم السبت
    #   gold O B-A I-A O B-P B-D I-D         pred O B-A B-A O B-P O O
    # chunks gold 8, predicted 8, correct 4: بوتين, وأوكرانيا (word-level), أمس, ميامي
    word = result["word"]
    assert close(word["micro"], 4 / 8, 4 / 8) and word["micro"]["support"] == 8
    assert close(word["per_label"]["ACTOR"], 2 / 4, 2 / 4) and word["per_label"]["ACTOR"]["support"] == 4
    assert close(word["per_label"]["PLACE"], 1 / 3, 1 / 2) and word["per_label"]["PLACE"]["support"] == 2
    assert close(word["per_label"]["DATE"], 1 / 1, 1 / 2) and word["per_label"]["DATE"]["support"] == 2
    f1s = [0.5, 2 * (1 / 3 * 1 / 2) / (1 / 3 + 1 / 2), 2 * 0.5 / 1.5]
    assert close(word["macro"], (1 / 2 + 1 / 3 + 1) / 3, 1 / 2, sum(f1s) / 3)


@pytest.mark.parametrize(
    ("gold", "pred", "counts"),
    [
        # conlleval's counts: (correct chunks, found, gold) per label
        # a chunk is correct only when both ends and the type match; I- after O starts a chunk (invalid IOB2 is not used here)
        (
            [["O", "B-ACTOR", "I-ACTOR", "I-ACTOR", "O"], ["B-PLACE", "I-PLACE", "O"]],
            [["B-ACTOR", "I-ACTOR", "I-ACTOR", "I-ACTOR", "O"], ["B-PLACE", "I-PLACE", "O"]],
            {"ACTOR": (0, 1, 1), "PLACE": (1, 1, 1)},
        ),
        (
            [["B-ACTOR", "B-ACTOR", "O", "B-DATE", "I-DATE"]],
            [["B-ACTOR", "I-ACTOR", "O", "B-DATE", "I-DATE"]],
            {"ACTOR": (0, 1, 2), "DATE": (1, 1, 1)},
        ),
        ([["B-PLACE", "I-PLACE", "O", "B-ACTOR"]], [["B-ACTOR", "I-ACTOR", "O", "B-ACTOR"]], {"ACTOR": (1, 2, 1), "PLACE": (0, 0, 1)}),
        ([["O", "O"], ["B-DATE"]], [["B-DATE", "O"], ["B-DATE"]], {"DATE": (1, 2, 1)}),
    ],
)
def test_word_scores_equal_conlleval_on_valid_iob2(gold, pred, counts):
    r = word_scores(gold, pred)
    correct = sum(c for c, _, _ in counts.values())
    found = sum(f for _, f, _ in counts.values())
    total = sum(g for _, _, g in counts.values())
    assert close(r["micro"], correct / found, correct / total)
    for label, (c, f, g) in counts.items():
        assert close(r["per_label"][label], c / f if f else 0.0, c / g if g else 0.0) and r["per_label"][label]["support"] == g


def test_span_schemas(result):
    span = result["span"]
    # strict: بوتين, أمس, ميامي of 8 gold and 8 predicted
    assert close(span["strict"]["micro"], 3 / 8, 3 / 8)
    strict = span["strict"]["micro"]
    assert (strict["correct"], strict["incorrect"], strict["missed"], strict["spurious"]) == (3, 3, 2, 2)
    # exact boundaries: + روسيا (type error)
    assert close(span["exact"]["micro"], 4 / 8, 4 / 8)
    # partial: 4 exact + half of وأوكرانيا and كيريل (the second half of a split entity, دميترييف, is spurious)
    assert close(span["partial"]["micro"], 5 / 8, 5 / 8)
    assert span["partial"]["micro"]["partial"] == 2 and span["partial"]["micro"]["spurious"] == 2
    # type: overlap with the right label: بوتين, وأوكرانيا, أمس, كيريل, ميامي
    assert close(span["type"]["micro"], 5 / 8, 5 / 8)
    # per label, strict: ACTOR 1 of 4 gold / 4 predicted; PLACE ميامي of 2 gold / 3 predicted; DATE أمس of 2 gold / 1 predicted
    assert close(span["strict"]["per_label"]["ACTOR"], 1 / 4, 1 / 4)
    assert close(span["strict"]["per_label"]["PLACE"], 1 / 3, 1 / 2)
    assert close(span["strict"]["per_label"]["DATE"], 1 / 1, 1 / 2)


def test_confusion_and_errors(result):
    c = result["confusion"]
    assert c["matrix"]["ACTOR"] == {"ACTOR": 1, "PLACE": 1, "DATE": 0}
    assert c["matrix"]["PLACE"] == {"ACTOR": 0, "PLACE": 1, "DATE": 0}
    assert c["matrix"]["DATE"] == {"ACTOR": 0, "PLACE": 0, "DATE": 1}
    assert (c["correct"], c["type"], c["boundary"], c["boundary_type"], c["missed"], c["spurious"]) == (3, 1, 3, 0, 2, 1)
    _, errors = classify(DOC, PRED)
    got = [(e.kind, tuple(g.text for g in e.gold), e.pred.text if e.pred else None) for e in errors]
    assert got == [
        ("type", ("روسيا",), "روسيا"),
        ("boundary", ("أوكرانيا",), "وأوكرانيا"),
        ("spurious", (), "تحدثتا"),
        ("missed", ("جنيف",), None),
        ("boundary", ("كيريل دميترييف",), "كيريل"),
        ("boundary", ("كيريل دميترييف",), "دميترييف"),
        ("missed", ("يوم السبت",), None),
    ]


def test_error_context_is_40_characters_each_side():
    text = "أ" * 50 + " موسكو " + "ب" * 50
    doc = Document("d", text, [s("موسكو", "PLACE", text=text)])
    _, (error,) = classify(doc, [])
    assert error.kind == "missed"
    assert error.context == "أ" * 39 + " [[موسكو]] " + "ب" * 39
    _, (error,) = classify(doc, [Span(51, 53, "ACTOR", "مو")])
    assert error.kind == "boundary_type" and error.context == text[11:51] + "[[موسكو]]" + text[56:96]


def test_per_document_and_empty_cases():
    empty_gold = Document("e", "لا شيء هنا", [])
    r, errors = evaluate([DOC, empty_gold], [PRED, []], resamples=10)
    assert list(r["per_doc"]) == ["d", "e"]
    assert close(r["per_doc"]["d"], 3 / 8, 3 / 8) and r["per_doc"]["d"]["support"] == 8 and r["per_doc"]["d"]["predicted"] == 8
    assert r["per_doc"]["e"] == {"precision": 0, "recall": 0, "f1": 0, "support": 0, "predicted": 0, "correct": 0}
    # empty predictions: nothing right, every gold span missed
    r, errors = evaluate([DOC], [[]], resamples=10)
    assert close(r["word"]["micro"], 0, 0, 0) and close(r["span"]["strict"]["micro"], 0, 0, 0)
    assert r["span"]["partial"]["micro"]["missed"] == 8 and r["confusion"]["missed"] == 8 and len(errors) == 8
    assert r["bootstrap"]["low"] == r["bootstrap"]["high"] == 0
    # empty gold: every prediction spurious
    r, errors = evaluate([Document("d", TEXT, [])], [PRED], resamples=10)
    assert close(r["span"]["strict"]["micro"], 0, 0, 0) and r["span"]["strict"]["micro"]["spurious"] == len(PRED)
    assert r["confusion"]["spurious"] == len(PRED) and r["word"]["per_label"]["ACTOR"]["support"] == 0
    # both empty: all zero, no error
    r, errors = evaluate([Document("d", TEXT, [])], [[]], resamples=10)
    assert errors == [] and r["word"]["micro"]["f1"] == 0 and r["span"]["strict"]["micro"]["f1"] == 0 and r["bootstrap"]["estimate"] == 0
    # perfect
    r, errors = evaluate([DOC], [GOLD], resamples=10)
    assert errors == [] and r["word"]["macro"]["f1"] == 1 and r["span"]["strict"]["micro"]["f1"] == 1 and r["bootstrap"]["low"] == 1


def test_predictions_are_paired_by_document():
    with pytest.raises(ValueError, match="paired"):
        evaluate([DOC], [Document("other", TEXT, [])])
    with pytest.raises(ValueError, match="1 gold documents but 2"):
        evaluate([DOC], [[], []])


def test_bootstrap_on_two_hand_made_paragraphs():
    # paragraph 1: 1 correct of 1 gold / 1 predicted; paragraph 2: 0 of 1 / 1. Pooled F1 = 1/2.
    # Resamples are {1,1} (F1 1), {2,2} (F1 0) or mixed (F1 1/2), each extreme with probability 1/4.
    text = "موسكو\nكييف"
    doc = Document("d", text, [Span(0, 5, "PLACE", "موسكو"), Span(6, 10, "PLACE", "كييف")])
    b = evaluate([doc], [[Span(0, 5, "PLACE", "موسكو"), Span(6, 10, "ACTOR", "كييف")]], resamples=1000, seed=3)[0]["bootstrap"]
    assert b["paragraphs"] == 2 and b["estimate"] == 0.5 and (b["low"], b["high"]) == (0, 1)
    assert b["resamples"] == 1000 and b["seed"] == 3 and b["confidence"] == 0.95


def test_bootstrap_is_deterministic_and_seeded(result):
    again = evaluate([DOC], [PRED], resamples=200)[0]
    assert again["bootstrap"] == result["bootstrap"]
    # 60 units with varied counts: another seed draws other resamples, hence other bounds
    counts = np.concatenate([unit_counts([DOC], [PRED])] * 30)
    counts[::3] = unit_counts([DOC], [GOLD])[0]
    runs = [bootstrap(counts, 200, seed) for seed in (0, 0, 1)]
    assert runs[0] == runs[1] and (runs[0]["low"], runs[0]["high"]) != (runs[2]["low"], runs[2]["high"])
    b = result["bootstrap"]
    assert b["low"] <= b["estimate"] <= b["high"] and b["estimate"] == pytest.approx(result["span"]["strict"]["micro"]["f1"])


def test_bootstrap_units_add_up_to_the_whole_even_across_line_breaks():
    # a predicted span across the line break joins the two paragraphs into one unit
    crossing = Span(TEXT.index("أمس"), TEXT.index("وصل") + 3, "DATE", TEXT[TEXT.index("أمس") : TEXT.index("وصل") + 3])
    pred = [p for p in PRED if p.text != "أمس"] + [crossing]
    assert resampling_units(DOC, PRED) == [(0, 1), (1, 2)] and resampling_units(DOC, pred) == [(0, 2)]
    r, _ = evaluate([DOC], [pred], resamples=0)
    intervals = r["bootstrap"]["intervals"]
    assert intervals["span_strict_micro_f1"]["estimate"] == pytest.approx(r["span"]["strict"]["micro"]["f1"])
    assert intervals["span_partial_micro_f1"]["estimate"] == pytest.approx(r["span"]["partial"]["micro"]["f1"])
    assert intervals["word_micro_f1"]["estimate"] == pytest.approx(r["word"]["micro"]["f1"])
    for label in ("ACTOR", "PLACE", "DATE"):
        assert intervals[f"span_strict_{label}_f1"]["estimate"] == pytest.approx(r["span"]["strict"]["per_label"][label]["f1"])
    # in the word view the crossing span is one entity in each paragraph: B-DATE on أمس (still right) and on وصل
    # (spurious), so 9 word-level entities are found, 4 of them right
    assert r["word"]["per_label"]["DATE"]["precision"] == pytest.approx(1 / 2)
    assert np.isclose(r["word"]["micro"]["precision"], 4 / 9)
