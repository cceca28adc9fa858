"""Reading and checking annotation folders, and the bad inputs the issue lists."""

import json
import os

import pytest
from typer.testing import CliRunner

from arner.cli import app
from arner.core import atomic, corpus

from conftest import ANNOTATIONS, SHARED, TEXT, snapshot, span, write_folder

runner = CliRunner()


def errors_of(root):
    _, problems = corpus.check(root)
    return [p for p in problems if p.severity == "error"]


def test_the_dataset_checks_clean():
    documents, problems = corpus.check(ANNOTATIONS)
    assert len(documents) == 5
    assert [p for p in problems if p.severity == "error"] == []
    assert sum(len(d.spans) for d in documents) > 250


@pytest.mark.skipif(not (SHARED / "seeds").is_dir(), reason="../shared/seeds not beside the checkout")
def test_articles_are_byte_identical_to_the_seeds():
    seeds = sorted((SHARED / "seeds").glob("*.txt"))
    assert [p.name for p in seeds] == sorted(p.name for p in (ANNOTATIONS / "articles").glob("*.txt"))
    for seed in seeds:
        assert (ANNOTATIONS / "articles" / seed.name).read_bytes() == seed.read_bytes()


def test_spans_are_sorted_and_match_the_text():
    for d in corpus.load(ANNOTATIONS):
        assert d.spans == sorted(d.spans)
        assert all(d.text[s.start : s.end] == s.text for s in d.spans)


def test_good_folder_has_no_problems(good_folder):
    documents, problems = corpus.check(good_folder)
    assert problems == [] and len(documents[0].spans) == 4


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"start": 6, "end": 99, "label": "ACTOR", "text": "x"}, "out of range"),
        ({"start": 11, "end": 6, "label": "ACTOR", "text": "x"}, "out of range or reversed"),
        ({"start": 6, "end": 11, "label": "ACTOR", "text": "بوتن"}, "text mismatch"),
        ({"start": 6, "end": 11, "label": "PERSON", "text": "بوتين"}, "unknown label"),
        ({"start": 5, "end": 11, "label": "ACTOR", "text": " بوتين"}, "whitespace or punctuation"),
        ({"start": 6, "end": "11", "label": "ACTOR", "text": "بوتين"}, "'end' must be int"),
        ({"start": 6, "label": "ACTOR", "text": "بوتين"}, "missing key 'end'"),
    ],
)
def test_bad_span_names_file_line_span_and_problem(tmp_path, bad, message):
    root = write_folder(tmp_path / "ann", {"doc1": (TEXT, [bad, span(TEXT, "موسكو", "PLACE")])})
    errors = errors_of(root)
    assert len(errors) == 1
    line = str(errors[0])
    assert "doc1.json" in line and message in line and "span 0" in line
    assert errors[0].line is not None


def test_overlap_and_order_are_errors(tmp_path):
    spans = [span(TEXT, "يوم الجمعة", "DATE"), span(TEXT, "بوتين وويتكوف", "ACTOR"), span(TEXT, "ويتكوف", "ACTOR")]
    errors = errors_of(write_folder(tmp_path / "ann", {"doc1": (TEXT, spans)}))
    messages = " | ".join(str(e) for e in errors)
    assert "must be sorted by start" in messages and "overlaps" in messages


def test_bad_json_gives_file_and_line(tmp_path):
    root = write_folder(tmp_path / "ann", {"doc1": (TEXT, [])})
    (root / "spans" / "doc1.json").write_text('{"doc": "doc1",\n "spans": [\n {"start": 1,,}]}', encoding="utf-8")
    (error,) = errors_of(root)
    assert error.line == 3 and "bad JSON" in error.message and error.path.endswith("doc1.json")


def test_not_utf8_article_is_an_error(tmp_path):
    root = write_folder(tmp_path / "ann", {"doc1": (TEXT, [])})
    (root / "articles" / "doc1.txt").write_bytes("سطر\n".encode() + b"\xff\xfe bad")
    messages = [str(e) for e in errors_of(root)]
    assert any("doc1.txt:2" in m and "not UTF-8" in m for m in messages)


def test_missing_article_duplicate_doc_and_wrong_doc_id(tmp_path):
    root = write_folder(tmp_path / "ann", {"doc1": (TEXT, []), "doc2": (TEXT, []), "doc3": (TEXT, [])})
    (root / "spans" / "doc3.json").unlink()
    (root / "spans" / "ghost.json").write_text(json.dumps({"doc": "ghost", "spans": []}), encoding="utf-8")
    (root / "spans" / "doc2.json").write_text(json.dumps({"doc": "doc1", "spans": []}), encoding="utf-8")
    messages = " | ".join(str(e) for e in errors_of(root))
    assert "ghost.txt is missing" in messages
    assert "does not match the file name 'doc2'" in messages
    assert "duplicate doc id 'doc1'" in messages
    assert "doc3.txt: error: article has no span file" in messages


