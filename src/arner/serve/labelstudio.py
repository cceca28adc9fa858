"""Label Studio's ML backend protocol under `/labelstudio`: a project connected to
`http://HOST:PORT/labelstudio` (Settings, Model) gets the model's entities, with their scores, as
pre-annotations of its tasks.

Label Studio calls `GET /health` and `POST /setup` when the backend is connected and before each
batch of predictions, `POST /predict` with tasks and the project's labeling config, and `POST
/webhook` on every project event. Results use the names the project's config gives (`from_name`,
`to_name`, the data key of its `<Text>`), so any project whose labels are the model's works, not
only one made with annotations/labelstudio.xml. Label Studio shows no error body, only "422 Client
Error ...", and points the user at the backend's console: every refusal is logged there, one line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from arner.core.formats.labelstudio import LabelingConfig, parse_config, prediction
from arner.core.results import above
from arner.serve.batcher import MicroBatcher, ServiceUnavailable
from arner.serve.body import load_json
from arner.serve.disconnect import ClientGone, unless_disconnected
from arner.serve.limits import Limits
from arner.serve.schemas import ArnerJSONResponse, error, validation_message
from arner.serve.settings import ServeSettings

log = logging.getLogger("arner.serve")

PREFIX = "/labelstudio"
BODY_PATHS = tuple(f"{PREFIX}/{name}" for name in ("predict", "setup", "webhook"))
EXPECTED = '{"tasks": [{"id": ..., "data": {"text": string}}, ...], "label_config": XML}'
MODEL_CLASS = "arner"


class Refused(Exception):
    """A request that gets no prediction: the HTTP status and one line saying why."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def labeling_config(xml: object, model_labels: Sequence[str]) -> LabelingConfig:
    """The config Label Studio sent (none: annotations/labelstudio.xml's names), checked against the
    model: a label the project offers and the model cannot predict would never be pre-annotated."""
    if xml is None or xml == "":
        return LabelingConfig()
    if not isinstance(xml, str):
        raise Refused(422, f"the labeling config must be a string of XML, got {type(xml).__name__}")
    try:
        config = parse_config(xml)
    except ValueError as e:
        raise Refused(422, str(e)) from None
    missing = [label for label in config.labels or () if label not in model_labels]
    if missing:
        raise Refused(
            422,
            f"the labeling config's label(s) {', '.join(map(repr, missing))} are not labels of this model "
            f"({', '.join(model_labels)}): remove them or serve a model trained with them",
        )
    return config


def task_texts(tasks: object, config: LabelingConfig, limits: Limits) -> list[str]:
    """Each task's text, read from `data[config.data_key]`; a task without one, or with one over
    `max_text_chars`, refuses the request (Label Studio matches results to tasks by position)."""
    if not isinstance(tasks, list):
        raise Refused(422, f"'tasks' must be a list of tasks, got {type(tasks).__name__}")
    texts = []
    for n, task in enumerate(tasks):
        name = f"task {task['id']}" if isinstance(task, dict) and "id" in task else f"tasks[{n}]"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict):
            raise Refused(422, f"{name} has no 'data' object")
        text = data.get(config.data_key)
        if not isinstance(text, str):
            keys = ", ".join(map(repr, list(data)[:8])) or "no keys"
            raise Refused(
                422, f"{name}: data has no text under {config.data_key!r} (the <Text> object's ${config.data_key}); it has {keys}"
            )
        if len(text) > limits.max_text_chars:
            raise Refused(413, f"{name}: its text has {len(text)} characters > max_text_chars={limits.max_text_chars}")
        texts.append(text)
    return texts


def chunks(texts: list[str], limits: Limits) -> list[list[str]]:
    """`texts` in order, cut into runs of at most `max_texts` texts and `max_chars` characters (a
    longer text alone), so that a large selection is tagged as a series of ordinary requests."""
    out: list[list[str]] = []
    chars = 0
    for text in texts:
        if not out or len(out[-1]) == limits.max_texts or chars + len(text) > limits.max_chars:
            out.append([])
            chars = 0
        out[-1].append(text)
        chars += len(text)
    return out


