"""Export to every format, import back from the annotation tools' formats, identical spans."""

import json

import pytest
from typer.testing import CliRunner

from arner.cli import app
from arner.core import corpus
from arner.core.formats import EXPORTERS, IMPORTERS

from conftest import ANNOTATIONS, TEXT, write_folder

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset():
    return corpus.load(ANNOTATIONS)


@pytest.mark.parametrize("fmt", sorted(IMPORTERS))
def test_round_trip_gives_identical_spans(tmp_path, dataset, fmt):
    out = tmp_path / f"export.{fmt}"
    EXPORTERS[fmt](dataset, out)
    back = IMPORTERS[fmt](out)
    assert [(d.doc, d.text, d.spans) for d in back] == [(d.doc, d.text, d.spans) for d in dataset]


@pytest.mark.parametrize("fmt", sorted(IMPORTERS))
def test_cli_import_writes_a_folder_that_checks_clean(tmp_path, fmt):
    src = tmp_path / f"export.{fmt}"
    assert runner.invoke(app, ["annotations", "export", "--format", fmt, "--out", str(src), str(ANNOTATIONS)]).exit_code == 0
    result = runner.invoke(app, ["annotations", "import", "--format", fmt, str(src), "--out", str(tmp_path / "imported")])
    assert result.exit_code == 0, result.output
    for doc in ANNOTATIONS.glob("spans/*.json"):
        assert json.loads((tmp_path / "imported" / "spans" / doc.name).read_text()) == json.loads(doc.read_text())


def test_conll_is_word_tab_tag_with_paragraph_blocks(tmp_path, dataset):
    out = tmp_path / "a.conll"
    EXPORTERS["conll"](dataset[:1], out)
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[:2] == ["-DOCSTART-\tO", ""]
    assert lines[2:4] == ["مبعوث\tO", "روسي\tO"]
    assert "أمريكا\tB-PLACE" in lines and "كيريل\tB-ACTOR" in lines and "دميترييف\tI-ACTOR" in lines
    body = [ln for ln in lines[2:] if ln]
    assert all(len(ln.split("\t")) == 2 for ln in body)
    assert len(body) == 416  # every word of the article
    # a blank line between paragraphs: the title is its own block
    assert lines[2 + 11] == "" and lines[2 + 10] == "الثنائي\tO"


def test_hf_export_loads_with_datasets(tmp_path, dataset):
    from datasets import load_from_disk

    out = tmp_path / "hf"
    EXPORTERS["hf"](dataset, out)
    dd = load_from_disk(str(out))
    train = dd["train"]
    names = train.features["ner_tags"].feature.names
    assert names[:3] == ["O", "B-ACTOR", "I-ACTOR"]
    assert set(train["doc"]) == {d.doc for d in dataset}
    row = train[0]
    text = dataset[0].text
    assert all(text[s:e] == tok for s, e, tok in zip(row["char_starts"], row["char_ends"], row["tokens"]))
    assert sum(len(t) for t in train["tokens"]) == 2111


def test_labelstudio_tasks_shape(tmp_path, dataset):
    out = tmp_path / "ls.json"
    EXPORTERS["labelstudio"](dataset, out)
    tasks = json.loads(out.read_text(encoding="utf-8"))
    r = tasks[0]["annotations"][0]["result"][0]
    assert r["type"] == "labels" and r["from_name"] == "label" and r["to_name"] == "text"
    assert tasks[0]["data"]["text"][r["value"]["start"] : r["value"]["end"]] == r["value"]["text"]


def test_doccano_newer_entities_form_is_read(tmp_path):
    src = tmp_path / "d.jsonl"
    row = {"id": "x", "text": TEXT, "entities": [{"id": 1, "label": "PLACE", "start_offset": 23, "end_offset": 28}]}
    src.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    (doc,) = IMPORTERS["doccano"](src)
    assert doc.spans[0].text == "موسكو"


def test_bad_imports_are_clear_errors_and_write_nothing(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "abc", "label": [[0, 9, "ACTOR"]]}\nnot json\n', encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["annotations", "import", "--format", "doccano", str(src), "--out", str(out)])
    assert result.exit_code == 1 and "bad.jsonl:2" in result.output
    assert not out.exists()
    src.write_text('{"id": "d", "text": "abc", "label": [[0, 9, "ACTOR"]]}\n', encoding="utf-8")
    result = runner.invoke(app, ["annotations", "import", "--format", "doccano", str(src), "--out", str(out)])
    assert result.exit_code == 1 and "out of range" in result.output
    assert not out.exists()


def test_brat_text_mismatch_is_reported(tmp_path):
    (tmp_path / "d.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "d.ann").write_text("T1\tPLACE 23 28\tلندن\n", encoding="utf-8")
    result = runner.invoke(app, ["annotations", "import", "--format", "brat", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "d.ann:1" in result.output and "لندن" in result.output


def test_labelstudio_bad_json_names_the_line(tmp_path):
    src = tmp_path / "ls.json"
    src.write_text('[\n{"data": }\n]', encoding="utf-8")
    result = runner.invoke(app, ["annotations", "import", "--format", "labelstudio", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "ls.json:2" in result.output


def test_export_of_a_broken_folder_writes_nothing(tmp_path):
    bad = write_folder(tmp_path / "bad", {"d": (TEXT, [{"start": 0, "end": 3, "label": "ACTOR", "text": "zzz"}])})
    out = tmp_path / "out.conll"
    result = runner.invoke(app, ["annotations", "export", "--format", "conll", "--out", str(out), str(bad)])
    assert result.exit_code == 1 and "text mismatch" in result.output
    assert not out.exists()
