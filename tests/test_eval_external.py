"""External corpora in the evaluation: strict and loose scores, and `arner cv` with extra data."""

import json

from typer.testing import CliRunner

from arner.cli import app
from arner.core.conventions import Span
from arner.core.corpus import Document
from arner.eval.public_scores import external_scores

from conftest import ANNOTATIONS, REPO

runner = CliRunner()
TEXT = "قال بوتين في موسكو إن روسيا ستتفاوض اليوم"


def s(surface, label):
    i = TEXT.index(surface)
    return Span(i, i + len(surface), label, surface)


def test_loose_scores_forgive_role_errors_and_date_is_dropped_without_date():
    gold = [Document("d", TEXT, [s("بوتين", "ACTOR"), s("موسكو", "PLACE"), s("روسيا", "PLACE")])]
    pred = [[s("بوتين", "ACTOR"), s("موسكو", "PLACE"), s("روسيا", "ACTOR"), s("اليوم", "DATE")]]
    scores = external_scores(gold, pred, has_date=False)
    # strict: روسيا has the wrong role; the DATE prediction is left out since the corpus has no DATE
    assert scores["strict"]["micro"]["precision"] == 2 / 3 and scores["strict"]["micro"]["recall"] == 2 / 3
    assert scores["loose"]["micro"]["f1"] == 1.0
    with_date = external_scores(gold, pred, has_date=True)
    assert with_date["strict"]["micro"]["precision"] == 2 / 4
    assert with_date["loose"]["micro"]["precision"] == 3 / 4


CONLL = "قال O\nسلمونيل B-PERS\nفي O\nقرطاجنة B-LOC\nفي O\nتموز B-DATE\n\nنيكاراغوا B-LOC\n"


def test_cv_trains_baselines_on_extra_data_and_scores_external_sets(tmp_path):
    root = tmp_path / "ext"
    (root / "c").mkdir(parents=True)
    (root / "c" / "train.conll").write_text(CONLL * 5, encoding="utf-8")
    (root / "c" / "test.conll").write_text(CONLL, encoding="utf-8")
    (root / "c" / "label_map.tsv").write_text("source\ttarget\nPERS\tACTOR\nLOC\tPLACE\nDATE\tDATE\n", encoding="utf-8")
    config = tmp_path / "cfg.yaml"
    config.write_text(
        f"annotations: {ANNOTATIONS}\nexternal_root: {root}\n"
        "extra_train:\n  - {name: c-train, files: [c/train.conll]}\nexternal_test:\n  - {name: c-test, files: [c/test.conll]}\n",
        encoding="utf-8",
    )
    out = tmp_path / "cv"
    result = runner.invoke(app, ["cv", "--config", str(config), "--systems", "memorization,crf", "--out", str(out), "--resamples", "20"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["extra_train"]["spans"] == 4 * 5
    for system in ("memorization", "crf"):
        ext = metrics["systems"][system]["external"]["c-test"]
        assert len(ext["per_fold"]) == 5 and set(ext["mean"]) >= {"strict_f1", "loose_f1", "DATE_f1"}
    # memorization saw every test surface (names the articles never use) in the extra training data
    assert metrics["systems"]["memorization"]["external"]["c-test"]["mean"]["strict_f1"] == 1.0
    assert "## External test corpora" in (out / "report.md").read_text()


def test_eval_external_needs_a_model(tmp_path):
    result = runner.invoke(app, ["eval", "--pred", str(REPO / "x.jsonl"), "--out", str(tmp_path / "o"), "--external", "a=b.conll"])
    assert result.exit_code == 2 and "--external needs --model" in result.output
