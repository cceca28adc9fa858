"""`arner eval` and `arner cv` end to end: outputs, consistency between them, reproducibility."""

import json

import pytest
from typer.testing import CliRunner

from arner.cli import app
from arner.core import corpus
from arner.core.formats import predictions
from arner.eval.baselines import Memorization

from conftest import ANNOTATIONS, REPO

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def documents():
    return corpus.load(ANNOTATIONS)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def report_errors(report: str) -> int:
    return sum(line.startswith("- ") for line in report.split("## Errors", 1)[1].splitlines())


def test_eval_of_the_gold_itself_is_perfect(tmp_path, documents):
    pred = tmp_path / "gold.jsonl"
    predictions.write(pred, documents)
    out = tmp_path / "out"
    result = run("eval", "--gold", ANNOTATIONS, "--pred", pred, "--out", out, "--resamples", 50)
    assert result.exit_code == 0, result.output
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(m) == {"word", "span", "per_doc", "confusion", "bootstrap"}
    assert m["word"]["micro"]["f1"] == 1 and m["word"]["micro"]["support"] == sum(len(d.spans) for d in documents)
    assert all(m["span"][k]["micro"]["f1"] == 1 for k in ("strict", "exact", "partial", "type"))
    assert list(m["per_doc"]) == [d.doc for d in documents] and m["bootstrap"]["low"] == 1
    assert m["confusion"]["correct"] == sum(len(d.spans) for d in documents) and m["confusion"]["missed"] == 0
    assert json.loads((out / "errors.json").read_text(encoding="utf-8")) == []
    assert "## Errors (0)" in (out / "report.md").read_text(encoding="utf-8")
    for png in ("per_label_f1.png", "per_doc_f1.png"):
        assert (out / png).read_bytes()[:8] == PNG


def test_eval_report_lists_every_error_with_context(tmp_path, documents):
    pred = tmp_path / "memo.jsonl"
    memo = Memorization().fit(documents[1:])
    predictions.write(pred, [(d.doc, spans) for d, spans in zip(documents, memo.predict([d.text for d in documents]))])
    out = tmp_path / "out"
    assert run("eval", "--pred", pred, "--out", out, "--gold", ANNOTATIONS, "--resamples", 50).exit_code == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    errors = json.loads((out / "errors.json").read_text(encoding="utf-8"))
    report = (out / "report.md").read_text(encoding="utf-8")
    c = m["confusion"]
    assert len(errors) == c["missed"] + c["spurious"] + c["boundary"] + c["type"] + c["boundary_type"] > 0
    assert report_errors(report) == len(errors)
    for e in errors:
        text = next(d.text for d in documents if d.doc == e["doc"])
        involved = e["gold"] + ([e["pred"]] if e["pred"] else [])
        lo, hi = min(s["start"] for s in involved), max(s["end"] for s in involved)
        assert e["context"].replace(" ⏎ ", "\n") == text[max(0, lo - 40) : lo] + "[[" + text[lo:hi] + "]]" + text[hi : hi + 40]
    # the held-in documents score far better than the held-out one
    assert m["per_doc"][documents[0].doc]["f1"] < min(m["per_doc"][d.doc]["f1"] for d in documents[1:])


