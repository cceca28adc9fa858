"""Public CoNLL corpora through label maps: reading, IOB repair, spans, config keys."""

import pytest

from arner.core.corpus import AnnotationError
from arner.core.public import ExternalCorpus, load, read_conll, read_label_map, split_tag

from conftest import SHARED

CONLL = """-DOCSTART- O

قال O
فلاديمير B-PERS
بوتين I-PERS
في O
موسكو I-LOC
( O
د B-ORG
ب I-ORG
أ) I-ORG
$#$ O

المنتدى B-MIS1
اليوم B-DATE
"""
MAP = "source\ttarget\tnote\nPERS\tACTOR\nLOC\tPLACE\nORG\tACTOR\nMIS1\tO\nDATE\tDATE\n"


@pytest.fixture
def corpus_dir(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "train.conll").write_text(CONLL, encoding="utf-8")
    (tmp_path / "c" / "label_map.tsv").write_text(MAP, encoding="utf-8")
    return tmp_path


def test_split_tag_handles_iob_iob2_and_noise():
    assert split_tag("B-LOC") == ("B", "LOC")
    assert split_tag("I--ORG") == ("I", "ORG")
    assert split_tag("O") == ("O", "")
    assert split_tag("MIS") == ("I", "MIS")


def test_sentences_skip_docstart_and_separators(corpus_dir):
    sentences = read_conll(corpus_dir / "c" / "train.conll")
    assert [len(s.tokens) for s in sentences] == [9, 2]
    assert sentences[0].line == 3


def test_documents_have_iob2_repaired_mapped_spans_on_word_characters(corpus_dir):
    (doc,) = load(ExternalCorpus(name="c", files=["c/train.conll"]), corpus_dir)
    assert doc.text.split("\n")[0] == "قال فلاديمير بوتين في موسكو ( د ب أ)"
    got = [(s.text, s.label) for s in doc.spans]
    # I-LOC after O starts an entity; the ORG span is trimmed to word characters; MIS1 maps to O
    assert got == [("فلاديمير بوتين", "ACTOR"), ("موسكو", "PLACE"), ("د ب أ", "ACTOR"), ("اليوم", "DATE")]
    assert all(doc.text[s.start : s.end] == s.text for s in doc.spans)


def test_unknown_tags_and_bad_lines_are_errors(corpus_dir):
    (corpus_dir / "c" / "label_map.tsv").write_text("source\ttarget\nPERS\tACTOR\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"tags missing from the label map: .*LOC"):
        load(ExternalCorpus(name="c", files=["c/train.conll"]), corpus_dir)
    (corpus_dir / "c" / "label_map.tsv").write_text("source\ttarget\nPERS\tPERSON\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match="label_map.tsv:2"):
        read_label_map(corpus_dir / "c" / "label_map.tsv")
    (corpus_dir / "c" / "bad.conll").write_text("قال O\nوحده\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match="bad.conll:2"):
        read_conll(corpus_dir / "c" / "bad.conll")


def test_missing_corpus_says_what_to_get(tmp_path):
    with pytest.raises(AnnotationError, match="corpus file not found: .*ANERcorp"):
        load(ExternalCorpus(name="x", files=["nope/train.conll"]), tmp_path)


def test_exclude_drops_listed_sentences(corpus_dir):
    (corpus_dir / "c" / "skip.txt").write_text("0\n", encoding="utf-8")
    (doc,) = load(ExternalCorpus(name="c", files=["c/train.conll"], exclude="c/skip.txt"), corpus_dir)
    assert doc.text == "المنتدى اليوم"


@pytest.mark.skipif(not (SHARED / "external" / "anercorp").is_dir(), reason="../shared/external not beside the checkout")
def test_anercorp_counts_match_its_readme():
    docs = load(ExternalCorpus(name="anercorp-test", files=["anercorp/test.conll"]), SHARED / "external")
    labels = [s.label for d in docs for s in d.spans]
    # README: test PERS 888 + ORG 450 -> ACTOR, LOC 657 -> PLACE, MISC -> O
    assert labels.count("ACTOR") == 888 + 450 and labels.count("PLACE") == 657
