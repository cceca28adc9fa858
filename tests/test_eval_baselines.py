"""The memorization and CRF baselines: hand-made cases and the real annotations."""

from collections import Counter

import pytest

from arner.core import corpus
from arner.core.conventions import LABELS, Span, overlaps, span_problems
from arner.core.corpus import Document
from arner.eval.baselines import CRF, Memorization, shape, strip_word
from arner.eval.metrics import evaluate

from conftest import ANNOTATIONS


def doc(text: str, *mentions: tuple[str, str]) -> Document:
    spans, pos = [], 0
    for surface, label in mentions:
        i = text.index(surface, pos)
        spans.append(Span(i, i + len(surface), label, surface))
        pos = i + len(surface)
    return Document("train", text, spans)


@pytest.fixture(scope="module")
def documents():
    return corpus.load(ANNOTATIONS)


def test_memorization_longest_match_majority_label_and_proclitics():
    train = doc(
        "زار بوتين روسيا ثم روسيا ثم روسيا والولايات المتحدة والمتحدة",
        ("بوتين", "ACTOR"),
        ("روسيا", "ACTOR"),
        ("روسيا", "ACTOR"),
        ("روسيا", "PLACE"),
        ("الولايات المتحدة", "PLACE"),
        ("المتحدة", "DATE"),
    )
    m = Memorization().fit([train])
    text = "وروسيا وبوتين بوتين الروسية والولايات المتحدة"
    got = [(s.text, s.label, text[s.start - 1] if s.start else "") for s in m.predict([text])[0]]
    assert got == [
        ("روسيا", "ACTOR", "و"),  # majority label, proclitic left outside
        ("بوتين", "ACTOR", "و"),
        ("بوتين", "ACTOR", " "),  # a name starting with ب is matched whole, not as ب + وتين
        # الروسية: no match inside a word
        ("الولايات المتحدة", "PLACE", "و"),  # the longest match wins over المتحدة
    ]
    assert Memorization().fit([]).predict([text]) == [[]]


def test_memorization_ties_follow_the_label_order():
    train = doc("موسكو و موسكو", ("موسكو", "PLACE"), ("موسكو", "ACTOR"))
    (spans,) = Memorization().fit([train]).predict(["في موسكو"])
    assert [s.label for s in spans] == [min(("PLACE", "ACTOR"), key=LABELS.index)]


def test_memorization_recovers_its_training_spans(documents):
    m = Memorization().fit(documents)
    preds = m.predict([d.text for d in documents])
    metrics, _ = evaluate(documents, preds, resamples=0)
    gold = [s for d in documents for s in d.spans]
    # every training span is found with its boundaries ...
    assert metrics["span"]["exact"]["micro"]["recall"] == 1.0
    # ... and is right wherever its label is its surface's majority label
    counts = Counter((s.text, s.label) for s in gold)
    majority = {text: max(LABELS, key=lambda lab, t=text: (counts[(t, lab)], -LABELS.index(lab))) for text, _ in counts}
    assert metrics["span"]["strict"]["micro"]["correct"] == sum(majority[s.text] == s.label for s in gold)


def test_features():
    assert strip_word("وروسيا") == "روسيا" and strip_word("روسيا") == "روسيا" and strip_word("ولي") == "ولي"
    assert shape("2025") == "d" and shape("روسيا") == "a" and shape("NBC") == "X" and shape("RT1") == "Xd"


def test_crf_is_deterministic_valid_and_learns(documents):
    train, held = documents[1:], documents[0]
    first = CRF().fit(train).predict([held.text])
    again = CRF().fit(train).predict([held.text])
    assert first == again
    (spans,) = first
    assert spans and all(span_problems(held.text, s) == [] for s in spans) and overlaps(spans) == []
    # it fits its training data closely and does far better than chance on the held-out article
    fitted = CRF().fit(train)
    on_train, _ = evaluate(train, fitted.predict([d.text for d in train]), resamples=0)
    held_out, _ = evaluate([held], first, resamples=0)
    assert on_train["span"]["strict"]["micro"]["f1"] > 0.9
    assert held_out["span"]["strict"]["micro"]["f1"] > 0.5


def test_crf_moves_known_proclitics_out():
    train = doc("قال بوتين إن روسيا تريد السلام مع أوكرانيا", ("بوتين", "ACTOR"), ("روسيا", "ACTOR"), ("أوكرانيا", "ACTOR"))
    crf = CRF().fit([train] * 3)
    text = "قال بوتين إن روسيا وأوكرانيا"
    (spans,) = crf.predict([text])
    assert "أوكرانيا" in [s.text for s in spans] and all(not s.text.startswith("وأ") for s in spans)


@pytest.mark.parametrize("system", [CRF, Memorization])
def test_baselines_refuse_set_valued_labels(system):
    from arner.core.public import PartialDocument

    text = "زار موسكو"
    partial = PartialDocument("p", text, [], [("O", "B-DATE", "I-DATE"), ("B-ACTOR", "B-PLACE")])
    with pytest.raises(ValueError, match=f"the {system.name} baseline cannot train on set-valued labels .*'p'.*one-to-one"):
        system().fit([doc(text, ("موسكو", "PLACE")), partial])
