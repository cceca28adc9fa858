"""Tagger and `arner predict`: exact offsets, long texts, pipeline equivalence, bad input."""

import errno
import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from arner.cli import app
from arner.core import atomic, corpus
from arner.core.alignment import window_owners
from arner.core.conventions import LABELS, words
from arner.core.formats import labelstudio, predictions
from arner.inference import ModelLoadError, Tagger

from conftest import ANNOTATIONS, REPO

pytestmark = pytest.mark.slow  # they share the session's trained tiny model
runner = CliRunner()


@pytest.fixture(scope="module")
def tagger(tiny_model):
    return Tagger.from_pretrained(tiny_model, device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def articles():
    return corpus.load(ANNOTATIONS)


SCORE_TOLERANCE = 1e-4


def assert_valid(text, entities):
    for e in entities:
        assert text[e.start : e.end] == e.text and e.label in LABELS and 0 <= e.score <= 1
    assert all(a.end <= b.start for a, b in zip(entities, entities[1:]))


def test_finds_entities_with_exact_offsets(tagger, articles):
    for d in articles:
        found = tagger(d.text)
        assert_valid(d.text, found)
        assert len(found) > 10  # a model trained on these articles finds their names


def test_single_text_and_list_calls_agree(tagger, articles):
    texts = [d.text[:200] for d in articles]
    assert tagger(texts) == [tagger(t) for t in texts]


def test_word_labels_equal_the_transformers_pipeline_within_one_window(tiny_model, articles):
    from transformers import pipeline

    plain = Tagger.from_pretrained(tiny_model, device="cpu", trim_proclitics=False)
    pipe = pipeline("token-classification", model=str(tiny_model), aggregation_strategy="first", device=-1)
    paragraphs = [line for d in articles for line in d.text.split("\n") if len(words(line)) > 3][:40]
    assert len(paragraphs) == 40
    for text in paragraphs:
        ours = [(e.start, e.end, e.label) for e in plain(text)]
        theirs = [(e["start"], e["end"], e["entity_group"]) for e in pipe(text)]
        assert ours == theirs, text


def test_long_texts_are_windowed_and_no_word_is_dropped(tagger, articles):
    text = "\n".join(d.text for d in articles) * 3  # many windows
    ws = words(text)
    tags = tagger.word_tags(text)
    assert len(tags) == len(ws)
    found = tagger(text)
    assert_valid(text, found)
    # the same text tagged in one call or in batches of another size gives the same entities; scores agree to
    # SCORE_TOLERANCE only, since padding a window to another batch's length changes float sums in the last digits
    other = Tagger(tagger.model, tagger.tokenizer, "cpu", batch_size=1)(text)
    assert [(e.start, e.end, e.label) for e in other] == [(e.start, e.end, e.label) for e in found]
    assert max(abs(a.score - b.score) for a, b in zip(other, found)) <= SCORE_TOLERANCE


def owning_windows(tagger, text):
    """For each word: the (start, end) subword range of the window its label is read from."""
    _, (enc,) = tagger._encode([text])
    owners = window_owners(len(enc.input_ids), enc.windows)
    return [(enc.windows[owners[t]].start, enc.windows[owners[t]].end) if t >= 0 else None for t in enc.word_first_token]


def test_stride_changes_only_words_read_from_another_window(tagger, articles):
    text = "\n".join(d.text for d in articles)
    narrow = Tagger(tagger.model, tagger.tokenizer, "cpu", stride=8)
    wide = Tagger(tagger.model, tagger.tokenizer, "cpu", stride=32)
    n_windows, w_windows = owning_windows(narrow, text), owning_windows(wide, text)
    assert n_windows != w_windows  # the strides do cut this text differently
    n_tags, w_tags = narrow.word_tags(text), wide.word_tags(text)
    same_context = [i for i, (a, b) in enumerate(zip(n_windows, w_windows)) if a == b]
    assert len(same_context) >= 50  # the first window is the same for both, at least
    # a word read from the same window sees the same subwords, so it gets the same tag whatever the stride
    assert [n_tags[i] for i in same_context] == [w_tags[i] for i in same_context]
    short = articles[0].text.split("\n")[0]  # one window: the stride has nothing to change
    assert narrow(short) == wide(short)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "No Arabic here, only English: Washington and Moscow.",
        "بوتين met Trump في ألاسكا 🤝 يوم 15 أغسطس",
        "قال\x00 بوتين\x07\u200f في موسكو",
        "بوتين \ud800 في موسكو",
    ],
)
def test_odd_inputs_give_valid_results(tagger, text):
    found = tagger(text)
    assert_valid(text, found)
    if not text.strip():
        assert found == []


def test_non_string_input_is_a_clear_error(tagger):
    with pytest.raises(TypeError, match="text 1 is int"):
        tagger(["ok", 3])


def test_missing_or_corrupt_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="nope: no such model folder"):
        Tagger.from_pretrained(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="no such model folder"):  # said plainly, not as a bad hub repo id
        Tagger.from_pretrained("./runs/no-such-model")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="bad"):
        Tagger.from_pretrained(bad)


def test_predict_cli_writes_predictions_that_eval_reads(tiny_model, tmp_path, articles):
    files = [str(ANNOTATIONS / "articles" / f"{d.doc}.txt") for d in articles]
    out = tmp_path / "pred.jsonl"
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), *files, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out} (jsonl, 5 documents, ") and result.stdout.endswith(" entities)\n")
    docs = predictions.read(out, articles)
    assert [d.doc for d in docs] == [d.doc for d in articles] and all(d.spans for d in docs)


