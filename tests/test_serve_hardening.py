"""The service against clients that misbehave: gone before their answer, stalled mid-request,
malformed bodies of every kind (fuzzed), and what the service tells any client about itself."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time

import httpx
import pytest
from test_serve import LiveServer, SlowTagger

from arner.serve import MicroBatcher, ServeSettings, create_app

MAX_DEPTH = 64  # JSON nesting allowed in a request body (README)

# --------------------------------------------------------------------------- raw HTTP on loopback


def raw_request(path: str, body: bytes, headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    """An HTTP/1.1 POST as bytes; `length` overrides the Content-Length (a body shorter than declared)."""
    fields = {"Host": "127.0.0.1", "Content-Type": "application/json", "Content-Length": str(len(body) if length is None else length)}
    fields.update(headers or {})
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    return head.encode("latin-1") + body


def connect(server: LiveServer, timeout: float = 10) -> socket.socket:
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection (True), or until the socket's timeout (False)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    return data, True


# --------------------------------------------------------------------------- 1. clients that left


def test_requests_of_clients_that_left_never_reach_the_model():
    """A probe: 1,000 clients gave up after 1 s and were all computed anyway; the next one waited 45 s."""
    fake = SlowTagger(delay=0.4)
    settings = ServeSettings(max_batch_texts=1, warmup=False)  # one request per model call: the queue is long
    with LiveServer(create_app(fake, settings)) as server:
        gone = []
        for i in range(40):
            sock = connect(server)
            sock.sendall(raw_request("/v1/entities", json.dumps({"texts": [f"gone-{i}"]}).encode()))
            gone.append(sock)
        time.sleep(0.2)  # one is in the model, the rest are queued
        for sock in gone:
            sock.close()
        time.sleep(0.1)  # the server notices
        t0 = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=8) as client:
            r = client.post("/v1/entities", json={"texts": ["still here"]})
        waited = time.monotonic() - t0
        queued = client_stats(server)["queued"]
    assert r.status_code == 200 and r.json()["entities"][0][0]["text"] == "still here"
    assert waited < 2.0, f"waited {waited:.1f} s behind abandoned requests"  # 40 x 0.4 s before the fix
    abandoned_computed = [t for t in fake.texts if t.startswith("gone-")]
    assert len(abandoned_computed) <= 2, abandoned_computed  # the one in the model when its client left
    assert queued == 0


def client_stats(server: LiveServer) -> dict:
    with httpx.Client(base_url=server.url, timeout=8) as client:
        return client.get("/healthz").json()["batching"]


def test_batcher_drops_cancelled_jobs_and_does_not_count_them_as_queued():
    calls: list[list[str]] = []

    def predict(texts):
        calls.append(list(texts))
        time.sleep(0.2)
        return [[] for _ in texts]

    async def scenario():
        batcher = MicroBatcher(predict, ServeSettings(max_batch_texts=1, max_queue=5))
        await batcher.start()
        running = asyncio.ensure_future(batcher.submit(["running"]))
        await asyncio.sleep(0.05)  # in the model now
        waiters = [asyncio.ensure_future(batcher.submit([f"left-{i}"])) for i in range(5)]
        await asyncio.sleep(0.01)
        assert batcher.stats()["queued"] == 5
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        queued_after_cancel = batcher.stats()["queued"]
        late = await asyncio.wait_for(batcher.submit(["late"]), 5)  # not refused: the queue holds no live job
        await running
        await batcher.stop()
        return queued_after_cancel, late

    queued_after_cancel, late = asyncio.run(scenario())
    assert queued_after_cancel == 0 and late == ([[]], 1)
    assert calls == [["running"], ["late"]]  # the cancelled jobs never reached the model


# --------------------------------------------------------------------------- 2. stalled clients


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])  # read, or drained before a 415
def test_a_body_shorter_than_its_content_length_is_408_within_the_deadline(content_type):
    with LiveServer(create_app(SlowTagger(delay=0), ServeSettings(warmup=False, body_timeout_s=0.5))) as server:
        sock = connect(server)
        t0 = time.monotonic()
        sock.sendall(raw_request("/v1/entities", b'{"texts": ', {"Content-Type": content_type}, length=100))
        answer, closed = read_until_closed(sock)
        elapsed = time.monotonic() - t0
        sock.close()
        assert closed and elapsed < 3, (elapsed, answer)
        status = answer.split(b" ", 2)[1]
        assert status == (b"408" if content_type == "application/json" else b"415"), answer
        if status == b"408":
            assert b"body_timeout_s" in answer
        with httpx.Client(base_url=server.url, timeout=8) as client:
            assert client.get("/healthz").status_code == 200


def test_a_connection_that_never_completes_its_headers_is_closed():
    settings = ServeSettings(warmup=False, header_timeout_s=0.5)
    with LiveServer(create_app(SlowTagger(delay=0), settings), settings) as server:
        idle, partial = connect(server), connect(server)
        partial.sendall(b"POST /v1/entities HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        t0 = time.monotonic()
        for sock in (idle, partial):
            _, closed = read_until_closed(sock)
            sock.close()
            assert closed, "the server kept a stalled connection open"
        assert time.monotonic() - t0 < 3
        with httpx.Client(base_url=server.url, timeout=8) as client:  # a keep-alive client is not cut off mid-request
            for _ in range(3):
                assert client.post("/v1/entities", json={"texts": ["x"]}).status_code == 200
                time.sleep(0.3)


def test_run_passes_the_timeouts_to_uvicorn(monkeypatch):
    import uvicorn

    import arner.serve.app
    from arner.serve import run

    seen = {}
    monkeypatch.setattr(arner.serve.app, "create_app", lambda model, settings: "app")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    run("model", ServeSettings(device="cpu", keep_alive_s=3, header_timeout_s=7, port=8123))
    assert seen["app"] == "app" and seen["timeout_keep_alive"] == 3 and seen["port"] == 8123
    assert seen["http"].header_timeout == 7


# --------------------------------------------------------------------------- 3. malformed bodies: 422


@pytest.fixture(scope="module")
def app():
    return create_app(SlowTagger(delay=0), ServeSettings(warmup=False, max_texts=8))


def nested(depth: int) -> bytes:
    return b'{"texts": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize(
    "body, words",
    [
        (b"[" * 100_000, f"nested deeper than {MAX_DEPTH}"),  # 400 before: the parser's RecursionError
        (b'{"a": ' * 100_000, f"nested deeper than {MAX_DEPTH}"),
        (nested(MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH}"),
        (nested(MAX_DEPTH), "texts[0]: Input should be a valid string"),  # at the limit: parsed, then the wrong shape
        (b'{"texts": [' + b"9" * 5000 + b"]}", "integer"),  # 400 before: more digits than Python converts
        (b'{"texts": [1e999, NaN, -Infinity]}', "texts[0]: Input should be a valid string"),
        (b'"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["', "valid dictionary"),  # brackets in a string
        (b'{"texts": ["\xed\xa0\x80"]}', "not UTF-8"),  # a surrogate encoded in UTF-8
        (b"\xef\xbb\xbf{}", "malformed JSON"),  # a byte-order mark
        (b"", "empty body"),
    ],
)
def test_malformed_bodies_are_422_with_one_line(app, body, words):
    answers = asyncio.run(send_all(app, [(body, "application/json")]))
    status, payload = answers[0]
    assert status == 422, payload
    assert payload["detail"].startswith("invalid request body: ") and "\n" not in payload["detail"]
    assert words in payload["detail"], payload["detail"]
    assert isinstance(payload["errors"], list) and payload["errors"]


# --------------------------------------------------------------------------- 4, 5. what any client can see


def test_docs_pages_are_off_and_the_openapi_schema_is_served(app):
    async def scenario():
        async with serving(app) as client:
            return [await client.get(p) for p in ("/docs", "/redoc", "/docs/oauth2-redirect", "/openapi.json")]

    docs, redoc, oauth, schema = asyncio.run(scenario())
    assert docs.status_code == redoc.status_code == oauth.status_code == 404  # their scripts came from a CDN
    body = schema.json()["paths"]["/v1/entities"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["texts"]["type"] == "array" and body["required"] == ["texts"]


# --------------------------------------------------------------------------- fuzz


# wrong shapes of valid JSON; numbers Python reads as inf, nan or not at all; Content-Types
SHAPES = b'null|true|1|"texts"|[]|{}|{"texts": 1}|{"texts": {"a": "b"}}|{"texts": [true]}|{"texts": [null]}|{"texts": [["a"]]}'.split(b"|")
SHAPES += [b'{"texts": ["a"], "x": 1}', b'{"TEXTS": []}', b'{"texts": ["a"]]}']
NUMBERS = [b"1e999", b"-1e999", b"9" * 4301, b"-" + b"1" * 10_000, b"1" + b"0" * 400 + b".5", b"NaN", b"Infinity", b"0x10", b"01"]
CONTENT_TYPES = ["text/plain", "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "", "json"]
CONTENT_TYPES += ["application/json; charset=latin-1", "application/problem+json", "APPLICATION/JSON", ";;;", "application/"]


def random_json(rng: random.Random, depth: int = 0):
    """Any JSON value, of any type, a few levels deep."""
    kind = rng.randrange(7 if depth < 4 else 5)
    if kind == 0:
        return None if rng.random() < 0.5 else rng.random() < 0.5
    if kind == 1:
        return rng.choice([0, -1, 2**63, 2**200, rng.random() * 1e308, -0.0])
    if kind in (2, 3, 4):
        return "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x600, 0x700), rng.randrange(0x1F600, 0x1F650)]))
            for _ in range(rng.randrange(8))
        )
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["texts", "text", "t", ""]): random_json(rng, depth + 1) for _ in range(rng.randrange(3))}


def fuzz_bodies(seed: int = 1234, n: int = 1000) -> list[tuple[bytes, str]]:
    """Seeded malformed bodies: random bytes, truncated and mutated valid JSON, random JSON of the
    wrong types, huge numbers, deep nesting, invalid UTF-8, over the limits, wrong content types."""
    rng = random.Random(seed)
    valid = json.dumps({"texts": ["التقى بوتين وويتكوف في موسكو", "😀 x", ""]}, ensure_ascii=rng.random() < 0.5).encode()
    bodies = []
    for _ in range(n):
        kind = rng.randrange(10)
        if kind == 0:
            body = rng.randbytes(rng.randrange(0, 300))
        elif kind == 1:
            body = valid[: rng.randrange(len(valid))]
        elif kind == 2:
            body = bytearray(valid)
            for _ in range(rng.randrange(1, 6)):
                body[rng.randrange(len(body))] = rng.randrange(256)
            body = bytes(body)
        elif kind == 3:
            body = rng.choice(SHAPES)
        elif kind == 4:
            body = b'{"texts": [' + rng.choice(NUMBERS) + b"]}"
        elif kind == 5:
            depth = rng.choice([MAX_DEPTH - 1, MAX_DEPTH + 1, 1_000, 50_000])
            body = b'{"texts": ' + b"".join(rng.choice([b"[", b'{"k":']) for _ in range(depth))
        elif kind == 6:
            body = b'{"texts": ["' + rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80"]) + b'"]}'
        elif kind == 7:
            value = random_json(rng)
            body = json.dumps({"texts": value} if rng.random() < 0.5 else value, ensure_ascii=rng.random() < 0.5).encode()
        elif kind == 8:  # over a limit: too many texts, or a body over max_body_bytes
            body = json.dumps({"texts": ["x"] * 9} if rng.random() < 0.5 else {"texts": ["x" * 2_000_000]}).encode()
        else:
            bodies.append((valid, rng.choice(CONTENT_TYPES)))
            continue
        bodies.append((body, "application/json"))
    return bodies


def test_fuzzed_bodies_get_clean_json_errors_and_the_service_keeps_working(app):
    bodies = fuzz_bodies()
    t0 = time.monotonic()
    answers = asyncio.run(send_all(app, bodies + [(b'{"texts": ["after the fuzz"]}', "application/json")]))
    assert time.monotonic() - t0 < 20
    for (body, ctype), (status, payload) in zip(bodies, answers):
        assert status in (200, 413, 415, 422), (status, body[:80], ctype, payload)
        if status == 200:
            assert len(payload["entities"]) == len(json.loads(body)["texts"])
            continue
        assert isinstance(payload["detail"], str) and "\n" not in payload["detail"], payload
        if status == 422:
            assert payload["detail"].startswith("invalid request body: ") and isinstance(payload["errors"], list), payload
    statuses = {status for status, _ in answers}
    assert {200, 413, 415, 422} <= statuses, statuses
    assert answers[-1] == (200, {"entities": [[{"start": 0, "end": 14, "label": "ACTOR", "text": "after the fuzz", "score": 1.0}]]})


# --------------------------------------------------------------------------- in-process client


class serving:
    """The app with its lifespan run (the batcher started), and an httpx client over ASGI."""

    def __init__(self, app):
        self.app = app

    async def __aenter__(self) -> httpx.AsyncClient:
        self.lifespan = self.app.router.lifespan_context(self.app)
        await self.lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://test")
        return self.client

    async def __aexit__(self, *exc) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(*exc)


async def send_all(app, bodies: list[tuple[bytes, str]], timeout: float = 5) -> list[tuple[int, dict]]:
    """(status, JSON answer) for each (body, Content-Type) POSTed in turn; a hang fails after `timeout` s."""
    answers = []
    async with serving(app) as client:
        for body, ctype in bodies:
            headers = {"content-type": ctype} if ctype else {}
            r = await asyncio.wait_for(client.post("/v1/entities", content=body, headers=headers), timeout)
            assert r.headers["content-type"].startswith("application/json"), r.headers
            answers.append((r.status_code, r.json()))
    return answers
