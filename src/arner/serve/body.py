"""Reading the body of `POST /v1/entities`: bytes to an `EntitiesRequest`, every failure a 422.

Parsed here rather than by FastAPI, whose body reading answers 400 ("There was an error parsing
the body") to whatever its JSON parser raises besides a syntax error: a nesting deep enough to
exhaust the recursion limit, an integer of more than 4,300 digits. Every failure is a
`RequestValidationError`, so one handler words them all (`schemas.validation_message`).
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from arner.serve.schemas import EntitiesRequest

# deepest JSON nesting accepted; a request needs 2 ({"texts": [...]}), so this only bounds the parser's work
MAX_DEPTH = 64
# a JSON string, or an unterminated one up to the end: since the closing quote is optional the match
# never fails once begun, so the scan is linear (a pattern that could fail would retry from every quote)
_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
# opening brackets to +1, closing ones to -1 (as signed bytes)
_STEPS = bytes.maketrans(b"[]{}", bytes([1, 255, 1, 255]))


def parse_entities_request(raw: bytes) -> EntitiesRequest:
    """The request in `raw`, or a `RequestValidationError` saying what is wrong with it."""
    data = load_json(raw)
    try:
        return EntitiesRequest.model_validate(data)
    except ValidationError as e:
        errors = [{**err, "loc": ("body", *err.get("loc", ()))} for err in e.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def load_json(raw: bytes) -> Any:
    """The JSON value in `raw`: UTF-8, nested at most `MAX_DEPTH` deep, else a `RequestValidationError`."""
    if not raw:
        raise _invalid("body_missing", "empty body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _invalid("utf8_invalid", f"not UTF-8 (byte {e.start}: {raw[e.start : e.start + 1]!r})") from None
    if nested_deeper_than(raw, MAX_DEPTH):  # before parsing: the parser recurses once per level
        raise _invalid("json_too_deep", f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _invalid("json_invalid", f"malformed JSON at position {e.pos}: {e.msg}", e.pos) from None
    except (ValueError, RecursionError) as e:  # an integer of more than 4,300 digits (sys.set_int_max_str_digits)
        raise _invalid("json_invalid", f"unreadable JSON: {str(e).split(';')[0]}") from None
    return data


def nested_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the arrays and objects of the JSON text `raw` nest more than `limit` deep (brackets
    in strings not counted); linear in `raw`, without recursion."""
    if raw.count(b"[") + raw.count(b"{") <= limit:  # no deeper than it has brackets: any real request
        return False
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(array("b", brackets.translate(_STEPS))), default=0) > limit


def _invalid(kind: str, message: str, position: int | None = None) -> RequestValidationError:
    """A body-level error: `message` is the whole clause after "invalid request body: "."""
    loc = ("body",) if position is None else ("body", position)
    return RequestValidationError([{"type": kind, "loc": loc, "msg": message}])