def test_predict_cli_inputs_and_formats(tiny_model, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "وصل بوتين إلى موسكو أمس"}, ensure_ascii=False) + "\n", encoding="utf-8")
    for fmt in ("jsonl", "conll", "labelstudio"):
        result = runner.invoke(app, ["predict", "--model", str(tiny_model), str(src), "--format", fmt])
        assert result.exit_code == 0, result.output
    conll = runner.invoke(app, ["predict", "--model", str(tiny_model), str(src), "--format", "conll"]).stdout
    assert [ln.split("\t")[0] for ln in conll.splitlines()[2:7]] == ["وصل", "بوتين", "إلى", "موسكو", "أمس"]
    ls = json.loads(runner.invoke(app, ["predict", "--model", str(tiny_model), str(src), "--format", "labelstudio"]).stdout)
    assert ls[0]["data"]["doc"] == "a" and "predictions" in ls[0]
    assert ls[0]["predictions"][0]["model_version"] == labelstudio.model_version(tiny_model)  # as the live backend names it
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), str(src), "--format", "brat", "--out", str(tmp_path / "brat")])
    assert result.exit_code == 0 and (tmp_path / "brat" / "a.ann").exists()
    stdin = subprocess.run(
        [sys.executable, "-m", "arner.cli", "predict", "--model", str(tiny_model), "-"],
        input="قال بوتين",
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert stdin.returncode == 0 and json.loads(stdin.stdout)["doc"] == "stdin"


def test_predict_cli_bad_inputs(tiny_model, tmp_path):
    latin1 = tmp_path / "bad.txt"
    latin1.write_bytes("caf\xe9".encode("latin-1"))
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), str(latin1)])
    assert result.exit_code == 1 and "bad.txt" in result.output and "not UTF-8" in result.output
    result = runner.invoke(app, ["predict", "--model", str(tmp_path / "missing"), str(latin1.with_name("x.txt"))])
    assert result.exit_code == 1 and "x.txt" in result.output and "not found" in result.output
    ok = tmp_path / "ok.txt"
    ok.write_text("بوتين", encoding="utf-8")
    result = runner.invoke(app, ["predict", "--model", str(tmp_path / "missing"), str(ok)])
    assert result.exit_code == 2 and "missing" in result.output
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), str(ok), "--format", "xml"])
    assert result.exit_code == 2
    for device in ("cudax", "cuda:7" if not torch.cuda.is_available() else "cuda:99"):
        result = runner.invoke(app, ["predict", "--model", str(tiny_model), str(ok), "--device", device])
        assert result.exit_code == 2 and result.stderr.startswith(f"error: --device {device}:") and result.stderr.count("\n") == 1
    out = tmp_path / "o.jsonl"
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), str(ok), str(latin1), "--out", str(out)])
    assert result.exit_code == 1 and not out.exists()


def test_predict_on_a_full_disk_is_one_error_and_keeps_the_old_output(tiny_model, tmp_path, monkeypatch):
    ok, out = tmp_path / "ok.txt", tmp_path / "o.jsonl"
    ok.write_text("بوتين في موسكو", encoding="utf-8")
    out.write_text("earlier output\n", encoding="utf-8")
    real_fdopen = os.fdopen

    def full_disk(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        f.write = lambda data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
        return f

    monkeypatch.setattr(atomic.os, "fdopen", full_disk)
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), str(ok), "--out", str(out)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "No space left on device" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert out.read_text(encoding="utf-8") == "earlier output\n" and sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl", "ok.txt"]


def test_entities_never_cross_a_line_break(tagger, articles):
    for d in articles:
        assert all("\n" not in e.text for e in tagger(d.text))


def test_tagger_is_importable_from_the_package():
    import arner

    assert arner.Tagger is Tagger


def test_decoding_splits_an_entity_at_a_line_break(tagger):
    import numpy as np

    from arner.core.alignment import encode_documents

    text = "كيريل دميترييف\nفلاديمير بوتين"
    ws = words(text)
    (enc,) = encode_documents(tagger.tokenizer, [text], [ws], 64, 8)
    i_actor = tagger.labels.index("I-ACTOR")
    found = tagger._decode(text, ws, enc, (np.full(len(ws), i_actor), np.ones(len(ws))))
    assert [e.text for e in found] == ["كيريل دميترييف", "فلاديمير بوتين"]


@given(st.lists(st.integers(1, 512), max_size=60), st.integers(1, 32))
def test_padded_batches_cover_the_windows_in_order_within_size_and_padding(lengths, batch_size):
    from arner.inference.tagger import MAX_PADDING, padded_batches

    lengths = sorted(lengths)
    ranges = padded_batches(lengths, batch_size)
    assert [i for a, b in ranges for i in range(a, b)] == list(range(len(lengths)))
    for a, b in ranges:
        batch = lengths[a:b]
        assert 1 <= len(batch) <= batch_size
        assert len(batch) == 1 or len(batch) * batch[-1] <= sum(batch) * (1 + MAX_PADDING)
    # a batch is closed early only for a reason: the next window would break the size or the padding
    for (a, b), _ in zip(ranges, ranges[1:]):
        batch, nxt = lengths[a:b], lengths[b]
        assert len(batch) == batch_size or (len(batch) + 1) * nxt > (sum(batch) + nxt) * (1 + MAX_PADDING)
