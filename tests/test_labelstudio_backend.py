"""Label Studio's ML backend protocol on `arner serve` (/labelstudio): health, setup, predict, webhook.

Label Studio's own calls are reproduced body for body (`label_studio/ml/api_connector.py` of
label-studio 1.23: `tasks`, `project`, `label_config`, `params` to /predict; `project`, `schema`,
`hostname`, `access_token`, `extra_params` to /setup); scripts/labelstudio_check.sh runs a real
Label Studio server against it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from arner.core.conventions import LABELS
from arner.core.formats import labelstudio
from arner.core.formats.texts import render
from arner.inference import Entity, Tagger
from arner.serve import ServeSettings, create_app

from conftest import REPO, TEXT

CONFIG = (REPO / "annotations" / "labelstudio.xml").read_text(encoding="utf-8")
SECOND = "قال لافروف في موسكو يوم الأحد إن روسيا مستعدة للحوار مع واشنطن."
# a project of its own names: the text under data.article, results from "ner" to "body"
OWN_CONFIG = """<View><Header value="$title"/><Labels name="ner" toName="body">
<Label value="ACTOR"/><Label value="PLACE"/></Labels><Text name="body" value="$article"/></View>"""
WORDS = {"بوتين": ("ACTOR", 0.9), "لافروف": ("ACTOR", 0.8), "موسكو": ("PLACE", 0.6), "الجمعة": ("DATE", 0.7)}


def ls_request(texts: list[str], config: str | None = CONFIG, key: str = "text") -> dict:
    """What Label Studio posts to /predict for tasks holding `texts` (ids 11, 12, ...)."""
    tasks = [
        {"id": 11 + n, "data": {key: t, "doc": f"d{n}"}, "annotations": [], "predictions": [], "project": 3} for n, t in enumerate(texts)
    ]
    return {"tasks": tasks, "project": "3.1717000000", "label_config": config, "params": {"login": None, "password": None, "context": None}}


def setup_request(schema: str) -> dict:
    return {"project": "3.1717000000", "schema": schema, "hostname": "http://localhost:8080", "access_token": "t0ken", "extra_params": None}


class WordTagger:
    """Duck-typed Tagger: an entity on every occurrence of a word of `WORDS`; records each call's texts."""

    max_length, stride = 32, 8
    model = SimpleNamespace(
        config=SimpleNamespace(id2label=dict(enumerate(["O", *(f"{p}-{lab}" for lab in LABELS for p in "BI")])), _name_or_path="words")
    )

    def __init__(self):
        self.calls: list[list[str]] = []

    def predict(self, texts):
        self.calls.append(list(texts))
        out = []
        for text in texts:
            found = []
            for word, (label, score) in WORDS.items():
                start = text.find(word)
                while start >= 0:
                    found.append(Entity(start, start + len(word), label, word, score))
                    start = text.find(word, start + 1)
            out.append(sorted(found, key=lambda e: e.start))
        return out


@pytest.fixture
def words():
    return WordTagger()


def client_for(tagger, **settings) -> TestClient:
    return TestClient(create_app(tagger, ServeSettings(warmup=False, **settings)))


def check_results(results: list[dict], texts: list[str], names=(labelstudio.FROM_NAME, labelstudio.TO_NAME)) -> None:
    """Label Studio's predictions format: character-exact `labels` results with scores, a mean score, a version."""
    assert len(results) == len(texts)
    for pred, text in zip(results, texts):
        assert set(pred) <= {"result", "score", "model_version"} and isinstance(pred["model_version"], str)
        scores = [r["score"] for r in pred["result"]]
        assert pred.get("score") == (pytest.approx(sum(scores) / len(scores)) if scores else None)
        for r in pred["result"]:
            assert (r["from_name"], r["to_name"], r["type"]) == (*names, "labels")
            v = r["value"]
            assert text[v["start"] : v["end"]] == v["text"] and v["text"].strip() == v["text"] != ""
            assert len(v["labels"]) == 1 and v["labels"][0] in LABELS and 0 < r["score"] <= 1


def as_tasks_file(tmp_path: Path, body: dict, results: list[dict]) -> list:
    """The tasks with the backend's predictions, read back by arner's Label Studio importer (which
    checks the shape: labels results, integer offsets, one label, the text at those offsets)."""
    path = tmp_path / "tasks.json"
    tasks = [{**t, "predictions": [p]} for t, p in zip(body["tasks"], results)]
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return labelstudio.load(path)


