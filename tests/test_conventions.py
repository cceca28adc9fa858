from hypothesis import given
from hypothesis import strategies as st

from arner.core.conventions import (
    ID2TAG,
    TAGS,
    Span,
    overlaps,
    paragraphs,
    proclitic_warning,
    span_problems,
    strip_proclitics,
    tags_to_spans,
    word_tags,
    words,
)


def test_tags_are_iob2_over_three_labels():
    assert TAGS == ("O", "B-ACTOR", "I-ACTOR", "B-PLACE", "I-PLACE", "B-DATE", "I-DATE")
    assert ID2TAG[1] == "B-ACTOR"


def test_words_are_runs_of_letters_marks_and_digits():
    text = "وَصَلَ «بوتين» يوم 25، إلى: NBC-News"
    assert [w.text for w in words(text)] == ["وَصَلَ", "بوتين", "يوم", "25", "إلى", "NBC", "News"]
    assert all(text[w.start : w.end] == w.text for w in words(text))


def test_a_span_inside_a_word_tags_the_whole_word():
    text = "قال بوتين وويتكوف"
    ws = words(text)
    spans = [Span(4, 9, "ACTOR", "بوتين"), Span(11, 17, "ACTOR", "ويتكوف")]
    assert word_tags(ws, spans) == ["O", "B-ACTOR", "B-ACTOR"]
    # back to spans: the proclitic word comes back whole
    assert [s.text for s in tags_to_spans(text, ws, word_tags(ws, spans))] == ["بوتين", "وويتكوف"]


def test_multiword_span_is_b_then_i():
    text = "وزير الخارجية ماركو روبيو اليوم"
    ws = words(text)
    assert word_tags(ws, [Span(14, 25, "ACTOR", "ماركو روبيو")]) == ["O", "O", "B-ACTOR", "I-ACTOR", "O"]


def test_invalid_iob2_i_without_b_starts_an_entity():
    text = "a b c d"
    ws = words(text)
    spans = tags_to_spans(text, ws, ["I-ACTOR", "I-ACTOR", "I-PLACE", "O"])
    assert [(s.text, s.label) for s in spans] == [("a b", "ACTOR"), ("c", "PLACE")]


def test_paragraphs_skip_lines_without_words():
    text = "سطر أول\n\n➖➖\nسطر ثان"
    assert [text[a:b] for a, b in paragraphs(text)] == ["سطر أول", "سطر ثان"]


def test_span_problems():
    text = "في موسكو، أمس"
    assert span_problems(text, Span(3, 8, "PLACE", "موسكو")) == []
    assert "unknown label" in span_problems(text, Span(3, 8, "LOC", "موسكو"))[0]
    assert "out of range" in span_problems(text, Span(3, 99, "PLACE", "x"))[0]
    assert "out of range" in span_problems(text, Span(8, 3, "PLACE", "x"))[0]
    assert "text mismatch" in span_problems(text, Span(3, 8, "PLACE", "موسكا"))[0]
    assert "punctuation" in span_problems(text, Span(3, 9, "PLACE", "موسكو،"))[0]
    assert "whitespace" in span_problems(text, Span(2, 8, "PLACE", " موسكو"))[0]


def test_overlaps_finds_nested_and_crossing():
    a, b, c = Span(0, 10, "ACTOR", ""), Span(2, 3, "ACTOR", ""), Span(5, 12, "PLACE", "")
    assert overlaps([a, b, c]) == [(a, b), (a, c)]
    assert overlaps([Span(0, 2, "DATE", ""), Span(2, 4, "DATE", "")]) == []


def test_proclitic_warning_only_at_word_start():
    text = "وويتكوف"
    assert proclitic_warning(text, Span(0, 7, "ACTOR", text))
    assert proclitic_warning(text, Span(1, 7, "ACTOR", "ويتكوف")) is None
    # with the document's words, only a stripped form that exists elsewhere warns
    assert proclitic_warning(text, Span(0, 7, "ACTOR", text), {"وويتكوف"}) is None
    assert proclitic_warning(text, Span(0, 7, "ACTOR", text), {"ويتكوف"})
    assert proclitic_warning("واشنطن", Span(0, 6, "ACTOR", "واشنطن"), {"واشنطن"}) is None


def test_strip_proclitics_uses_known_surfaces():
    text = "قال وويتكوف ولبوتين"
    whole = Span(4, 11, "ACTOR", "وويتكوف")
    assert strip_proclitics(text, whole, {"ويتكوف"}).text == "ويتكوف"
    assert strip_proclitics(text, whole, set()) == whole
    assert strip_proclitics(text, Span(12, 19, "ACTOR", "ولبوتين"), {"بوتين"}).text == "بوتين"


LETTERS = "ابتثجحخدرزسشصضطظعغفقكلمنهوي"
WORD = st.text(alphabet=LETTERS + "0123456789", min_size=1, max_size=6)
SEP = st.sampled_from([" ", "  ", "، ", "\n", " - ", " «", "» "])
PREFIX = st.sampled_from(["", "و", "ب", "ول", "ف"])


@st.composite
def annotated(draw):
    """Random text from words and separators with random spans over word runs."""
    n = draw(st.integers(1, 12))
    ws = [draw(WORD) for _ in range(n)]
    seps = [draw(SEP) for _ in range(n)]
    pre = [draw(PREFIX) for _ in range(n)]
    text, bounds = "", []
    for w, s, p in zip(ws, seps, pre):
        text += p
        bounds.append((len(text) - len(p), len(text), len(text) + len(w)))  # word start, name start, end
        text += w + s
    spans, i = [], 0
    while i < n:
        if draw(st.booleans()):
            j = draw(st.integers(i + 1, min(n, i + 3)))
            label = draw(st.sampled_from(["ACTOR", "PLACE", "DATE"]))
            spans.append((i, j, label))
            i = j
        else:
            i += 1
    return text, bounds, spans


@given(annotated())
def test_word_aligned_spans_round_trip(case):
    text, bounds, ranges = case
    spans = [Span(bounds[i][0], bounds[j - 1][2], lab, text[bounds[i][0] : bounds[j - 1][2]]) for i, j, lab in ranges]
    ws = words(text)
    tags = word_tags(ws, spans)
    assert tags_to_spans(text, ws, tags) == spans


@given(annotated())
def test_spans_with_proclitics_outside_map_to_their_words(case):
    text, bounds, ranges = case
    spans = [Span(bounds[i][1], bounds[j - 1][2], lab, text[bounds[i][1] : bounds[j - 1][2]]) for i, j, lab in ranges]
    ws = words(text)
    back = tags_to_spans(text, ws, word_tags(ws, spans))
    assert [(s.start, s.end, s.label) for s in back] == [(bounds[i][0], bounds[j - 1][2], lab) for i, j, lab in ranges]
