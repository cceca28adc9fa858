"""The FastAPI app: `POST /v1/entities`, `GET /v1/model`, `GET /healthz`, `GET /openapi.json`, a page at `GET /`,
and Label Studio's ML backend protocol under `/labelstudio` (`arner.serve.labelstudio`).

A request is checked against the limits (`arner.serve.limits`) and read (`arner.serve.body`)
before anything reaches the model; requests that pass are merged with concurrent ones by a
`MicroBatcher`, and dropped from its queue if their client disconnects first.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

import arner
from arner.core.formats import labelstudio
from arner.core.results import above, pipeline_dicts
from arner.serve.batcher import MicroBatcher, ServiceUnavailable
from arner.serve.body import parse_entities_request
from arner.serve.disconnect import ClientGone, unless_disconnected
from arner.serve.labelstudio import BODY_PATHS as LS_PATHS
from arner.serve.labelstudio import add_labelstudio_routes
from arner.serve.limits import BodyGuardMiddleware, Limits
from arner.serve.page import headers as page_headers
from arner.serve.page import index_html
from arner.serve.schemas import ArnerJSONResponse, EntitiesRequest, EntitiesResponse, ErrorResponse, error, validation_message
from arner.serve.settings import ServeSettings

log = logging.getLogger("arner.serve")

WARMUP_TEXT = "التقى بوتين وويتكوف في موسكو يوم الجمعة."
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (408, 413, 415, 422, 503)}
# the body is read by `arner.serve.body`, not by FastAPI, so its schema is given here for /openapi.json
REQUEST_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": EntitiesRequest.model_json_schema()}}}}


def model_info(tagger, model_dir: Path | None = None) -> dict:
    """What `GET /v1/model` answers: labels, tags, the model and its base model by name, max length,
    stride, device, precision, arner's version and the metrics of training.

    Any client may ask, so nothing that describes the host: a local model is named by its folder's
    name, not its path, and the library versions of training (in `arner.json`) are left out."""
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
    return {
        "model": public_name(str(model_dir) if model_dir is not None else name),
        # how Label Studio predictions name this model (and `arner predict --format labelstudio`)
        "model_version": labelstudio.model_version(model_dir) if model_dir is not None else public_name(name) or labelstudio.MODEL_VERSION,
        "labels": labels,
        "tags": tags,
        "base_model": public_name(config.get("model") or meta.get("base_model") or name),
        "max_length": tagger.max_length,
        "stride": getattr(tagger, "stride", None),
        "device": str(getattr(tagger, "device", "cpu")),
        "precision": getattr(tagger, "precision", None),
        "arner_version": arner.__version__,
        "train_metrics": meta.get("metrics"),
    }


def public_name(name: str | None) -> str | None:
    """A model as a client may see it: a hub id (`owner/name`) whole, a local path by its last part."""
    if not name:
        return name
    path = Path(name)
    try:
        local = path.is_absolute() or path.exists() or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1
    except OSError:  # not even a valid path here (too long): not a local one
        local = False
    return (path.name or name) if local else name


def create_app(tagger_or_model_dir: Any, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app over a loaded `Tagger` (or anything with its `predict`, `max_length`,
    `model.config.id2label`) or a model folder / hub id loaded with `Tagger.from_pretrained`.

    `settings` (default: `ServeSettings()`) bound a request and shape micro-batching; its
    `device`, `batch_size` and `stride` apply only when loading; `threads` sets torch's threads
    (process-wide; None leaves torch's default here, `run` picks cores - 1); `freeze_gc` is off
    unless set (`run` turns it on). A bad device fails before the model loads.
    """
    if settings is not None and not isinstance(settings, ServeSettings):  # e.g. the keyword arguments of old: one clear error
        raise TypeError(f"settings must be a ServeSettings, got {type(settings).__name__}")
    settings = settings or ServeSettings()
    tagger, model_dir = _load(tagger_or_model_dir, settings)
    limits = Limits.of(settings)
    batcher = MicroBatcher(tagger.predict, settings)
    info = model_info(tagger, model_dir)
    app = FastAPI(
        title="arner",
        version=arner.__version__,
        description="Arabic news NER (ACTOR, PLACE, DATE): entities with code-point offsets into each text.",
        lifespan=_lifespan(batcher, tagger.predict, info, settings),
        default_response_class=ArnerJSONResponse,
        # their pages load scripts from a CDN (FastAPI ships none), so they were blank offline
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.tagger = tagger
    app.state.batcher = batcher
    app.state.limits = limits
    app.add_middleware(BodyGuardMiddleware, max_bytes=limits.max_body_bytes, timeout_s=settings.body_timeout_s)
    # Label Studio sends a whole selection of tasks in one request, with their annotations: a limit of its own
    ls_limit = {"max_bytes": settings.labelstudio_max_body_bytes, "limit": "labelstudio_max_body_bytes"}
    app.add_middleware(BodyGuardMiddleware, **ls_limit, timeout_s=settings.body_timeout_s, paths=LS_PATHS)
    _add_error_handlers(app)
    _add_routes(app, batcher, limits, info, settings)
    add_labelstudio_routes(app, batcher, limits, info, settings)
    return app


def _load(tagger_or_model_dir: Any, settings: ServeSettings) -> tuple[Any, Path | None]:
    """The tagger, and the folder it came from when loaded here (for its `arner.json`)."""
    if settings.threads is not None:  # process-wide: torch has one intra-op thread pool
        import torch

        torch.set_num_threads(settings.threads)
    if not isinstance(tagger_or_model_dir, (str, Path)):
        return tagger_or_model_dir, None
    from arner.inference import Tagger, resolve_device

    resolve_device(settings.device)  # a device this machine lacks fails here, before Tagger touches the model folder
    tagger = Tagger.from_pretrained(
        tagger_or_model_dir, device=settings.device, batch_size=settings.batch_size, stride=settings.stride, precision=settings.precision
    )
    return tagger, Path(tagger_or_model_dir)


def _lifespan(batcher: MicroBatcher, predict: Callable, info: dict, settings: ServeSettings):
    """Start the batcher (and warm the model up on its thread) before serving; stop it after."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        if settings.warmup:
            try:
                await batcher.run_in_worker(predict, [WARMUP_TEXT])
            except Exception:  # noqa: BLE001 - the first real request will report it
                log.exception("warm-up prediction failed")
        if settings.freeze_gc:  # torch and transformers leave a large heap: a full collection paused requests ~200 ms
            gc.collect()
            gc.freeze()
        log.info("arner %s serving %s (%s)", arner.__version__, info["base_model"], info["device"])
        try:
            yield
        finally:
            await batcher.stop()

    return lifespan


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> ArnerJSONResponse:
        errors = exc.errors()
        simple = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors[:20]]
        return ArnerJSONResponse({"detail": validation_message(errors), "errors": simple}, status_code=422)

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable) -> ArnerJSONResponse:
        return ArnerJSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})


def answer(results: list[list], request: EntitiesRequest, settings: ServeSettings) -> dict:
    """The body of a 200: each text's entities at or above the request's threshold (else the server's), in the form asked."""
    threshold = settings.threshold if request.threshold is None else request.threshold
    kept = [above(ents, threshold) for ents in results]
    if request.format == "pipeline":
        return {"entities": [pipeline_dicts(ents) for ents in kept]}
    return {"entities": [[e.to_json() for e in ents] for ents in kept]}


def _add_routes(app: FastAPI, batcher: MicroBatcher, limits: Limits, info: dict, settings: ServeSettings) -> None:
    index = index_html(info)  # static: its script calls POST /v1/entities

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        """A page to paste Arabic text into and see its entities highlighted (`/?text=...` fills it and runs)."""
        return HTMLResponse(index, headers=page_headers())

    @app.get("/healthz", responses={503: {"model": ErrorResponse}})
    async def healthz():
        """200 while the batching worker runs, 503 otherwise."""
        if not batcher.running:
            return error(503, "the batching worker is not running")
        return {"status": "ok", "batching": batcher.stats()}

    @app.get("/v1/model")
    async def model():
        """Labels, tags, model names, max length, stride, device, arner's version, training metrics, limits, batching settings,
        the default score threshold."""
        batching = {k: v for k, v in batcher.stats().items() if k.startswith("max_")}
        return {**info, "limits": limits.to_json(), "batching": batching, "threshold": settings.threshold}

    @app.post("/v1/entities", response_model=EntitiesResponse, responses=ERRORS, openapi_extra=REQUEST_BODY)
    async def entities(request: Request):
        """Entities per text: `{"entities": [[{start, end, label, text, score}, ...], ...]}`, offsets in code points
        (`"format": "pipeline"`: the dicts of transformers' pipeline; `"threshold"`: leave out entities scored below it)."""
        body = parse_entities_request(await request.body())  # a RequestValidationError (422) when malformed
        too_big = limits.check(body.texts)
        if too_big is not None:
            return too_big
        t0 = time.perf_counter()
        try:
            results, merged = await unless_disconnected(batcher.submit(body.texts), request)
        except ClientGone:  # nobody reads this answer; the job never reached the model
            return error(499, "the client closed the connection")
        except ServiceUnavailable:
            raise
        except Exception as e:  # noqa: BLE001
            return error(500, f"prediction failed: {type(e).__name__}: {e}")
        payload = answer(results, body, settings)
        # how many texts the merged model call held, and the time spent queued + in the model
        headers = {"X-Arner-Batch-Texts": str(merged), "Server-Timing": f"model;dur={(time.perf_counter() - t0) * 1000:.2f}"}
        return ArnerJSONResponse(payload, headers=headers)
