"""The predictions file: round trip, and every kind of bad file is a clear error (file, line, entity, problem)."""

import json

import pytest
from typer.testing import CliRunner

from arner.cli import app
from arner.core import corpus
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError
from arner.core.formats import predictions

from conftest import TEXT, write_folder

runner = CliRunner()
TEXT2 = "وصل كيريل دميترييف إلى ميامي يوم السبت"


def at(text: str, surface: str, label: str, **extra) -> dict:
    i = text.index(surface)
    return {"start": i, "end": i + len(surface), "label": label, "text": surface, **extra}


@pytest.fixture
def gold(tmp_path):
    root = write_folder(tmp_path / "ann", {"doc1": (TEXT, [at(TEXT, "بوتين", "ACTOR")]), "doc2": (TEXT2, [at(TEXT2, "ميامي", "PLACE")])})
    return root, corpus.load(root)


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def line(doc, entities):
    return json.dumps({"doc": doc, "entities": entities}, ensure_ascii=False)


def test_write_then_read_round_trips_with_scores(tmp_path, gold):
    _, docs = gold
    putin = Span(**{k: v for k, v in at(TEXT, "بوتين", "ACTOR").items()})
    moscow = at(TEXT, "موسكو", "PLACE", score=0.5)
    path = tmp_path / "p.jsonl"
    predictions.write(path, [("doc1", [moscow, putin]), {"doc": "doc2", "entities": []}])
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [r["doc"] for r in rows] == ["doc1", "doc2"]
    assert rows[0]["entities"] == [putin.to_json(), moscow]  # sorted by offset; score kept only where given
    assert "بوتين" in path.read_text(encoding="utf-8")  # UTF-8, not \\u escapes
    read = predictions.read(path, docs)
    assert [(d.doc, d.text) for d in read] == [("doc1", TEXT), ("doc2", TEXT2)]
    assert read[0].spans == [putin, Span(moscow["start"], moscow["end"], "PLACE", "موسكو")] and read[1].spans == []


ENTITY_CASES = [
    (at(TEXT, "بوتين", "ACTOR") | {"end": 999}, "out of range"),
    (at(TEXT, "بوتين", "ACTOR") | {"start": 11, "end": 6}, "out of range or reversed"),
    (at(TEXT, "بوتين", "ACTOR") | {"text": "بوتن"}, "text mismatch"),
    (at(TEXT, "بوتين", "PERSON"), "unknown label 'PERSON'"),
    (at(TEXT, " بوتين", "ACTOR"), "begins or ends with whitespace"),
    ({k: v for k, v in at(TEXT, "بوتين", "ACTOR").items() if k != "label"}, "missing key 'label'"),
    (at(TEXT, "بوتين", "ACTOR") | {"start": "6"}, "'start' must be int"),
    (at(TEXT, "بوتين", "ACTOR", score="high"), "'score' must be a finite number"),
    (at(TEXT, "بوتين", "ACTOR", confidence=1), "unknown key(s) 'confidence'"),
]


@pytest.mark.parametrize(("entity", "message"), ENTITY_CASES)
def test_bad_entity_names_file_line_entity_and_problem(tmp_path, gold, entity, message):
    _, docs = gold
    path = write_lines(tmp_path / "p.jsonl", [line("doc2", []), line("doc1", [at(TEXT, "موسكو", "PLACE"), entity])])
    with pytest.raises(AnnotationError) as e:
        predictions.read(path, docs)
    (problem,) = e.value.problems
    assert problem.path == str(path) and problem.line == 2
    assert message in problem.message and "doc 'doc1' entity 1" in problem.message


