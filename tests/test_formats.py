"""Export to every format, import back from the annotation tools' formats, identical spans."""

import json

import pytest
from typer.testing import CliRunner

from arner.cli import app
from arner.core import corpus
from arner.core.conventions import Span
from arner.core.corpus import AnnotationError
from arner.core.formats import EXPORTERS, IMPORTERS, labelstudio, texts

from conftest import ANNOTATIONS, REPO, TEXT, write_folder

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


def _bad_sources(tmp_path):
    """Per importer: a source with a format error and a label error, and the places each must be named by."""
    doccano = tmp_path / "bad.jsonl"
    doccano.write_text('{"id": "d", "text": "وصل كيريل", "label": [[4, 9, "PERSON"]]}\nnot json\n', encoding="utf-8")
    ls = tmp_path / "ls.json"
    value = {"start": 4, "end": 9, "text": "كيريل", "labels": ["PERSON"]}
    tasks = [{"data": {"text": "وصل كيريل"}, "annotations": [{"result": [{"type": "labels", "value": value}]}]}, {"data": {}}]
    ls.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    brat = tmp_path / "brat"
    brat.mkdir()
    (brat / "d.txt").write_text("وصل كيريل", encoding="utf-8")
    (brat / "d.ann").write_text("T1\tPERSON 4 9\tكيريل\nT2\tACTOR 4 x\tكيريل\n", encoding="utf-8")
    return {
        "doccano": (doccano, ["bad.jsonl:1: error: d: span 0", "bad.jsonl:2: error: bad JSON"]),
        "labelstudio": (ls, ["ls.json: error: task 0", "ls.json: error: task 1: no data.text"]),
        "brat": (brat, ["d.ann:1: error: span 0", "d.ann:2: error: bad brat line"]),
    }


@pytest.mark.parametrize("fmt", ["doccano", "labelstudio", "brat"])
def test_import_reports_format_and_label_errors_together_by_file(tmp_path, fmt):
    source, expected = _bad_sources(tmp_path)[fmt]
    out = tmp_path / "out"
    result = runner.invoke(app, ["annotations", "import", "--format", fmt, str(source), "--out", str(out)])
    assert result.exit_code == 1 and not out.exists()
    for place in expected:  # one pass: the label error beside the format error, each at its file (and line)
        assert any(place in line for line in result.output.splitlines()), (place, result.output)
    assert "unknown label 'PERSON'" in result.output


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


def _task(**change):
    task = {
        "id": 1,
        "data": {"text": TEXT, "doc": "d"},
        "annotations": [{"result": [labelstudio.result(Span(23, 28, "PLACE", "موسكو"), 0)]}],
    }
    task.update(change)
    return task


LS_BAD = {
    "a number": (7, "expected a list of Label Studio tasks"),
    "task without data": ([{"id": 1}], "task 0: no data.text"),
    "data a list": ([_task(data=[TEXT])], "task 0: no data.text"),
    "annotations not a list": ([_task(annotations={"result": []})], "'annotations' must be a list of objects"),
    "result not a list": ([_task(annotations=[{"result": "x"}])], "'result' must be a list"),
    "result not an object": ([_task(annotations=[{"result": [3]}])], "result 0 must be an object"),
    "result without value": ([_task(annotations=[{"result": [{"type": "labels"}]}])], "'value' must hold integer 'start' and 'end'"),
    "float offsets": (
        [_task(annotations=[{"result": [{"type": "labels", "value": {"start": 23.0, "end": 28, "labels": ["PLACE"]}}]}])],
        "integer",
    ),
    "string offsets": (
        [_task(annotations=[{"result": [{"type": "labels", "value": {"start": "23", "end": 28, "labels": ["PLACE"]}}]}])],
        "integer",
    ),
    "bool offsets": (
        [_task(annotations=[{"result": [{"type": "labels", "value": {"start": True, "end": 28, "labels": ["PLACE"]}}]}])],
        "integer",
    ),
    "labels not a list": (
        [_task(annotations=[{"result": [{"type": "labels", "value": {"start": 23, "end": 28, "labels": "PLACE"}}]}])],
        "1 label",
    ),
    "duplicate doc": ([_task(), _task(id=2)], "task 1: duplicate doc id 'd' (also at task 0)"),
}


