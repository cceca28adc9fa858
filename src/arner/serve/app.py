"""HTTP service: `POST /v1/entities`, `GET /v1/model`, `GET /healthz` (FastAPI + uvicorn).

Requests that arrive together are merged into one `Tagger.predict` call by a `MicroBatcher`:
an asyncio queue and one worker task that takes what is queued (up to `max_batch_texts` texts),
waiting at most `max_wait_ms` after the oldest request for more while callers are arriving
together, runs the model in a single dedicated thread (so model calls never run concurrently
and the CPU is not oversubscribed), and routes each caller's slice of the results back to it.
Limits are checked before anything reaches the model: too large is 413, malformed is 422,
both with a JSON `detail` message.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

import arner
from arner.serve.defaults import DEFAULT_MAX_BATCH_TEXTS, DEFAULT_MAX_CHARS, DEFAULT_MAX_QUEUE, DEFAULT_MAX_TEXTS, DEFAULT_MAX_WAIT_MS

log = logging.getLogger("arner.serve")

WARMUP_TEXT = "التقى بوتين وويتكوف في موسكو يوم الجمعة."


# --------------------------------------------------------------------------- JSON bodies


class EntitiesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    texts: list[str] = Field(description="Texts to tag; offsets in the answer are code points (Python str indices) into each one.")


class EntityOut(BaseModel):
    start: int
    end: int
    label: str
    text: str
    score: float


class EntitiesResponse(BaseModel):
    entities: list[list[EntityOut]] = Field(description="One list per input text, in input order.")


class ErrorResponse(BaseModel):
    detail: str
    limit: str | None = None
    value: int | None = None
    max: int | None = None


class ArnerJSONResponse(JSONResponse):
    """Compact UTF-8 JSON; falls back to `\\u` escapes when a string holds a lone surrogate."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def error(status: int, detail: str, **extra: Any) -> ArnerJSONResponse:
    return ArnerJSONResponse({"detail": detail, **extra}, status_code=status)


def too_large(what: str, limit: str, maximum: int, value: int | None, shown: str | None = None) -> dict:
    """The body of a 413: `{detail, limit, value, max}` (`value` left out when unknown; `shown` replaces it in `detail`)."""
    payload: dict[str, Any] = {"detail": f"{what}: {value if shown is None else shown} > {limit}={maximum}", "limit": limit}
    if value is not None:
        payload["value"] = value
    payload["max"] = maximum
    return payload


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Per-request limits. `max_chars` is the total over all texts, `max_text_chars` per text."""

    max_texts: int = DEFAULT_MAX_TEXTS
    max_chars: int = DEFAULT_MAX_CHARS
    max_text_chars: int | None = None  # None: same as max_chars
    max_body_bytes: int | None = None  # None: derived from max_chars and max_texts

    def __post_init__(self):
        for name in ("max_texts", "max_chars", "max_text_chars", "max_body_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_text_chars is None:
            object.__setattr__(self, "max_text_chars", self.max_chars)
        if self.max_body_bytes is None:
            # worst case JSON: every code point escaped as a surrogate pair "\\ud83d\\ude00" (12 bytes)
            object.__setattr__(self, "max_body_bytes", 12 * self.max_chars + 8 * self.max_texts + 4096)

    def check(self, texts: Sequence[str]) -> ArnerJSONResponse | None:
        """A 413 answer naming the first limit `texts` exceed, or None."""
        if len(texts) > self.max_texts:
            return error(413, **too_large("too many texts", "max_texts", self.max_texts, len(texts)))
        for i, t in enumerate(texts):
            if len(t) > self.max_text_chars:
                return error(413, **too_large(f"texts[{i}] has too many characters", "max_text_chars", self.max_text_chars, len(t)))
        total = sum(map(len, texts))
        if total > self.max_chars:
            return error(413, **too_large("too many characters in total", "max_chars", self.max_chars, total))
        return None

    def to_json(self) -> dict:
        return asdict(self)


class BodyGuardMiddleware:
    """Pure ASGI, for POSTs to `paths`: checks what FastAPI would read before it reads it.

    415 unless the Content-Type is JSON (none at all is taken as JSON); 413 when the body is over `max_bytes` (Content-Length
    first, then the bytes actually received, so chunked uploads are bounded too); 422 when the
    body is not UTF-8. The body is buffered and replayed to the app, which reads it whole anyway.
    """

    def __init__(self, app, max_bytes: int, paths: Sequence[str] = ("/v1/entities",)):
        self.app = app
        self.max_bytes = max_bytes
        self.paths = set(paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        if b"content-type" not in headers:  # no Content-Type at all: read the body as JSON
            scope = {**scope, "headers": [*scope.get("headers", []), (b"content-type", b"application/json")]}
        declared = None
        if b"content-length" in headers:
            try:
                declared = int(headers[b"content-length"])
            except ValueError:
                return await _send_json(send, 400, {"detail": "invalid Content-Length header"})
        ctype = headers.get(b"content-type", b"application/json").decode("latin-1").split(";")[0].strip().lower()
        if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
            await self._drain(receive, declared)
            return await _send_json(send, 415, {"detail": f"Content-Type must be application/json (got {ctype})"})
        if declared is not None and declared > self.max_bytes:
            await self._drain(receive, declared)
            return await _send_json(send, 413, self._too_large(declared))
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive, declared)
                return await _send_json(send, 413, self._too_large(declared))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            return await _send_json(
                send, 422, {"detail": f"invalid request body: not UTF-8 (byte {e.start}: {body[e.start : e.start + 1]!r})"}
            )
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _drain(self, receive, declared: int | None) -> None:
        """Read and drop the rest of a body that is at most a few times the limit, so the client,
        still sending, gets the 413 instead of a reset connection; a larger one is left unread
        (the connection is closed after the answer)."""
        budget = 2 * self.max_bytes + (1 << 20)
        if declared is not None and declared > budget:
            return
        seen = 0
        while seen <= budget:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    def _too_large(self, size: int | None) -> dict:
        got = f"{size} bytes" if size is not None else f"more than {self.max_bytes} bytes"
        return too_large("request body too large", "max_body_bytes", self.max_bytes, size, got)


async def _send_json(send, status: int, payload: dict) -> None:
    """A complete JSON answer; the connection is closed since the request body may be unread."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- micro-batching