# --------------------------------------------------------------------------- the real model


@pytest.mark.slow  # the session's trained tiny model
def test_a_project_with_the_shipped_config_gets_the_models_entities(tiny_model, tmp_path):
    texts = [TEXT, SECOND]
    version = labelstudio.model_version(tiny_model)
    assert version.startswith(f"{tiny_model.name}@") and len(version.split("@")[1]) == 8
    with TestClient(create_app(tiny_model, ServeSettings(device="cpu"))) as c:
        health = c.get("/labelstudio/health").json()
        assert health == {"status": "UP", "model_class": "arner", "model_version": version}
        assert c.post("/labelstudio/setup", json=setup_request(CONFIG)).json() == {"model_version": version}
        body = ls_request(texts)
        r = c.post("/labelstudio/predict", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == version and c.get("/v1/model").json()["model_version"] == version
    results = r.json()["results"]
    check_results(results, texts)
    expected = Tagger.from_pretrained(tiny_model, device="cpu").predict(texts)
    assert sum(map(len, expected)) > 0
    for pred, ents in zip(results, expected):
        assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in pred["result"]] == [
            (e.start, e.end, e.label) for e in ents
        ]
        assert [r["score"] for r in pred["result"]] == pytest.approx([e.score for e in ents], abs=1e-4)
        assert pred["model_version"] == version
    docs = as_tasks_file(tmp_path, body, results)
    assert [d.spans for d in docs] == [[e.span() for e in ents] for ents in expected]
    # a tasks file of `arner predict --format labelstudio` names the model the same way, so Label
    # Studio does not predict again the tasks it already has this version's predictions for
    written = json.loads(render("labelstudio", [("d0", TEXT)], expected[:1], None, version))
    assert written[0]["predictions"][0]["model_version"] == version


# --------------------------------------------------------------------------- the protocol, on a stand-in model


def test_health_setup_webhook_and_versions(words, caplog):
    with client_for(words) as c:
        assert c.get("/labelstudio/health").json() == {"status": "UP", "model_class": "arner", "model_version": "words"}
        assert c.get("/labelstudio/").json()["status"] == "UP"
        assert c.post("/labelstudio/setup", json=setup_request(CONFIG)).json() == {"model_version": "words"}
        assert c.get("/labelstudio/versions").json() == {"versions": ["words"]}
        with caplog.at_level(logging.WARNING, logger="arner.serve"):
            for action in ("ANNOTATION_CREATED", "START_TRAINING"):
                r = c.post("/labelstudio/webhook", json={"action": action, "project": {"id": 3}})
                assert r.status_code == 200 and r.json()["status"] == "ok"
        assert "arner train" in caplog.text and "t0ken" not in caplog.text
    assert words.calls == []  # none of these runs the model


