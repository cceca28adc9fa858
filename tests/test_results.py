"""Pipeline-compatible results and the score threshold: library (`Tagger`), `arner predict`, `arner serve`."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from test_serve import LiveServer, SlowTagger, post
from typer.testing import CliRunner

from arner.cli import app
from arner.core import corpus
from arner.core.conventions import words
from arner.core.results import PIPELINE_KEYS, above, check_threshold, pipeline_dict
from arner.inference import Entity, Tagger
from arner.serve import ServeSettings, create_app
from arner.serve.settings import SettingsError

from conftest import ANNOTATIONS, TEXT

runner = CliRunner()
BAD_THRESHOLDS = [-0.1, 1.5, math.nan, math.inf]


# --------------------------------------------------------------------------- core: no model


@pytest.mark.parametrize("value", [*BAD_THRESHOLDS, "0.5", True, None])
def test_a_bad_threshold_is_one_line_naming_it(value):
    with pytest.raises(ValueError, match=r"^--threshold must be .*between 0 and 1, got ") as e:
        check_threshold(value, "--threshold")
    assert "\n" not in str(e.value)


def test_threshold_keeps_entities_scored_at_or_above_it():
    ents = [Entity(0, 1, "ACTOR", "a", 0.2), Entity(2, 3, "PLACE", "b", 0.5), Entity(4, 5, "DATE", "c", 0.9)]
    assert [e.text for e in above(ents, check_threshold(0))] == ["a", "b", "c"]
    assert [e.text for e in above(ents, check_threshold(0.5))] == ["b", "c"]
    assert above(ents, check_threshold(1)) == []


def test_pipeline_dict_has_the_pipelines_keys_in_its_order():
    d = pipeline_dict(Entity(6, 11, "ACTOR", "بوتين", 0.5591))
    assert list(d) == list(PIPELINE_KEYS) == ["entity_group", "score", "word", "start", "end"]
    assert d == {"entity_group": "ACTOR", "score": 0.5591, "word": "بوتين", "start": 6, "end": 11}
    assert Entity(6, 11, "ACTOR", "بوتين", 0.5591).to_pipeline() == d


def test_predict_cli_checks_the_threshold_before_loading_the_model(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text(TEXT, encoding="utf-8")
    for value in ("1.5", "-1", "nan"):
        result = runner.invoke(app, ["predict", "--model", str(tmp_path / "no-model"), str(text), "--threshold", value])
        assert result.exit_code == 2 and result.stderr.startswith("error: --threshold must be between 0 and 1")
        assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("value, message", [(1.5, "--threshold must be <= 1 (got 1.5)"), (math.nan, "--threshold must be a finite number")])
def test_serve_threshold_setting_is_checked(value, message):
    with pytest.raises(SettingsError) as e:
        ServeSettings(threshold=value)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


# --------------------------------------------------------------------------- the service, with a fake model


class ScoredTagger(SlowTagger):
    """Each text gives two entities: its first character scored 0.3 and the rest scored 0.8."""

    def predict(self, texts):
        return [[Entity(0, 1, "ACTOR", t[:1], 0.3), Entity(2, len(t), "PLACE", t[2:], 0.8)] for t in texts]


@pytest.fixture(scope="module")
def fake_client():
    with LiveServer(create_app(ScoredTagger(delay=0), ServeSettings(threshold=0.5, warmup=False))) as server:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            yield c


def labels(response: httpx.Response, key: str = "label") -> list[list[str]]:
    assert response.status_code == 200, response.text
    return [[e[key] for e in ents] for ents in response.json()["entities"]]


def test_serve_threshold_default_and_per_request(fake_client):
    assert fake_client.get("/v1/model").json()["threshold"] == 0.5
    assert labels(post(fake_client, {"texts": ["a bc", "d ef"]})) == [["PLACE"], ["PLACE"]]  # the server's 0.5
    assert labels(post(fake_client, {"texts": ["a bc"], "threshold": 0})) == [["ACTOR", "PLACE"]]
    assert labels(post(fake_client, {"texts": ["a bc"], "threshold": 0.3})) == [["ACTOR", "PLACE"]]  # at the threshold: kept
    assert labels(post(fake_client, {"texts": ["a bc"], "threshold": 1})) == [[]]


def test_serve_pipeline_format(fake_client):
    r = post(fake_client, {"texts": ["a bc"], "format": "pipeline", "threshold": 0})
    assert r.json() == {
        "entities": [
            [
                {"entity_group": "ACTOR", "score": 0.3, "word": "a", "start": 0, "end": 1},
                {"entity_group": "PLACE", "score": 0.8, "word": "bc", "start": 2, "end": 4},
            ]
        ]
    }
    assert list(r.json()["entities"][0][0]) == list(PIPELINE_KEYS)
    assert labels(post(fake_client, {"texts": ["a bc"], "format": "entities"})) == [["PLACE"]]


@pytest.mark.parametrize(
    "extra, words_in_detail",
    [
        ({"threshold": 1.5}, "threshold: Input should be less than or equal to 1"),
        ({"threshold": -0.5}, "threshold: Input should be greater than or equal to 0"),
        ({"threshold": "0.5"}, "threshold: Input should be a valid number"),
        ({"format": "spacy"}, "format: Input should be 'entities' or 'pipeline'"),
    ],
)
def test_serve_bad_threshold_or_format_is_a_422(fake_client, extra, words_in_detail):
    r = post(fake_client, {"texts": ["a bc"], **extra})
    assert r.status_code == 422 and words_in_detail in r.json()["detail"] and "\n" not in r.json()["detail"]


def test_serve_nan_threshold_is_a_422(fake_client):
    r = post(fake_client, b'{"texts": ["a bc"], "threshold": NaN}')
    assert r.status_code == 422 and "threshold: Input should be a finite number" in r.json()["detail"]


# --------------------------------------------------------------------------- a model trained by the project


@pytest.fixture(scope="module")
def paragraphs():
    found = [line for d in corpus.load(ANNOTATIONS) for line in d.text.split("\n") if len(words(line)) > 3][:40]
    assert len(found) == 40
    return found


@pytest.mark.slow
def test_pipeline_dicts_equal_the_transformers_pipeline(tiny_model, paragraphs):
    """Where both aggregate alike (aggregation_strategy="first", whole words, one window), the same dicts."""
    from transformers import pipeline

    plain = Tagger.from_pretrained(tiny_model, device="cpu", trim_proclitics=False)
    pipe = pipeline("token-classification", model=str(tiny_model), aggregation_strategy="first", device=-1)
    ours, theirs = plain.pipeline_dicts(paragraphs), pipe(paragraphs)
    assert sum(map(len, ours)) > 50
    for text, a, b in zip(paragraphs, ours, theirs):
        assert [(d["start"], d["end"], d["entity_group"], d["word"]) for d in a] == [
            (d["start"], d["end"], d["entity_group"], d["word"]) for d in b
        ], text
        assert all(abs(x["score"] - float(y["score"])) < 1e-5 for x, y in zip(a, b))
        for d in a:
            assert list(d) == list(b[0]) == list(PIPELINE_KEYS)
            assert type(d["score"]) is float and type(d["start"]) is int and type(d["end"]) is int and type(d["word"]) is str
            assert text[d["start"] : d["end"]] == d["word"]
    assert plain.pipeline_dicts(paragraphs[0]) == ours[0]  # one text: one list, as the pipeline


@pytest.mark.slow
def test_tagger_threshold_drops_low_scores(tiny_model, paragraphs):
    tagger = Tagger.from_pretrained(tiny_model, device="cpu")
    everything = tagger.predict(paragraphs)
    scores = sorted(e.score for doc in everything for e in doc)
    cut = scores[len(scores) // 2]
    kept = tagger.predict(paragraphs, threshold=cut)
    assert kept == [[e for e in doc if e.score >= cut] for doc in everything]
    assert 0 < sum(map(len, kept)) < sum(map(len, everything))
    assert Tagger.from_pretrained(tiny_model, device="cpu", threshold=cut).predict(paragraphs) == kept
    assert tagger(paragraphs[0], threshold=1.0) == [e for e in everything[0] if e.score >= 1.0]
    with pytest.raises(ValueError, match="threshold must be between 0 and 1, got 2"):
        tagger.predict(paragraphs, threshold=2)
    with pytest.raises(ValueError, match="threshold must be between 0 and 1"):
        Tagger.from_pretrained(tiny_model, device="cpu", threshold=-1)


@pytest.mark.slow
def test_predict_cli_pipeline_format_and_threshold(tiny_model, tmp_path, paragraphs):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"p{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(paragraphs)))
    tagger = Tagger.from_pretrained(tiny_model, device="cpu")
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), str(src), "--format", "pipeline"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == tagger.pipeline_dicts(paragraphs)
    out = tmp_path / "pred.jsonl"
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), str(src), "--threshold", "0.9", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = [[e.to_json() for e in doc] for doc in tagger.predict(paragraphs, threshold=0.9)]
    assert [r["entities"] for r in rows] == expected and all(e["score"] >= 0.9 for r in rows for e in r["entities"])
    assert sum(map(len, expected)) < sum(map(len, tagger.predict(paragraphs)))


@pytest.mark.slow
def test_serve_pipeline_format_equals_the_tagger(tiny_model, paragraphs):
    tagger = Tagger.from_pretrained(tiny_model, device="cpu")
    texts = paragraphs[:8]
    with LiveServer(create_app(tiny_model, ServeSettings(device="cpu", warmup=False))) as server:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            for text in texts:  # one text a request: the model call the tagger makes below
                got = post(c, {"texts": [text], "format": "pipeline", "threshold": 0.6}).json()["entities"]
                assert got == [tagger.pipeline_dicts(text, threshold=0.6)]
