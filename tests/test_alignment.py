"""Windows cover every word; labels sit on the right subwords."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arner.core import corpus
from arner.core.alignment import Window, encode_document, plan_windows, window_owners
from arner.core.conventions import TAG2ID, Span, words
from arner.core.corpus import Document
from arner.train.data import IGNORE, window_examples
from arner.train.model import train_wordpiece

from conftest import ANNOTATIONS


@given(st.integers(1, 300), st.integers(4, 64), st.data())
def test_plan_windows_cover_everything_without_cutting_words(n, size, data):
    stride = data.draw(st.integers(0, size - 1))
    starts = [True] + [data.draw(st.booleans()) for _ in range(n - 1)] + [True]
    windows = plan_windows(n, starts, size, stride)
    assert windows[0][0] == 0 and windows[-1][1] == n
    for (a, b), (c, _) in zip(windows, windows[1:]):
        assert a < c <= b  # progress, and no gap between windows
    for a, b in windows:
        assert 0 < b - a <= size
        if b < n and any(starts[a + 2 : b + 1]):
            assert starts[b]  # a window ends at a word start when one is available


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece([d.text for d in corpus.load(ANNOTATIONS)], vocab_size=400)


@pytest.mark.parametrize(("max_length", "stride"), [(32, 8), (64, 16), (512, 64)])
def test_every_word_of_every_article_lands_in_a_window(tokenizer, max_length, stride):
    for d in corpus.load(ANNOTATIONS):
        ws = words(d.text)
        enc = encode_document(tokenizer, d.text, ws, max_length, stride)
        assert all(t >= 0 for t in enc.word_first_token), d.doc
        assert (window_owners(len(enc.input_ids), enc.windows) >= 0).all()
        assert all(len(w.input_ids) <= max_length for w in enc.windows)
        # the first subword of each word starts at the word (never inside another word)
        assert all(enc.offsets[t][0] <= w.start < enc.offsets[t][1] for t, w in zip(enc.word_first_token, ws))


def labelled(tokenizer, text, spans, **kw):
    doc = Document("d", text, spans)
    (ex,) = window_examples(tokenizer, doc, 64, 8, **kw)
    pieces = tokenizer.convert_ids_to_tokens(ex["input_ids"])
    return list(zip(pieces, ex["labels"]))


def test_first_subword_labelled_and_the_rest_ignored():
    text = "التقى وويتكوف بوتين في موسكو"
    tok = train_wordpiece([text], vocab_size=40)  # so small that words split into pieces
    spans = [Span(7, 13, "ACTOR", "ويتكوف"), Span(14, 19, "ACTOR", "بوتين"), Span(23, 28, "PLACE", "موسكو")]
    rows = labelled(tok, text, spans)
    assert rows[0] == ("[CLS]", IGNORE) and rows[-1] == ("[SEP]", IGNORE)
    # rebuild words from pieces: a word starts where a piece lacks "##"
    firsts = [(p, lab) for p, lab in rows[1:-1] if not p.startswith("##")]
    rest = [lab for p, lab in rows[1:-1] if p.startswith("##")]
    assert [lab for _, lab in firsts] == [TAG2ID[t] for t in ("O", "B-ACTOR", "B-ACTOR", "O", "B-PLACE")]
    assert rest and all(lab == IGNORE for lab in rest)
    # the proclitic word وويتكوف is one word, labelled on its first piece (which holds the و)
    assert firsts[1][0].startswith("و")


def test_label_all_subwords_turns_b_into_i():
    text = "قال كيريل دميترييف"
    tok = train_wordpiece([text], vocab_size=35)
    rows = labelled(tok, text, [Span(4, 18, "ACTOR", "كيريل دميترييف")], label_all_subwords=True)
    labels = [lab for _, lab in rows[1:-1]]
    pieces = [p for p, _ in rows[1:-1]]
    first_of_name = next(i for i, p in enumerate(pieces) if p == "ك" or p.startswith("ك"))
    assert labels[first_of_name] == TAG2ID["B-ACTOR"]
    assert all(lab == TAG2ID["I-ACTOR"] for lab in labels[first_of_name + 1 :])
    assert all(lab == TAG2ID["O"] for lab in labels[:first_of_name])


def test_window_owner_is_the_window_where_the_token_is_furthest_from_an_edge():
    windows = [Window(0, 10, [], 1), Window(6, 16, [], 1), Window(12, 20, [], 1)]
    owners = window_owners(20, windows).tolist()
    # token 7: margin 2 in window 0, 1 in window 1 -> 0; token 8: 1 vs 2 -> 1; token 14: 1 vs 2 -> 2
    assert owners[:6] == [0] * 6 and owners[7] == 0 and owners[8] == 1 and owners[13] == 1 and owners[14] == 2
    # ties go to the earlier window: token 13 has margin 2 in window 1 and 1 in window 2
    assert owners[19] == 2