class ServiceUnavailable(RuntimeError):
    """The batcher is stopping or its queue is full."""


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future
    enqueued: float
    batch_texts: int = field(default=0)


class MicroBatcher:
    """Merges concurrent `submit` calls into few `predict(texts)` calls run on one worker thread.

    The worker takes the oldest job, then every queued job up to `max_batch_texts` texts; when
    the previous batch merged several jobs (callers are arriving together) it also waits for more
    until `max_wait_ms` after the oldest job arrived, so a lone caller never waits and a job that
    already waited while the model was busy does not wait again. A job is never split; a job
    larger than `max_batch_texts` runs alone. A failing `predict` fails only the jobs of its batch.
    """

    def __init__(
        self,
        predict,
        max_batch_texts: int = DEFAULT_MAX_BATCH_TEXTS,
        max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ):
        if max_batch_texts < 1:
            raise ValueError(f"max_batch_texts must be >= 1, got {max_batch_texts}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self.predict = predict
        self.max_batch_texts = max_batch_texts
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.calls = 0  # predict calls made
        self.texts_done = 0
        self.requests_done = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._held: _Job | None = None  # taken from the queue but left for the next batch
        self._batch: list[_Job] = []  # the batch being gathered or run
        self._last_jobs = 0  # requests in the last batch
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._closing

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arner-model")
        self._closing = False
        self._task = asyncio.create_task(self._worker(), name="arner-batcher")

    async def run_in_worker(self, fn, *args):
        """Run `fn(*args)` on the model thread (used for warm-up)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, texts: list[str]) -> tuple[list, int]:
        """Results of `predict(texts)` and the number of texts in the merged call that produced them."""
        if not texts:
            return [], 0
        if not self.running or self._queue is None:
            raise ServiceUnavailable("the service is shutting down")
        if self._queue.qsize() >= self.max_queue:
            raise ServiceUnavailable(f"too many queued requests (max_queue={self.max_queue}); retry later")
        loop = asyncio.get_running_loop()
        job = _Job(texts, loop.create_future(), loop.time())
        self._queue.put_nowait(job)
        result = await job.future
        return result, job.batch_texts

    async def _next_job(self, timeout: float | None) -> _Job | None:
        if self._held is not None:
            job, self._held = self._held, None
            return job
        assert self._queue is not None
        if timeout is None:
            return await self._queue.get()
        if not self._queue.empty():
            return self._queue.get_nowait()
        if timeout <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _gather(self) -> list[_Job]:
        """The next batch; kept in `self._batch` so that `stop` can fail it if cancelled midway."""
        loop = asyncio.get_running_loop()
        first = await self._next_job(None)
        self._batch = [first]
        n = len(first.texts)
        # wait for company only when the last batch had some: a lone caller is not kept waiting
        deadline = first.enqueued + (self.max_wait if self._last_jobs > 1 else 0.0)
        while n < self.max_batch_texts:
            job = await self._next_job(deadline - loop.time())
            if job is None:
                break
            if n + len(job.texts) > self.max_batch_texts:
                self._held = job
                break
            self._batch.append(job)
            n += len(job.texts)
        return [j for j in self._batch if not j.future.done()]  # a caller that went away is skipped

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            if not jobs:
                continue
            texts = [t for j in jobs for t in j.texts]
            try:
                results = await loop.run_in_executor(self._executor, self.predict, texts)
                if len(results) != len(texts):
                    raise RuntimeError(f"predict returned {len(results)} results for {len(texts)} texts")
                i = 0
                for j in jobs:
                    j.batch_texts = len(texts)
                    if not j.future.done():
                        j.future.set_result(results[i : i + len(j.texts)])
                    i += len(j.texts)
            except Exception as e:  # noqa: BLE001 - routed to the callers of this batch; the worker goes on
                log.exception("predict failed on a batch of %d texts", len(texts))
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            finally:
                self._batch = []
                self._last_jobs = len(jobs)
            self.calls += 1
            self.texts_done += len(texts)
            self.requests_done += len(jobs)

    async def stop(self) -> None:
        """Stop the worker, fail whatever is still queued or gathered (503), and wait for the model thread."""
        self._closing = True
        pending = []
        if self._task is not None:
            self._task.cancel()
            pending = list(self._batch)  # what the worker held when it was cancelled
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._held is not None:
            pending.append(self._held)
        self._held = None
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for j in pending:
            if not j.future.done():
                j.future.set_exception(ServiceUnavailable("the service is shutting down"))
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
            self._executor = None

    def stats(self) -> dict:
        return {
            "max_batch_texts": self.max_batch_texts,
            "max_wait_ms": self.max_wait * 1000,
            "max_queue": self.max_queue,
            "predict_calls": self.calls,
            "requests": self.requests_done,
            "texts": self.texts_done,
            "queued": self._queue.qsize() if self._queue is not None else 0,
        }


# --------------------------------------------------------------------------- model info


def model_info(tagger, model_dir: Path | None = None) -> dict:
    """What `GET /v1/model` answers: labels, base model, max length, versions."""
    id2label = {int(k): v for k, v in tagger.model.config.id2label.items()}
    tags = [id2label[k] for k in sorted(id2label)]
    labels = sorted({t[2:] for t in tags if t[:2] in ("B-", "I-")})
    name = getattr(tagger.model.config, "_name_or_path", None)
    if model_dir is None and name and Path(name).is_dir():
        model_dir = Path(name)
    meta: dict = {}
    if model_dir is not None and (model_dir / "arner.json").is_file():
        try:
            meta = json.loads((model_dir / "arner.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
    config = meta.get("config") or {}
    base = config.get("model") or meta.get("base_model") or name
    return {
        "labels": labels,
        "tags": tags,
        "base_model": base,
        "max_length": tagger.max_length,
        "stride": getattr(tagger, "stride", None),
        "device": str(getattr(tagger, "device", "cpu")),
        "arner_version": arner.__version__,
        "trained_with": meta.get("versions"),
        "train_metrics": meta.get("metrics"),
    }


# --------------------------------------------------------------------------- the app


def _validation_message(errors: Sequence[dict]) -> str:
    parts = []
    for e in errors[:5]:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        where = ".".join(loc) if loc else "body"
        if not loc and e.get("type") == "missing":
            parts.append("empty body")
            continue
        if e.get("type") == "json_invalid":
            ctx = e.get("ctx") or {}
            pos = e.get("loc", ("body", "?"))[-1]
            parts.append(f"malformed JSON at position {pos}: {ctx.get('error', e.get('msg'))}")
            continue
        msg = e.get("msg", "invalid")
        if where.startswith("texts.") and loc[1:2] and loc[1].isdigit():
            where = f"texts[{loc[1]}]" + "".join(f".{x}" for x in loc[2:])
        parts.append(f"{where}: {msg}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid request body: " + "; ".join(parts) + more + ' (expected {"texts": [string, ...]})'


def create_app(
    tagger_or_model_dir,
    *,
    max_texts: int = DEFAULT_MAX_TEXTS,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_text_chars: int | None = None,
    max_body_bytes: int | None = None,
    max_batch_texts: int = DEFAULT_MAX_BATCH_TEXTS,
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    max_queue: int = DEFAULT_MAX_QUEUE,
    device: str = "auto",
    batch_size: int = 16,
    stride: int = 64,
    threads: int | None = None,
    warmup: bool = True,
    freeze_gc: bool = False,
) -> FastAPI:
    """The FastAPI app over a loaded `Tagger` (or anything with its `predict`, `max_length`,
    `model.config.id2label`) or a model folder / hub id loaded with `Tagger.from_pretrained`.

    `max_texts`, `max_chars` (total per request), `max_text_chars` (per text; default
    `max_chars`) and `max_body_bytes` (default derived) bound a request (413 above them);
    `max_batch_texts` and `max_wait_ms` shape micro-batching; `max_queue` queued requests at
    most (503 beyond). `device`, `batch_size` (windows per forward pass) and `stride` (overlap of
    the windows of a long text) apply when loading. `threads` sets torch's intra-op threads
    (process-wide; default: torch's, one per core; `run` uses `default_threads`).
    `warmup` runs the model once before serving; `freeze_gc` moves everything alive at startup
    out of the garbage collector's reach (`gc.freeze`, process-wide: what `run` does).
    """
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)
    limits = Limits(max_texts, max_chars, max_text_chars, max_body_bytes)  # bad settings fail before the model loads
    batcher = MicroBatcher(None, max_batch_texts, max_wait_ms, max_queue)
    if isinstance(tagger_or_model_dir, (str, Path)):
        from arner.inference import Tagger

        model_dir = Path(tagger_or_model_dir)
        tagger = Tagger.from_pretrained(tagger_or_model_dir, device=device, batch_size=batch_size, stride=stride)
    else:
        tagger, model_dir = tagger_or_model_dir, None
    batcher.predict = tagger.predict
    info = model_info(tagger, model_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        if warmup:
            try:
                await batcher.run_in_worker(tagger.predict, [WARMUP_TEXT])
            except Exception:  # noqa: BLE001 - the first real request will report it
                log.exception("warm-up prediction failed")
        if freeze_gc:  # torch and transformers leave a large heap: a full collection paused requests ~200 ms
            gc.collect()
            gc.freeze()
        log.info("arner %s serving %s (%s)", arner.__version__, info["base_model"], info["device"])
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="arner",
        version=arner.__version__,
        description="Arabic news NER (ACTOR, PLACE, DATE): entities with code-point offsets into each text.",
        lifespan=lifespan,
        default_response_class=ArnerJSONResponse,
    )
    app.state.tagger = tagger
    app.state.batcher = batcher
    app.state.limits = limits
    app.add_middleware(BodyGuardMiddleware, max_bytes=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        simple = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors[:20]]
        return ArnerJSONResponse({"detail": _validation_message(errors), "errors": simple}, status_code=422)

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable):
        return ArnerJSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.get("/healthz", responses={503: {"model": ErrorResponse}})
    async def healthz():
        """200 while the batching worker runs, 503 otherwise."""
        if not batcher.running:
            return error(503, "the batching worker is not running")
        return {"status": "ok", "batching": batcher.stats()}

    @app.get("/v1/model")
    async def model():
        """Labels, base model, max length, versions, limits, batching settings."""
        return {**info, "limits": limits.to_json(), "batching": {k: v for k, v in batcher.stats().items() if k.startswith("max_")}}

    @app.post(
        "/v1/entities",
        response_model=EntitiesResponse,
        responses={413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
    )
    async def entities(body: EntitiesRequest):
        """Entities per text: `{"entities": [[{start, end, label, text, score}, ...], ...]}`, offsets in code points."""
        too_big = limits.check(body.texts)
        if too_big is not None:
            return too_big
        t0 = time.perf_counter()
        try:
            results, merged = await batcher.submit(body.texts)
        except ServiceUnavailable:
            raise
        except Exception as e:  # noqa: BLE001
            return error(500, f"prediction failed: {type(e).__name__}: {e}")
        payload = {"entities": [[e.to_json() for e in ents] for ents in results]}
        # how many texts the merged model call held, and the time spent queued + in the model
        headers = {"X-Arner-Batch-Texts": str(merged), "Server-Timing": f"model;dur={(time.perf_counter() - t0) * 1000:.2f}"}
        return ArnerJSONResponse(payload, headers=headers)

    return app


def default_threads(device: str = "auto") -> int | None:
    """torch threads for a CPU server: one core is left to the event loop (HTTP, JSON), the rest
    go to the model; None (torch's default) when the model runs on a GPU.

    Measured on 2 cores (reports/serve): a model thread per core is ~20% faster on an otherwise
    idle machine, but 2.7x slower beside one busy process (OpenMP threads waiting for a core),
    while one model thread keeps its throughput."""
    from arner.inference import resolve_device

    if resolve_device(device).type == "cuda":
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


def run(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    access_log: bool = True,
    device: str = "auto",
    threads: int | None = None,
    **app_kwargs,
) -> None:
    """Load the model and serve it with uvicorn until interrupted (SIGINT/SIGTERM: graceful).

    `threads` defaults to `default_threads(device)` (cores - 1 on CPU).
    """
    import uvicorn

    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise ValueError(f"log level must be one of critical, error, warning, info, debug, trace; got {log_level!r}")
    threads = threads if threads is not None else default_threads(device)
    app = create_app(model_dir, device=device, threads=threads, freeze_gc=True, **app_kwargs)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log, timeout_graceful_shutdown=30)
