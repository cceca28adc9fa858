"""Public CoNLL corpora through label maps: reading, IOB repair, spans, set-valued maps, caps, weights, config keys."""

import pytest

from arner.core.conventions import words
from arner.core.corpus import AnnotationError
from arner.core.public import (
    ExternalCorpus,
    PartialDocument,
    allowed_tags,
    load,
    load_test,
    load_training,
    read_conll,
    read_label_map,
    split_tag,
)
from arner.train.config import ConfigError, load_config
from arner.train.data import weighted

from conftest import ANNOTATIONS, REPO, SHARED

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
    with pytest.raises(AnnotationError) as e:
        load(ExternalCorpus(name="c", files=["c/train.conll"]), corpus_dir)
    # one line per missing tag, at its first line in the corpus, naming the map
    assert f"c/train.conll:7: error: tag 'LOC' (1 word, first here) is missing from the label map {corpus_dir}/c/label_map.tsv" in str(
        e.value
    )
    assert len(e.value.problems) == 4  # LOC, ORG, MIS1, DATE
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


# ---------------------------------------------------------------- set-valued maps

SETS = "source\ttargets\tnote\nPERS\tACTOR\tp\nLOC\tPLACE|ACTOR\tl\nORG\tACTOR\to\nMIS1\tO|ACTOR\tm\nDATE\tDATE\td\nO\tO|DATE\tno dates\n"


def test_set_valued_rows_are_read_in_tag_order(corpus_dir):
    (corpus_dir / "c" / "sets.tsv").write_text(SETS, encoding="utf-8")
    mapping = read_label_map(corpus_dir / "c" / "sets.tsv")
    assert mapping["LOC"] == ("ACTOR", "PLACE") and mapping["O"] == ("DATE", "O") and mapping["PERS"] == ("ACTOR",)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("LOC\tPLACES\tx", "source tag 'LOC': unknown target 'PLACES' (targets: ACTOR, PLACE, DATE, O)"),
        ("LOC\tACTOR|PLACES\tx", "source tag 'LOC': unknown target 'PLACES' in set 'ACTOR|PLACES'"),
        ("LOC\t\tx", "source tag 'LOC': empty target set ''"),
        ("LOC\t|\tx", "source tag 'LOC': empty target set '|'"),
        ("LOC\tACTOR|\tx", "source tag 'LOC': empty target set 'ACTOR|'"),
        ("LOC\tACTOR|ACTOR\tx", "a target is listed twice in 'ACTOR|ACTOR'"),
        ("PERS\tACTOR\tagain", "source tag 'PERS' mapped twice (first at line 2)"),
        ("O\tDATE\tx", "the O row must allow O"),
        ("LOC", "expected source<TAB>targets[<TAB>note]"),
    ],
)
def test_each_bad_map_row_is_one_line_naming_file_and_line(tmp_path, row, message):
    path = tmp_path / "map.tsv"
    path.write_text(f"source\ttargets\tnote\nPERS\tACTOR\tp\n{row}\n", encoding="utf-8")
    with pytest.raises(AnnotationError) as e:
        read_label_map(path)
    assert str(e.value).count("\n") == 0 and str(e.value).startswith(f"{path}:3: error: ") and message in str(e.value)


def test_allowed_tags_follow_the_source_span_unless_the_set_has_o():
    assert allowed_tags("B", ("ACTOR", "PLACE")) == ("B-ACTOR", "B-PLACE")
    assert allowed_tags("I", ("ACTOR", "PLACE")) == ("I-ACTOR", "I-PLACE")
    assert allowed_tags("I", ("ACTOR",)) == ("I-ACTOR",)
    assert allowed_tags("B", ("DATE", "O")) == ("O", "B-DATE", "I-DATE")  # an entity may begin anywhere in unannotated text
    assert allowed_tags("I", ("ACTOR", "O")) == ("O", "B-ACTOR", "I-ACTOR")
    assert allowed_tags("B", ("O",)) == ("O",)


