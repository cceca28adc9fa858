"""What goes over the wire: request and response bodies, the JSON encoding, and error answers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field


class EntitiesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    texts: list[str] = Field(description="Texts to tag; offsets in the answer are code points (Python str indices) into each one.")
    threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Leave out entities scored below this (0 to 1); default: the server's --threshold.",
    )
    format: Literal["entities", "pipeline"] = Field(
        "entities",
        description="entities: {start, end, label, text, score}; pipeline: {entity_group, score, word, start, end}, "
        'as transformers.pipeline("token-classification", aggregation_strategy=...) returns them.',
    )


class EntityOut(BaseModel):
    start: int
    end: int
    label: str
    text: str
    score: float


class PipelineEntityOut(BaseModel):
    entity_group: str
    score: float
    word: str
    start: int
    end: int


class EntitiesResponse(BaseModel):
    entities: list[list[EntityOut]] | list[list[PipelineEntityOut]] = Field(
        description='One list per input text, in input order; the pipeline\'s dicts with "format": "pipeline".'
    )


class ErrorResponse(BaseModel):
    detail: str = Field(description="One line saying what is wrong.")
    limit: str | None = Field(None, description="The setting a 413 or 408 is about.")
    value: int | None = None
    max: int | None = None
    errors: list[dict] | None = Field(None, description="422: each problem of the body, {loc, msg, type}.")


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


EXPECTED = '{"texts": [string, ...]}, optionally "threshold": 0 to 1, "format": "entities" or "pipeline"'
# errors of the body as a whole (`arner.serve.body`), whose `msg` is the whole clause
BODY_ERRORS = frozenset({"body_missing", "utf8_invalid", "json_too_deep", "json_invalid"})


def validation_message(errors: Sequence[dict], expected: str = EXPECTED) -> str:
    """The `detail` of a 422: the errors on the body, one short clause each (five at most)."""
    parts = []
    for e in errors[:5]:
        msg = e.get("msg", "invalid")
        if e.get("type") in BODY_ERRORS:
            parts.append(msg)
            continue
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        where = ".".join(loc) if loc else "body"
        if where.startswith("texts.") and loc[1:2] and loc[1].isdigit():
            where = f"texts[{loc[1]}]" + "".join(f".{x}" for x in loc[2:])
        parts.append(f"{where}: {msg}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid request body: " + "; ".join(parts) + more + f" (expected {expected})"