def test_eval_selected_documents_and_missing_ones(tmp_path, documents):
    pred = tmp_path / "one.jsonl"
    predictions.write(pred, [documents[2]])
    one, all_ = tmp_path / "one", tmp_path / "all"
    assert run("eval", "--gold", ANNOTATIONS, "--pred", pred, "--out", one, "--docs", documents[2].doc).exit_code == 0
    m = json.loads((one / "metrics.json").read_text(encoding="utf-8"))
    assert list(m["per_doc"]) == [documents[2].doc] and m["span"]["strict"]["micro"]["f1"] == 1
    result = run("eval", "--gold", ANNOTATIONS, "--pred", pred, "--out", all_)
    assert result.exit_code == 1 and f"gold doc {documents[0].doc!r} has no line" in result.stderr and not all_.exists()
    assert run("eval", "--gold", ANNOTATIONS, "--pred", pred, "--out", all_, "--missing", "empty").exit_code == 0
    m = json.loads((all_ / "metrics.json").read_text(encoding="utf-8"))
    others = sum(len(d.spans) for i, d in enumerate(documents) if i != 2)
    assert m["confusion"]["missed"] == others and m["span"]["strict"]["micro"]["recall"] == pytest.approx(
        len(documents[2].spans) / (others + len(documents[2].spans))
    )
    # --docs A B (several ids after one option) and an unknown id
    two = tmp_path / "two"
    predictions.write(pred, documents[:2])
    assert run("eval", "--gold", ANNOTATIONS, "--pred", pred, "--out", two, "--docs", documents[0].doc, documents[1].doc).exit_code == 0
    assert list(json.loads((two / "metrics.json").read_text(encoding="utf-8"))["per_doc"]) == [documents[0].doc, documents[1].doc]
    result = run("eval", "--gold", ANNOTATIONS, "--pred", pred, "--out", tmp_path / "x", "--docs", "nope")
    assert result.exit_code == 2 and "unknown doc(s) nope" in result.stderr


def test_eval_needs_exactly_one_source(tmp_path):
    assert run("eval", "--out", tmp_path / "o").exit_code == 2
    assert run("eval", "--out", tmp_path / "o", "--pred", "a", "--model", "b").exit_code == 2


def test_cv_baselines_pooled_equals_eval_and_is_reproducible(tmp_path, documents):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        result = run("cv", "--systems", "memorization,crf", "--gold", ANNOTATIONS, "--out", out, "--resamples", 100)
        assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert [str(p) for p in files if p.parent.name == "crf"] == [
        f"crf/{n}"
        for n in [
            "errors.html",
            "errors.json",
            *(f"fold-{k}.jsonl" for k in range(5)),
            "metrics.json",
            "per_doc_f1.png",
            "per_label_f1.png",
            "predictions.jsonl",
            "report.md",
        ]
    ]
    for path in (p for p in files if str(p) != "metrics.json" and p.name != "report.md"):  # these two record the command
        assert (a / path).read_bytes() == (b / path).read_bytes(), path
    ma, mb = (json.loads((x / "metrics.json").read_text(encoding="utf-8")) for x in (a, b))
    assert ma.pop("command") != mb.pop("command") and ma == mb  # only the --out in the recorded command differs
    assert [f["doc"] for f in ma["folds"]] == [d.doc for d in documents]
    for name in ("memorization", "crf"):
        s = ma["systems"][name]
        # the pooled file is the five held-out files, one line each
        pooled = (a / name / "predictions.jsonl").read_text(encoding="utf-8")
        assert pooled == "".join((a / name / f"fold-{k}.jsonl").read_text(encoding="utf-8") for k in range(5))
        # scored once with `arner eval`, it gives the pooled figures
        out = tmp_path / f"eval-{name}"
        assert run("eval", "--gold", ANNOTATIONS, "--pred", a / name / "predictions.jsonl", "--out", out, "--resamples", 100).exit_code == 0
        m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        assert m == json.loads((a / name / "metrics.json").read_text(encoding="utf-8"))
        assert s["pooled"]["span_strict_micro_f1"]["estimate"] == m["span"]["strict"]["micro"]["f1"]
        assert s["pooled"]["span_strict_micro_f1"]["low"] == m["bootstrap"]["low"]
        assert s["pooled"]["word_micro_f1"]["estimate"] == m["word"]["micro"]["f1"]
        assert s["pooled"]["span_strict_PLACE_f1"]["estimate"] == m["span"]["strict"]["per_label"]["PLACE"]["f1"]
        # per fold: each held-out article alone
        assert [f["doc"] for f in s["per_fold"]] == [d.doc for d in documents]
        assert [f["span_strict_micro_f1"] for f in s["per_fold"]] == [m["per_doc"][d.doc]["f1"] for d in documents]
        values = [f["span_partial_micro_f1"] for f in s["per_fold"]]
        mean = sum(values) / 5
        assert s["mean"]["span_partial_micro_f1"] == pytest.approx(mean)
        assert s["std"]["span_partial_micro_f1"] == pytest.approx((sum((v - mean) ** 2 for v in values) / 4) ** 0.5)
    report = (a / "report.md").read_text(encoding="utf-8")
    assert "| memorization | " in report and "| crf | " in report and "span strict F1" in report
    assert (a / "comparison.png").read_bytes()[:8] == PNG
    # the CRF beats memorization on held-out articles
    assert (
        ma["systems"]["crf"]["pooled"]["span_strict_micro_f1"]["estimate"]
        > ma["systems"]["memorization"]["pooled"]["span_strict_micro_f1"]["estimate"]
    )