def test_partial_documents_carry_each_words_allowed_tags(corpus_dir):
    (corpus_dir / "c" / "sets.tsv").write_text(SETS, encoding="utf-8")
    (doc,) = load_training(ExternalCorpus(name="c", files=["c/train.conll"], label_map="c/sets.tsv"), corpus_dir)
    assert isinstance(doc, PartialDocument) and len(doc.word_sets) == len(words(doc.text))
    o = ("O", "B-DATE", "I-DATE")
    got = list(zip([w.text for w in words(doc.text)], doc.word_sets))
    assert got == [
        ("قال", o),
        ("فلاديمير", ("B-ACTOR",)),
        ("بوتين", ("I-ACTOR",)),
        ("في", o),
        ("موسكو", ("B-ACTOR", "B-PLACE")),  # I-LOC after O starts the span
        ("د", ("B-ACTOR",)),  # "(" is no word: د is the first word
        ("ب", ("I-ACTOR",)),
        ("أ", ("I-ACTOR",)),
        ("المنتدى", ("O", "B-ACTOR", "I-ACTOR")),
        ("اليوم", ("B-DATE",)),
    ]
    # spans: the definite entities only (موسكو and المنتدى allow several tags)
    assert [(s.text, s.label) for s in doc.spans] == [("فلاديمير بوتين", "ACTOR"), ("د ب أ", "ACTOR"), ("اليوم", "DATE")]


def test_baselines_and_scoring_read_set_valued_entries_one_to_one(corpus_dir):
    (corpus_dir / "c" / "sets.tsv").write_text(SETS, encoding="utf-8")
    entry = ExternalCorpus(name="c", files=["c/train.conll"], label_map="c/sets.tsv")
    reference = load(ExternalCorpus(name="c", files=["c/train.conll"]), corpus_dir)
    assert load(entry, corpus_dir) == reference  # the reference label_map.tsv beside the corpus
    (corpus_dir / "c" / "one.tsv").write_text("s\tt\nPERS\tACTOR\nLOC\tACTOR\nORG\tACTOR\nMIS1\tACTOR\nDATE\tO\n", encoding="utf-8")
    docs, has_date = load_test(entry.model_copy(update={"label_map_one_to_one": "c/one.tsv"}), corpus_dir)
    assert [s.label for s in docs[0].spans] == ["ACTOR"] * 4 and not has_date
    with pytest.raises(AnnotationError, match="is itself set-valued"):
        load(entry.model_copy(update={"label_map_one_to_one": "c/sets.tsv"}), corpus_dir)
    plain = load_training(ExternalCorpus(name="c", files=["c/train.conll"]), corpus_dir)
    assert plain == reference and not isinstance(plain[0], PartialDocument)  # a one-to-one map trains as before


def test_project_maps_are_read_from_the_current_folder(corpus_dir, monkeypatch):
    project = corpus_dir / "project"
    (project / "configs" / "label_maps").mkdir(parents=True)
    (project / "configs" / "label_maps" / "c.tsv").write_text(SETS, encoding="utf-8")
    monkeypatch.chdir(project)
    entry = ExternalCorpus(name="c", files=["c/train.conll"], label_map="configs/label_maps/c.tsv")
    (doc,) = load_training(entry, corpus_dir)  # the corpus under external_root, the map under the current folder
    assert isinstance(doc, PartialDocument)


def test_max_words_keeps_whole_documents_the_same_way_for_every_reader(tmp_path):
    (tmp_path / "c").mkdir()
    sentences = [f"كلمة{i} O\nموسكو B-LOC\nقال O\n" for i in range(40)]
    (tmp_path / "c" / "train.conll").write_text("\n".join(sentences), encoding="utf-8")
    (tmp_path / "c" / "label_map.tsv").write_text("s\tt\nLOC\tPLACE\n", encoding="utf-8")
    (tmp_path / "c" / "sets.tsv").write_text("s\tt\nLOC\tACTOR|PLACE\n", encoding="utf-8")
    entry = ExternalCorpus(name="c", files=["c/train.conll"], sentences_per_document=4, max_words=40)
    plain = load(entry, tmp_path)
    assert len(plain) == 3 and sum(len(words(d.text)) for d in plain) == 36  # 12-word documents: three fit in 40
    assert plain == load(entry, tmp_path)  # deterministic
    assert [d.doc for d in plain] != ["c-00000", "c-00001", "c-00002"]  # spread over the corpus, not its start
    partial = load_training(entry.model_copy(update={"label_map": "c/sets.tsv"}), tmp_path)
    assert [(d.doc, d.text) for d in partial] == [(d.doc, d.text) for d in plain]
    with pytest.raises(ValueError, match="max_words 5 is smaller than every document"):
        load(entry.model_copy(update={"max_words": 5}), tmp_path)