@pytest.mark.parametrize(
    ("lines", "message", "where"),
    [
        ([line("doc1", []), '{"doc": "doc2", "entities": [}'], "bad JSON", 2),
        ([line("doc1", []), line("doc9", [])], "unknown doc 'doc9'", 2),
        ([line("doc1", []), line("doc2", []), line("doc1", [])], "doc 'doc1' appears twice (also line 1)", 3),
        ([line("doc1", []), json.dumps({"doc": "doc2"})], 'expected {"doc": str, "entities": [...]}', 2),
        ([line("doc1", [])], "gold doc 'doc2' has no line", None),
        ([line("doc1", [at(TEXT, "بوتين وويتكوف", "ACTOR"), at(TEXT, "ويتكوف", "ACTOR")]), line("doc2", [])], "overlaps entity 0", 1),
        ([line("doc1", [at(TEXT, "بوتين", "ACTOR"), at(TEXT, "بوتين", "ACTOR")]), line("doc2", [])], "entity 1", 1),
    ],
)
def test_bad_lines(tmp_path, gold, lines, message, where):
    _, docs = gold
    path = write_lines(tmp_path / "p.jsonl", lines)
    with pytest.raises(AnnotationError) as e:
        predictions.read(path, docs)
    problem, *more = e.value.problems
    assert message in problem.message and problem.line == where and problem.path == str(path)
    # a doc id that is not in the gold also leaves a gold document without a line
    assert [p.message for p in more] == (
        ["gold doc 'doc2' has no line (pass missing='empty' / --missing empty to score it as empty)"] if "doc9" in message else []
    )


def test_every_problem_is_listed_at_once(tmp_path, gold):
    _, docs = gold
    bad_label, bad_text = at(TEXT, "بوتين", "PERSON"), at(TEXT, "موسكو", "PLACE") | {"text": "x"}
    path = write_lines(tmp_path / "p.jsonl", [line("doc1", [bad_label, bad_text]), "not json", line("doc3", [])])
    with pytest.raises(AnnotationError) as e:
        predictions.read(path, docs)
    assert [(p.line, p.message.split(":")[0]) for p in e.value.problems] == [
        (1, f"doc 'doc1' entity 0 [{bad_label['start']}"),
        (1, f"doc 'doc1' entity 1 [{bad_text['start']}"),
        (2, "bad JSON"),
        (3, "unknown doc 'doc3' (gold documents"),
    ]  # doc2 may be the unreadable line 2, so it is not also reported as missing
    assert str(path) in str(e.value) and "unknown label 'PERSON'" in str(e.value) and "text mismatch" in str(e.value)


def test_missing_documents_are_empty_only_when_asked(tmp_path, gold):
    _, docs = gold
    path = write_lines(tmp_path / "p.jsonl", ["", line("doc1", [at(TEXT, "بوتين", "ACTOR")]), "  "])
    with pytest.raises(AnnotationError, match="gold doc 'doc2' has no line"):
        predictions.read(path, docs)
    read = predictions.read(path, docs, missing="empty")
    assert [(d.doc, len(d.spans)) for d in read] == [("doc1", 1), ("doc2", 0)]
    assert [d.doc for d in predictions.read(path, docs, select={"doc1"})] == ["doc1"]
    with pytest.raises(AnnotationError, match="selected doc 'nope'"):
        predictions.read(path, docs, select={"nope"})


@pytest.mark.parametrize("case", range(len(ENTITY_CASES)))
def test_eval_cli_rejects_bad_predictions_and_writes_nothing(tmp_path, gold, case):
    root, _ = gold
    entity, message = ENTITY_CASES[case]
    path = write_lines(tmp_path / "p.jsonl", [line("doc1", [entity]), line("doc2", [])])
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", "--gold", str(root), "--pred", str(path), "--out", str(out)])
    assert result.exit_code == 1
    assert f"{path}:1: error: doc 'doc1' entity 0" in result.stderr and message in result.stderr
    assert not out.exists() and list(tmp_path.glob(".out*")) == []


def test_eval_cli_keeps_the_previous_output_on_error(tmp_path, gold):
    root, _ = gold
    out = tmp_path / "out"
    good = write_lines(tmp_path / "good.jsonl", [line("doc1", [at(TEXT, "بوتين", "ACTOR")]), line("doc2", [])])
    assert runner.invoke(app, ["eval", "--gold", str(root), "--pred", str(good), "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = write_lines(tmp_path / "bad.jsonl", [line("doc1", [])])
    result = runner.invoke(app, ["eval", "--gold", str(root), "--pred", str(bad), "--out", str(out)])
    assert result.exit_code == 1 and "gold doc 'doc2' has no line" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