def test_results_follow_the_projects_own_names_and_data_key(words, tmp_path):
    texts = ["التقى بوتين نظيره في موسكو يوم الجمعة.", SECOND]
    with client_for(words) as c:
        body = ls_request(texts, OWN_CONFIG, key="article")
        r = c.post("/labelstudio/predict", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    check_results(results, texts, names=("ner", "body"))
    # DATE is not offered by this project: left out; the rest in order, with the stand-in's scores
    assert [[(x["value"]["text"], x["value"]["labels"][0], x["score"]) for x in p["result"]] for p in results] == [
        [("بوتين", "ACTOR", 0.9), ("موسكو", "PLACE", 0.6)],
        [("لافروف", "ACTOR", 0.8), ("موسكو", "PLACE", 0.6)],
    ]
    assert [p["score"] for p in results] == pytest.approx([0.75, 0.7])


def test_a_task_without_entities_gets_an_empty_prediction(words):
    with client_for(words) as c:
        results = c.post("/labelstudio/predict", json=ls_request(["لا شيء هنا", ""])).json()["results"]
    assert results == [{"result": [], "model_version": "words"}] * 2


def test_the_threshold_of_the_server_applies(words):
    with client_for(words, threshold=0.65) as c:
        (pred,) = c.post("/labelstudio/predict", json=ls_request([TEXT])).json()["results"]
    assert [x["value"]["text"] for x in pred["result"]] == ["بوتين", "الجمعة"]  # موسكو (0.6) left out


def test_a_large_selection_is_tagged_in_chunks_within_the_limits(words):
    texts = [f"{n} بوتين في موسكو" for n in range(150)]
    with client_for(words, max_texts=8, max_chars=100) as c:
        r = c.post("/labelstudio/predict", json=ls_request(texts))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [p["result"][0]["value"]["start"] for p in results] == [t.index("بوتين") for t in texts]
    assert [t for call in words.calls for t in call] == texts and len(words.calls) > 150 / 8
    assert all(len(call) <= 8 and sum(map(len, call)) <= 100 for call in words.calls)


@pytest.mark.parametrize(
    "path, body, status, says",
    [
        ("setup", setup_request(CONFIG.replace('value="DATE"', 'value="ORG"')), 422, "'ORG' are not labels of this model"),
        ("predict", ls_request([TEXT], CONFIG.replace('value="DATE"', 'value="ORG"')), 422, "'ORG' are not labels of this model"),
        ("predict", ls_request([TEXT], key="body"), 422, "task 11: data has no text under 'text'"),
        ("predict", ls_request([TEXT], OWN_CONFIG), 422, "task 11: data has no text under 'article'"),
        ("predict", {**ls_request([TEXT]), "tasks": [{"id": 4, "data": "نص"}]}, 422, "task 4 has no 'data' object"),
        ("predict", {**ls_request([TEXT]), "tasks": {"id": 4}}, 422, "'tasks' must be a list of tasks"),
        ("predict", ls_request([TEXT], "<View><Text"), 422, "the labeling config is not valid XML"),
        ("setup", setup_request("<View><Text name='t' value='$text'/></View>"), 422, "no <Labels> control whose toName is a <Text>"),
        ("predict", ls_request(["ب" * 30]), 413, "task 11: its text has 30 characters > max_text_chars=20"),
        ("predict", [1, 2], 422, "the request body must be a JSON object, got list"),
        ("predict", b"{not json", 422, "invalid request body: malformed JSON at position 1"),
    ],
)
def test_bad_requests_are_one_line_errors_logged_on_the_console(words, caplog, path, body, status, says):
    with client_for(words, max_text_chars=20) as c, caplog.at_level(logging.WARNING, logger="arner.serve"):
        if isinstance(body, bytes):
            r = c.post(f"/labelstudio/{path}", content=body, headers={"content-type": "application/json"})
        else:
            r = c.post(f"/labelstudio/{path}", json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert says in detail and "\n" not in detail and "Traceback" not in r.text
    # Label Studio shows only "422 Client Error" and sends the user to the backend's console
    assert f"Label Studio /labelstudio/{path} refused ({status}): {detail}" in caplog.text
    assert words.calls == []


def test_a_body_over_the_labelstudio_limit_is_refused_before_it_is_read(words):
    with client_for(words, labelstudio_max_body_bytes=1000) as c:
        r = c.post("/labelstudio/predict", json=ls_request(["بوتين " * 200]))
        ok = c.post("/v1/entities", json={"texts": ["بوتين " * 200]})  # the service's own limit is apart
    assert r.status_code == 413 and r.json()["limit"] == "labelstudio_max_body_bytes"
    assert ok.status_code == 200 and len(ok.json()["entities"][0]) == 200


# --------------------------------------------------------------------------- the labeling config


def test_the_shipped_config_gives_the_exports_names():
    config = labelstudio.parse_config(CONFIG)
    assert config == labelstudio.LabelingConfig(labelstudio.FROM_NAME, labelstudio.TO_NAME, labelstudio.DATA_KEY, tuple(LABELS))
    assert labelstudio.LabelingConfig() == labelstudio.LabelingConfig(labelstudio.FROM_NAME, labelstudio.TO_NAME, labelstudio.DATA_KEY)


def test_a_url_valued_text_is_refused():
    with pytest.raises(ValueError, match='valueType="url": put the text in the task'):
        labelstudio.parse_config('<View><Labels name="l" toName="t"/><Text name="t" value="$u" valueType="url"/></View>')


def test_the_model_version_follows_arner_json(tmp_path):
    model = tmp_path / "my-model"
    model.mkdir()
    assert labelstudio.model_version(model) == "my-model" and labelstudio.model_version("owner/hub-model") == "owner/hub-model"
    (model / "arner.json").write_text('{"metrics": {}}', encoding="utf-8")
    first = labelstudio.model_version(model)
    (model / "arner.json").write_text('{"metrics": {"f1": 0.5}}', encoding="utf-8")
    assert first.startswith("my-model@") and labelstudio.model_version(model) != first