def test_weight_repeats_or_samples_documents_by_seed():
    docs = [f"d{i}" for i in range(10)]
    assert weighted(docs, 1.0, 42, "c") == docs
    half = weighted(docs, 0.5, 42, "c")
    assert len(half) == 5 and half == sorted(half, key=docs.index) and half == weighted(docs, 0.5, 42, "c")
    assert weighted(docs, 0.5, 7, "c") != half or weighted(docs, 0.5, 8, "c") != half
    assert sorted(weighted(docs, 2.5, 42, "c")) == sorted(docs + docs + half)
    assert weighted(docs, 0.01, 42, "c") != []  # a small weight still trains on something


# ---------------------------------------------------------------- configs

PUBLIC = REPO / "configs" / "public.yaml"
ONE_TO_ONE = REPO / "configs" / "public-one-to-one.yaml"
MAPS = REPO / "configs" / "label_maps"


def test_public_configs_differ_only_in_their_label_maps():
    partial, plain = load_config(PUBLIC).to_dict(), load_config(ONE_TO_ONE).to_dict()
    maps = [e.pop("label_map") for e in partial["extra_train"]]
    assert maps == [f"configs/label_maps/{n}.tsv" for n in ("anercorp", "aqmar", "newsfane", "wojood")]
    assert [e.pop("label_map").endswith("/label_map.tsv") for e in plain["extra_train"]] == [True] * 4
    assert partial == plain and partial["model"] == "tiny"
    assert [e["name"] for e in partial["external_test"]] == ["anercorp-test", "wojood-test"]
    assert partial["extra_train"][2]["exclude"] == "newsfane_gold/sentences_overlapping_anercorp_test.txt"


def test_corpus_keys_are_checked():
    for override, message in [
        ("extra_train=[{files: [a.conll], weight: 0}]", r"extra_train\[0\].weight must be in \(0, 100\] \(got 0\)"),
        ("extra_train=[{files: [a.conll], max_words: -1}]", r"extra_train\[0\].max_words must be >= 0"),
        ("external_test=[{files: [a.conll], weight: 2}]", r"external_test\[0\].weight applies to extra_train corpora only"),
        ("extra_train=[{files: [a.conll]}, {files: [a.conll]}]", r"extra_train\[1\].name .*is used twice"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(REPO / "configs" / "tiny.yaml", [override])
    config = load_config(PUBLIC, ["extra_train.0.max_words=2000", "extra_train.3.weight=2e-1"])
    assert config.extra_train[0].max_words == 2000 and config.extra_train[3].weight == 0.2
    with pytest.raises(ConfigError, match="7 is not an index of a list of 4 entries"):
        load_config(PUBLIC, ["extra_train.7.max_words=1"])


def test_every_row_of_the_project_maps_says_why():
    for path in sorted(MAPS.glob("*.tsv")):
        rows = path.read_text(encoding="utf-8").splitlines()[1:]
        read_label_map(path)
        assert all(len(r.split("\t")) == 3 and r.split("\t")[2].strip() for r in rows), path


EXTERNAL = SHARED / "external"
needs_corpora = pytest.mark.skipif(not (EXTERNAL / "anercorp").is_dir(), reason="../shared/external not beside the checkout")


@needs_corpora
def test_project_maps_cover_every_tag_of_their_corpora():
    config = load_config(PUBLIC)
    for entry in config.extra_train:  # the training files, and the test files through the same maps
        tests = {"anercorp": ["anercorp/test.conll"], "wojood": ["wojood_sample/val.conll", "wojood_sample/test.conll"]}
        for files in [entry.files, *[[f] for f in tests.get(entry.label_map.split("/")[-1][:-4], [])]]:
            probe = entry.model_copy(update={"files": files, "exclude": "" if files != entry.files else entry.exclude})
            assert load_training(probe, EXTERNAL)


@needs_corpora
def test_every_cv_fold_trains_on_the_same_public_data():
    from arner.train.data import fingerprint
    from arner.train.finetune import load_training_documents

    config = load_config(PUBLIC, [f"annotations={ANNOTATIONS}", "extra_train.0.max_words=3000", "extra_train.2.max_words=3000"])
    extras = [load_training_documents(config, fold)[2] for fold in (0, 3, None)]
    prints = [{name: fingerprint(docs) for name, docs in extra.items()} for extra in extras]
    assert prints[0] == prints[1] == prints[2] and len(prints[0]) == 4
    assert len(extras[0]["newsfane"]) < len(load_training(config.extra_train[2], EXTERNAL))  # weight 0.5 kept half