def test_all_problems_are_listed_at_once(tmp_path):
    bad = [{"start": 0, "end": 2, "label": "X", "text": "ال"}, {"start": 6, "end": 11, "label": "ACTOR", "text": "خطأ"}]
    root = write_folder(tmp_path / "ann", {"doc1": (TEXT, bad), "doc2": (TEXT, bad)})
    assert len(errors_of(root)) == 4


def test_check_cli_exit_codes(good_folder, tmp_path):
    ok = runner.invoke(app, ["annotations", "check", str(good_folder)])
    assert ok.exit_code == 0 and "0 errors" in ok.output
    bad = write_folder(tmp_path / "bad", {"doc1": (TEXT, [{"start": 0, "end": 3, "label": "ACTOR", "text": "zzz"}])})
    result = runner.invoke(app, ["annotations", "check", str(bad)])
    assert result.exit_code == 1 and "text mismatch" in result.output and "1 errors" in result.output


def test_proclitic_start_is_a_warning_not_an_error(tmp_path):
    text = "قال ويتكوف ثم وويتكوف وواشنطن"
    spans = [{"start": 14, "end": 21, "label": "ACTOR", "text": "وويتكوف"}, {"start": 23, "end": 29, "label": "ACTOR", "text": "واشنطن"}]
    root = write_folder(tmp_path / "ann", {"d": (text, spans)})
    _, problems = corpus.check(root)
    assert [p.severity for p in problems] == ["warning"] and "proclitic" in problems[0].message


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old", encoding="utf-8")

    with pytest.raises(TypeError):
        atomic.write_text(target, 12345)  # type: ignore[arg-type]
    assert target.read_text(encoding="utf-8") == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_directory_removes_temp_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic.directory(target) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("fail mid-write")
    assert list(tmp_path.iterdir()) == []


def test_stats_counts(good_folder):
    result = runner.invoke(app, ["annotations", "stats", str(good_folder), "--json"])
    data = json.loads(result.output)
    d = data["documents"]["doc1"]
    assert d["words"] == 7
    assert d["spans"] == {"ACTOR": 2, "PLACE": 1, "DATE": 1, "total": 4}
    assert d["words_in_spans"] == {"ACTOR": 2, "PLACE": 1, "DATE": 2, "total": 5}
    table = runner.invoke(app, ["annotations", "stats", str(good_folder)]).output
    assert "| doc1 | 7 | 2 | 1 | 1 | 4 |" in table


def test_save_with_a_lone_surrogate_fails_before_touching_the_folder(good_folder):
    before = snapshot(good_folder)
    with pytest.raises(corpus.AnnotationError) as e:
        corpus.save([corpus.Document("new", "abc", []), corpus.Document("bad", "abc \ud800 def", [])], good_folder)
    assert "bad.txt" in str(e.value) and "lone surrogate" in str(e.value)
    assert snapshot(good_folder) == before


def test_save_failing_between_spans_and_articles_keeps_the_old_folder(good_folder, monkeypatch):
    before = snapshot(good_folder)
    real, calls = os.replace, []

    def full_disk_on_the_third_rename(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", full_disk_on_the_third_rename)
    with pytest.raises(OSError, match="No space"):
        corpus.save([corpus.Document("new", "abc", [])], good_folder)
    monkeypatch.undo()
    assert snapshot(good_folder) == before
    assert [p.name for p in good_folder.parent.iterdir()] == [good_folder.name]


def test_save_replaces_spans_and_articles_whole_and_keeps_the_rest(good_folder):
    (good_folder / "GUIDELINES.md").write_text("keep", encoding="utf-8")
    corpus.save([corpus.Document("new", "قال بوتين", [])], good_folder)
    assert sorted(str(p.relative_to(good_folder)) for p in good_folder.rglob("*")) == [
        "GUIDELINES.md",
        "articles",
        "articles/new.txt",
        "spans",
        "spans/new.json",
    ]
    corpus.save([corpus.Document("other", "قال", [])], good_folder, with_articles=False)
    assert [p.name for p in (good_folder / "spans").iterdir()] == ["other.json"]
    assert [p.name for p in (good_folder / "articles").iterdir()] == ["new.txt"]


def test_save_refuses_duplicate_and_unsafe_doc_ids(tmp_path):
    docs = [corpus.Document("d", "abc", []), corpus.Document("../x", "abc", []), corpus.Document("d", "abd", [])]
    with pytest.raises(corpus.AnnotationError) as e:
        corpus.save(docs, tmp_path / "out")
    assert [p.message for p in e.value.problems] == [
        "document 1: doc id '../x' contains a path separator ('/' or '\\')",
        "document 2: duplicate doc id 'd' (also at document 0)",
    ]
    assert list(tmp_path.iterdir()) == []