async def tag(texts: list[str], batcher: MicroBatcher, limits: Limits) -> list[list]:
    """The entities of every text, one chunk at a time through the batcher, so `/v1/entities`
    requests that arrive meanwhile are served between the chunks."""
    results: list[list] = []
    for chunk in chunks(texts, limits):
        found, _ = await batcher.submit(chunk)
        results += found
    return results


def predictions(entities: list[list], config: LabelingConfig, version: str, threshold: float) -> list[dict]:
    """Label Studio's `results`: one prediction per task, in task order; entities below `threshold`,
    or of a label the project does not offer, left out."""
    out = []
    for ents in entities:
        kept = [e for e in above(ents, threshold) if config.labels is None or e.label in config.labels]
        out.append(prediction([e.span() for e in kept], [e.score for e in kept], config, version))
    return out


def refuse(request: Request, status: int, detail: str) -> ArnerJSONResponse:
    log.warning("Label Studio %s refused (%d): %s", request.url.path, status, detail)
    return error(status, detail)


async def read_body(request: Request) -> dict:
    """The JSON object of a Label Studio request, else `Refused` (422)."""
    try:
        data = load_json(await request.body())
    except RequestValidationError as e:
        raise Refused(422, validation_message(e.errors(), EXPECTED)) from None
    if not isinstance(data, dict):
        raise Refused(422, f"the request body must be a JSON object, got {type(data).__name__} (expected {EXPECTED})")
    return data


def add_labelstudio_routes(app: FastAPI, batcher: MicroBatcher, limits: Limits, info: dict, settings: ServeSettings) -> None:
    """`/labelstudio/{health,setup,predict,webhook,versions}` on `app`; `info` is `GET /v1/model`'s (labels, model_version)."""
    version, labels = info["model_version"], info["labels"]

    @app.get(f"{PREFIX}/health")
    @app.get(f"{PREFIX}/", include_in_schema=False)  # Label Studio's SDK answers its health check at the root too
    async def health():
        """Label Studio's health check: `{"status": "UP"}` while the model is served, else 503."""
        if not batcher.running:
            return ArnerJSONResponse({"status": "DOWN", "detail": "the batching worker is not running"}, status_code=503)
        return {"status": "UP", "model_class": MODEL_CLASS, "model_version": version}

    @app.post(f"{PREFIX}/setup")
    async def setup(request: Request):
        """Connecting a project: its labeling config (`schema`) is checked against the model; answers the model version."""
        try:
            labeling_config((await read_body(request)).get("schema"), labels)
        except Refused as e:
            return refuse(request, e.status, e.detail)
        return {"model_version": version}

    @app.post(f"{PREFIX}/predict")
    async def predict(request: Request):
        """`{"results": [prediction, ...]}`, one per task in order; each a `labels` result per entity with its score."""
        try:
            body = await read_body(request)
            config = labeling_config(body.get("label_config"), labels)
            texts = task_texts(body.get("tasks"), config, limits)
        except Refused as e:
            return refuse(request, e.status, e.detail)
        try:
            entities = await unless_disconnected(tag(texts, batcher, limits), request)
        except ClientGone:
            return error(499, "the client closed the connection")
        except ServiceUnavailable:
            raise
        except Exception as e:  # noqa: BLE001
            return refuse(request, 500, f"prediction failed: {type(e).__name__}: {e}")
        return {"results": predictions(entities, config, version, settings.threshold), "model_version": version}

    @app.post(f"{PREFIX}/webhook")
    async def webhook(request: Request):
        """Project events. arner does not train from Label Studio: every event is acknowledged and ignored."""
        try:
            action = (await read_body(request)).get("action")
        except Refused as e:
            return refuse(request, e.status, e.detail)
        if action == "START_TRAINING":
            log.warning("Label Studio asked to train: export the annotations, then `arner annotations import` and `arner train`")
        return {"status": "ok", "detail": "arner does not train from Label Studio; events are ignored"}

    @app.get(f"{PREFIX}/versions")
    async def versions():
        """The model versions this backend serves: the one it has."""
        return {"versions": [version]}