@pytest.mark.parametrize("case", sorted(LS_BAD))
def test_labelstudio_files_of_the_wrong_shape_are_clean_errors(tmp_path, case):
    data, message = LS_BAD[case]
    src = tmp_path / "ls.json"
    src.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(AnnotationError) as e:
        IMPORTERS["labelstudio"](src)
    assert any(p.path == str(src) and message in p.message for p in e.value.problems), e.value.problems
    result = runner.invoke(app, ["annotations", "import", "--format", "labelstudio", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "Traceback" not in result.output and not (tmp_path / "o").exists()


DOCCANO_BAD = {
    "a list": ([1, 2], "expected"),
    "text a number": ({"id": "d", "text": 5, "label": []}, "expected"),
    "label not triples": ({"id": "d", "text": TEXT, "label": [[23, 28]]}, "'label' must be a list of [start, end, LABEL]"),
    "float offsets": ({"id": "d", "text": TEXT, "label": [[23.5, 28, "PLACE"]]}, "integer start"),
    "bool offsets": ({"id": "d", "text": TEXT, "label": [[True, 28, "PLACE"]]}, "integer start"),
    "entities not objects": ({"id": "d", "text": TEXT, "entities": [[23, 28, "PLACE"]]}, "'entities' must be a list of objects"),
    "id an object": ({"id": {"a": 1}, "text": TEXT, "label": []}, "doc id must be a string"),
}


@pytest.mark.parametrize("case", sorted(DOCCANO_BAD))
def test_doccano_lines_of_the_wrong_shape_are_clean_errors(tmp_path, case):
    row, message = DOCCANO_BAD[case]
    src = tmp_path / "d.jsonl"
    src.write_text('{"id": "ok", "text": "x", "label": []}\n' + json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(AnnotationError) as e:
        IMPORTERS["doccano"](src)
    (problem,) = e.value.problems
    assert problem.path == str(src) and problem.line == 2 and message in problem.message


def test_doccano_duplicate_ids_name_both_lines_and_u2028_is_not_a_line_break(tmp_path):
    src = tmp_path / "d.jsonl"
    rows = [{"id": "a", "text": "x\u2028y", "label": []}, {"id": "b", "text": "x"}, {"id": "a", "text": "z"}]
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(AnnotationError) as e:
        IMPORTERS["doccano"](src)
    assert [(p.line, p.message) for p in e.value.problems] == [(3, f"duplicate doc id 'a' (also at {src}:1)")]


@pytest.mark.parametrize("offsets", ["٢٣ ٢٨", "+23 28", "23.0 28", "2_3 28", "23 28 30"])
def test_brat_offsets_must_be_two_ascii_integers(tmp_path, offsets):
    (tmp_path / "d.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "d.ann").write_text(f"T1\tPLACE {offsets}\tموسكو\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match="not two integers"):
        IMPORTERS["brat"](tmp_path)


@pytest.mark.parametrize("exporter", ["annotations", "predict"])
def test_brat_output_never_deletes_files_that_are_not_ours(tmp_path, dataset, exporter):
    out = tmp_path / "brat"
    out.mkdir()
    (out / "old.txt").write_text("earlier export", encoding="utf-8")
    (out / "old.ann").write_text("", encoding="utf-8")
    if exporter == "annotations":
        run = lambda: runner.invoke(app, ["annotations", "export", "--format", "brat", "--out", str(out), str(ANNOTATIONS)])  # noqa: E731
    else:
        run = lambda: texts.render("brat", [("a", "بوتين")], [[]], out)  # noqa: E731
    run()
    assert not (out / "old.txt").exists()  # an earlier brat output is replaced whole
    (out / "notes.md").write_text("mine", encoding="utf-8")
    if exporter == "annotations":
        result = run()
        assert result.exit_code == 2 and "notes.md" in result.output and "not brat output" in result.output
    else:
        with pytest.raises(ValueError, match="notes.md.*not brat output"):
            run()
    assert (out / "notes.md").read_text(encoding="utf-8") == "mine"


def test_hf_export_never_deletes_files_that_are_not_ours(tmp_path, dataset):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match="keep.txt"):
        EXPORTERS["hf"](dataset[:1], out)
    assert (out / "keep.txt").exists()


def test_importing_no_documents_writes_nothing(tmp_path, good_folder):
    before = sorted(p.read_bytes() for p in good_folder.rglob("*.json"))
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    result = runner.invoke(app, ["annotations", "import", "--format", "labelstudio", str(empty), "--out", str(good_folder)])
    assert result.exit_code == 1 and "no documents" in result.output
    result = runner.invoke(app, ["annotations", "import", "--format", "brat", str(tmp_path / "missing"), "--out", str(good_folder)])
    assert result.exit_code == 1 and "not a folder" in result.output
    assert sorted(p.read_bytes() for p in good_folder.rglob("*.json")) == before


def test_hf_export_fold_column_reproduces_the_leave_one_article_out_folds(tmp_path, dataset):
    from datasets import load_from_disk

    out = tmp_path / "hf"
    assert runner.invoke(app, ["annotations", "export", "--format", "hf", "--out", str(out), str(ANNOTATIONS)]).exit_code == 0
    ds = load_from_disk(str(out))["train"]
    assert ds.features["fold"].dtype == "int32"
    assert {(r["doc"], r["fold"]) for r in ds} == {(d.doc, k) for k, d in enumerate(dataset)}
    for k in range(len(dataset)):
        train, (held,) = corpus.split(dataset, k)
        assert set(ds.filter(lambda r, k=k: r["fold"] != k)["doc"]) == {d.doc for d in train}
        assert set(ds.filter(lambda r, k=k: r["fold"] == k)["doc"]) == {held.doc}


def test_hf_fold_numbers_are_those_of_arner_cv(tmp_path):
    """Doc ids chosen so that the order of their span files ('a-b.json' < 'a.json') is not that of the ids ('a' < 'a-b')."""
    from datasets import load_from_disk

    from arner import cv

    moscow = [{"start": 23, "end": 28, "label": "PLACE", "text": "موسكو"}]
    folder = write_folder(tmp_path / "ann", {doc: (TEXT, moscow) for doc in ("b", "a", "a-b")})
    result = cv.run(tmp_path / "cv", systems=["memorization"], gold=folder, resamples=10)
    assert runner.invoke(app, ["annotations", "export", "--format", "hf", "--out", str(tmp_path / "hf"), str(folder)]).exit_code == 0
    ds = load_from_disk(str(tmp_path / "hf"))["train"]
    assert dict(zip(ds["doc"], ds["fold"])) == {f["doc"]: f["fold"] for f in result["folds"]} == {"a-b": 0, "a": 1, "b": 2}


def test_labelstudio_config_matches_the_export(tmp_path, dataset):
    import re
    import xml.etree.ElementTree as ET

    from arner.core.conventions import LABELS

    view = ET.parse(REPO / "annotations" / "labelstudio.xml").getroot()
    (labels,) = view.iter("Labels")
    (text,) = view.iter("Text")
    assert [lab.get("value") for lab in labels.iter("Label")] == list(LABELS)
    assert (labels.get("name"), labels.get("toName"), text.get("name")) == (labelstudio.FROM_NAME, labelstudio.TO_NAME, labelstudio.TO_NAME)
    assert text.get("granularity") == "symbol"  # spans may leave a proclitic of their word outside
    assert "direction: rtl" in view.get("style") and "direction: rtl" in view.find("Style").text
    EXPORTERS["labelstudio"](dataset, tmp_path / "ls.json")
    tasks = json.loads((tmp_path / "ls.json").read_text(encoding="utf-8"))
    variables = {m for el in view.iter() for m in re.findall(r"^\$(\w+)$", el.get("value", ""))}
    assert variables == {"text", "doc"} and all(variables <= set(t["data"]) for t in tasks)
    assert text.get("value") == "$text"
    results = [r for t in tasks for r in t["annotations"][0]["result"]]
    assert len(results) == 322
    assert {(r["from_name"], r["to_name"]) for r in results} == {(labels.get("name"), text.get("name"))}
    assert {r["value"]["labels"][0] for r in results} == {lab.get("value") for lab in labels.iter("Label")}
