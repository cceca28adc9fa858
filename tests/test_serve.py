"""The HTTP service over real HTTP on loopback: uvicorn in a background thread (or `arner serve` in a subprocess)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn

import arner
from arner.inference import Entity, Tagger
from arner.serve import MicroBatcher, ServeSettings, ServiceUnavailable, create_app
from arner.serve.app import model_info

from conftest import REPO, TEXT

LIMITS = {"max_texts": 8, "max_chars": 12_000, "max_text_chars": 6_000}


class LiveServer:
    """uvicorn on a socket already bound to 127.0.0.1:0 (no port race), in a daemon thread."""

    def __init__(self, app, settings: ServeSettings | None = None):
        """`settings`: serve with the uvicorn options `arner serve` would take from them (timeouts, protocol)."""
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        options = {}
        if settings is not None:
            from arner.serve.server import uvicorn_options

            options = {k: v for k, v in uvicorn_options(settings).items() if k not in ("host", "port", "log_level", "access_log")}
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()
        assert not self.thread.is_alive(), "server did not stop"


def post(client: httpx.Client, body, **kw) -> httpx.Response:
    """POST /v1/entities; `body` is JSON-encoded unless it is bytes."""
    if isinstance(body, bytes):
        return client.post("/v1/entities", content=body, headers={"content-type": "application/json", **kw.pop("headers", {})}, **kw)
    return client.post("/v1/entities", content=json.dumps(body), headers={"content-type": "application/json"}, **kw)


def as_json(entities: list[list[Entity]]) -> list[list[dict]]:
    return [[e.to_json() for e in ents] for ents in entities]


@pytest.fixture(scope="module")
def tagger(tiny_model: Path) -> Tagger:
    """A second, independent Tagger on the same model: what the server must agree with."""
    return Tagger.from_pretrained(tiny_model, device="cpu")


@pytest.fixture(scope="module")
def live(tiny_model: Path):
    with LiveServer(create_app(tiny_model, ServeSettings(device="cpu", **LIMITS))) as server:
        yield server


@pytest.fixture
def client(live: LiveServer):
    with httpx.Client(base_url=live.url, timeout=30) as c:
        yield c


# --------------------------------------------------------------------------- endpoints


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_model_info(client, tagger, tiny_model):
    r = client.get("/v1/model")
    info = r.json()
    assert info["labels"] == ["ACTOR", "DATE", "PLACE"]
    assert info["tags"][0] == "O" and set(info["tags"]) == set(tagger.model.config.id2label.values())
    assert info["model"] == tiny_model.name and info["base_model"] == "tiny"
    assert info["max_length"] == tagger.max_length and info["stride"] == tagger.stride and info["device"] == "cpu"
    assert info["precision"] == tagger.precision
    assert info["arner_version"] == arner.__version__
    assert info["limits"]["max_texts"] == LIMITS["max_texts"] and info["limits"]["max_text_chars"] == LIMITS["max_text_chars"]
    assert info["batching"]["max_batch_texts"] == 64 and info["train_metrics"]["epochs_run"] == 20
    # nothing any client could use against the host: no path on this machine, no library versions
    assert str(tiny_model.parent) not in r.text and str(Path.home()) not in r.text and "/tmp" not in r.text
    assert "trained_with" not in info and "torch" not in r.text and "transformers" not in r.text


def test_model_info_shows_a_local_base_model_by_its_folder_name(tmp_path):
    base = tmp_path / "secret" / "bert-base-local"
    base.mkdir(parents=True)
    meta = {"config": {"model": str(base)}, "metrics": {"final_loss": 0.5}, "versions": {"torch": "2.13.0"}}
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "arner.json").write_text(json.dumps(meta), encoding="utf-8")
    fake = SlowTagger()
    fake.model = SimpleNamespace(config=SimpleNamespace(id2label={0: "O"}, _name_or_path=str(tmp_path / "model")))
    info = model_info(fake)
    assert (info["model"], info["base_model"], info["train_metrics"]) == ("model", "bert-base-local", {"final_loss": 0.5})
    assert str(tmp_path) not in json.dumps(info) and "2.13.0" not in json.dumps(info)
    hub = {**meta, "config": {"model": "aubmindlab/bert-base-arabertv02"}}  # a hub id is not a path: shown whole
    (tmp_path / "model" / "arner.json").write_text(json.dumps(hub), encoding="utf-8")
    assert model_info(fake)["base_model"] == "aubmindlab/bert-base-arabertv02"


def test_entities_equal_predict(client, tagger):
    article = sorted((REPO / "annotations" / "articles").glob("*.txt"))[0].read_text(encoding="utf-8")[:5000]
    texts = [TEXT, "قال لافروف في موسكو يوم الأحد إن روسيا مستعدة للحوار مع واشنطن.", article]
    r = post(client, {"texts": texts})
    assert r.status_code == 200, r.text
    got = r.json()["entities"]
    assert got == as_json(tagger.predict(texts))
    assert sum(map(len, got)) > 10  # the long text spans several windows and has entities
    for t in texts:  # alone, as the server may also run them
        assert post(client, {"texts": [t]}).json()["entities"] == as_json(tagger.predict([t]))


def test_offsets_index_the_exact_strings(client, tagger):
    texts = [
        "😀🇷🇺 " + TEXT,  # astral code points (one str index each, two UTF-16 units)
        "التَّقَى بُوتِين وَوِيتكُوف فِي مُوسكُو يَوْمَ الجُمُعَة.",  # diacritics
        "Putin met Witkoff: " + TEXT + " — then Moscow.",  # mixed scripts
        "التقى\u200fبوتين\u200d وويتكوف\r\nفي\tموسكو ـــ يوم الجمعة\x00.",  # RLM, ZWJ, CRLF, tab, tatweel, NUL
        "\ud800" + TEXT + "\udfff",  # lone surrogates, sent as JSON escapes
    ]
    body = json.dumps({"texts": texts}).encode()  # ensure_ascii: the surrogates travel as \\ud800
    r = post(client, body)
    assert r.status_code == 200, r.text
    got = json.loads(r.content)["entities"]
    assert got == as_json(tagger.predict(texts))
    for text, entities in zip(texts, got):
        for e in entities:
            assert 0 <= e["start"] < e["end"] <= len(text)
            assert text[e["start"] : e["end"]] == e["text"]
    assert any(e["start"] >= 3 for e in got[0]), "an entity after the emoji"
    moscow = TEXT.index("موسكو") + len("😀🇷🇺 ")
    assert any(e["start"] == moscow and e["text"] == "موسكو" for e in got[0])


def test_empty_list_and_empty_strings(client):
    assert post(client, {"texts": []}).json() == {"entities": []}
    r = post(client, {"texts": ["", " ", "\n\t", "...", "hello"]})
    assert r.status_code == 200
    assert r.json() == {"entities": [[], [], [], [], []]}


# --------------------------------------------------------------------------- limits: 413


@pytest.mark.parametrize(
    "texts, limit",
    [
        (["a"] * (LIMITS["max_texts"] + 1), "max_texts"),
        (["ب" * (LIMITS["max_text_chars"] + 1)], "max_text_chars"),
        (["ب" * 5_000, "ب" * 5_000, "ب" * 5_000], "max_chars"),
    ],
)
def test_413_names_the_limit(client, texts, limit):
    r = post(client, {"texts": texts})
    assert r.status_code == 413
    body = r.json()
    assert body["limit"] == limit and body["max"] == LIMITS[limit]
    assert limit in body["detail"]


def test_413_body_too_large_before_reading_it(client, live):
    limit = client.get("/v1/model").json()["limits"]["max_body_bytes"]
    r = post(client, b'{"texts": ["' + b"a" * limit + b'"]}')
    assert r.status_code == 413 and r.json()["limit"] == "max_body_bytes"

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"texts": ["'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536
        yield b'"]}'

    with httpx.Client(base_url=live.url, timeout=30) as fresh:
        r = fresh.post("/v1/entities", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes" in r.json()["detail"]
    assert client.get("/healthz").status_code == 200


# --------------------------------------------------------------------------- malformed: 422 (415)


@pytest.mark.parametrize(
    "body, words",
    [
        (b'{"texts": ["a", ', "malformed JSON"),
        (b"{'texts': []}", "malformed JSON"),
        (b"", "empty body"),
        (b"{}", "texts: Field required"),
        (b'{"text": ["a"]}', "texts: Field required"),
        (b'{"texts": "one string"}', "texts: Input should be a valid list"),
        (b'{"texts": ["a", 1]}', "texts[1]: Input should be a valid string"),
        (b'{"texts": [null]}', "texts[0]"),
        (b'{"texts": [["nested"]]}', "texts[0]"),
        (b'{"texts": [], "extra": 1}', "extra: Extra inputs are not permitted"),
        (b'["a", "b"]', "valid dictionary"),
        (b"null", "valid dictionary"),
        (b'{"texts": ["\xff\xfe"]}', "not UTF-8"),
    ],
)
def test_422_with_a_message(client, body, words):
    r = post(client, body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and words in detail, detail


def test_content_type(client):
    r = client.post("/v1/entities", content=b'{"texts": ["a"]}', headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    r = client.post("/v1/entities", content=b'{"texts": ["a"]}')  # no Content-Type: read as JSON
    assert r.status_code == 200 and r.json() == {"entities": [[]]}
    r = client.post("/v1/entities", content=b'{"texts": []}', headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 200


def test_unknown_route_and_method(client):
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/entities").status_code == 405


# --------------------------------------------------------------------------- micro-batching (fake tagger)


class SlowTagger:
    """Duck-typed Tagger: one whole-text entity per text; records every predict call."""

    max_length = 32
    stride = 8
    model = SimpleNamespace(config=SimpleNamespace(id2label={0: "O", 1: "B-ACTOR", 2: "I-ACTOR"}, _name_or_path="fake"))

    def __init__(self, delay: float = 0.02):
        self.delay = delay
        self.calls: list[int] = []
        self.texts: list[str] = []  # every text the model saw
        self.threads: set[threading.Thread] = set()
        self.active = 0
        self.overlap = False

    def predict(self, texts):
        self.active += 1
        self.overlap |= self.active > 1
        try:
            self.threads.add(threading.current_thread())
            self.calls.append(len(texts))
            self.texts.extend(texts)
            if any(t == "boom" for t in texts):
                raise RuntimeError("the model fell over")
            time.sleep(self.delay)
            return [[Entity(0, len(t), "ACTOR", t, 1.0)] if t else [] for t in texts]
        finally:
            self.active -= 1


def concurrently(url: str, bodies: list[list[str]], workers: int = 16) -> list[httpx.Response]:
    start = threading.Barrier(min(workers, len(bodies)))

    def one(texts):
        with httpx.Client(base_url=url, timeout=30) as c:
            start.wait(10)
            return post(c, {"texts": texts})

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, bodies))


def test_concurrent_requests_are_merged_and_routed_back():
    fake = SlowTagger()
    with LiveServer(create_app(fake, ServeSettings(max_batch_texts=64, max_wait_ms=20, warmup=False))) as server:
        bodies = [[f"r{i}-t{j}" for j in range(1 + i % 3)] for i in range(16)]
        responses = concurrently(server.url, bodies)
    for texts, r in zip(bodies, responses):
        assert r.status_code == 200, r.text
        assert r.json()["entities"] == [[{"start": 0, "end": len(t), "label": "ACTOR", "text": t, "score": 1.0}] for t in texts]
    assert sum(fake.calls) == sum(map(len, bodies))
    assert len(fake.calls) < len(bodies), fake.calls  # merged
    assert max(int(r.headers["x-arner-batch-texts"]) for r in responses) > 3
    assert len(fake.threads) == 1 and not fake.overlap  # one model thread, never two calls at once


def test_max_batch_texts_is_respected_and_big_requests_run_alone():
    fake = SlowTagger()
    with LiveServer(create_app(fake, ServeSettings(max_batch_texts=4, max_wait_ms=20, warmup=False))) as server:
        bodies = [[f"r{i}"] for i in range(12)] + [[f"big{j}" for j in range(6)]]
        responses = concurrently(server.url, bodies)
    assert all(r.status_code == 200 for r in responses)
    assert responses[-1].json()["entities"][5][0]["text"] == "big5"
    assert sorted(fake.calls)[-1] == 6 and all(n <= 4 for n in fake.calls if n != 6), fake.calls


def test_a_lone_request_does_not_wait_for_company():
    app = create_app(SlowTagger(delay=0), ServeSettings(max_wait_ms=2000, warmup=False))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        for _ in range(3):
            t0 = time.monotonic()
            assert post(c, {"texts": ["alone"]}).status_code == 200
            assert time.monotonic() - t0 < 1.0


def test_model_failure_is_500_and_the_worker_survives():
    fake = SlowTagger(delay=0)
    with LiveServer(create_app(fake, ServeSettings(warmup=False))) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        r = post(c, {"texts": ["boom"]})
        assert r.status_code == 500 and "the model fell over" in r.json()["detail"]
        assert post(c, {"texts": ["fine"]}).json()["entities"][0][0]["text"] == "fine"
        assert c.get("/healthz").status_code == 200


def test_clean_startup_and_shutdown():
    fake = SlowTagger(delay=0)
    app = create_app(fake)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        assert app.state.batcher.running
        assert post(c, {"texts": ["x"]}).status_code == 200
        assert fake.calls[0] == 1  # the warm-up call, on the model thread, before serving
        assert len(fake.threads) == 1 and next(iter(fake.threads)).is_alive()
    assert not app.state.batcher.running
    assert not next(iter(fake.threads)).is_alive()
    with pytest.raises(Exception, match="shutting down"):
        asyncio.run(app.state.batcher.submit(["late"]))


def test_stop_fails_queued_and_running_requests_instead_of_hanging():
    async def scenario():
        batcher = MicroBatcher(lambda texts: time.sleep(0.3) or [[] for _ in texts], ServeSettings(max_batch_texts=1, max_wait_ms=0))
        await batcher.start()
        calls = [asyncio.ensure_future(batcher.submit([f"t{i}"])) for i in range(4)]
        await asyncio.sleep(0.05)  # the first is in the model, three are queued
        await asyncio.wait_for(batcher.stop(), 10)
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, ServiceUnavailable) for o in outcomes), outcomes


@pytest.mark.parametrize("kwargs", [{"max_texts": 0}, {"max_chars": -1}, {"max_batch_texts": 0}, {"max_wait_ms": -1}, {"threads": 0}])
def test_bad_settings_fail_early(kwargs):  # more in test_serve_settings.py
    with pytest.raises(ValueError):
        create_app(SlowTagger(), ServeSettings(**kwargs))


# --------------------------------------------------------------------------- `arner serve` and load


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_serve", REPO / "scripts" / "bench_serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_bad_model_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "arner.cli", "serve", "--model", str(tmp_path), "--port", "1"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "error:" in r.stderr and str(tmp_path) in r.stderr


@pytest.mark.slow
def test_load_2000_requests_16_clients_no_errors(tiny_model, tagger):
    """`arner serve` in a subprocess; 2,000 requests from 16 clients; every answer checked; clean exit."""
    bench = bench_module()
    texts = bench.sentences()[:64]
    expected = {t: [(e.start, e.end, e.label) for e in ents] for t, ents in zip(texts, tagger.predict(texts))}

    def check(i, sent, answer):
        got = [[(e["start"], e["end"], e["label"]) for e in ents] for ents in answer["entities"]]
        if got != [expected[t] for t in sent]:
            return f"wrong entities for {sent}"
        return None

    with bench.Server(tiny_model) as server:
        t0 = time.monotonic()
        result = bench.load(server.url, [[t] for t in texts], requests=2000, clients=16, timeout_s=50, request_timeout_s=20, check=check)
        elapsed = time.monotonic() - t0
    assert result["errors"] == 0, result["error_samples"]
    assert result["ok"] == 2000 and not result["timed_out"]
    assert elapsed < 50
    assert result["mean_merged_texts"] > 1  # concurrent requests were merged
    assert server.returncode == 0, server.output