def test_cv_usage_errors(tmp_path):
    result = run("cv", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "needs --config" in result.stderr
    result = run("cv", "--out", tmp_path / "o", "--systems", "crf,gpt")
    assert result.exit_code == 2 and "unknown system(s) gpt" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cv_tiny_bert_end_to_end(tmp_path, documents):
    """All three systems on the tiny config with tiny settings; twice, for reproducibility; fold 0 re-scored by `arner eval --model`."""
    args = ["--config", REPO / "configs/tiny.yaml", "--gold", ANNOTATIONS, "--resamples", 50]
    args += ["--set", "epochs=4", "--set", "learning_rate=0.003", "--set", "tiny.num_hidden_layers=1", "--set", "progress_bar=false"]
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = run("cv", *args, "--out", out, "--work", tmp_path / f"models-{name}")
        assert result.exit_code == 0, result.output
        outs.append(json.loads((out / "metrics.json").read_text(encoding="utf-8")))
    a, b = outs
    assert a.pop("command") != b.pop("command") and a == b
    assert list(a["systems"]) == ["bert", "memorization", "crf"] and "epochs=4" in a["settings"]["overrides"]
    bert = a["systems"]["bert"]
    assert bert["pooled"]["span_partial_micro_f1"]["estimate"] > 0  # it predicts something, so the two runs agreeing means something
    assert [f["doc"] for f in bert["per_fold"]] == [d.doc for d in documents]
    lines = (tmp_path / "a/bert/predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["doc"] for x in lines] == [d.doc for d in documents]
    for k, d in enumerate(documents):
        meta = json.loads((tmp_path / f"models-a/fold-{k}/arner.json").read_text(encoding="utf-8"))
        assert meta["heldout_docs"] == [d.doc] and d.doc not in meta["train_docs"]
        # each fold model has its card, with the `arner train` line that makes it alone
        assert meta["command"].startswith(f"arner train --config {REPO / 'configs/tiny.yaml'} --output {tmp_path / f'models-a/fold-{k}'}")
        assert (
            f"--fold {k} --set epochs=4" in meta["command"] and meta["command"] in (tmp_path / f"models-a/fold-{k}/README.md").read_text()
        )
    out = tmp_path / "fold0"
    result = run(
        "eval", "--model", tmp_path / "models-a/fold-0", "--docs", documents[0].doc, "--gold", ANNOTATIONS, "--out", out, "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["span"]["strict"]["micro"]["f1"] == bert["per_fold"][0]["span_strict_micro_f1"]
    assert (out / "predictions.jsonl").read_text(encoding="utf-8") == (tmp_path / "a/bert/fold-0.jsonl").read_text(encoding="utf-8")
    report = (tmp_path / "a/report.md").read_text(encoding="utf-8")
    assert all(f"| {name} | " in report for name in ("bert", "memorization", "crf"))
