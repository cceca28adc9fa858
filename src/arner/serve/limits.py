"""Request limits: the body guard that runs before the app reads a body, and the per-text checks after.

Too large is 413, a Content-Type other than JSON 415, a body that does not arrive in time 408,
each with a JSON `detail`; nothing over a limit reaches the model. What the body holds is read
and checked in `arner.serve.body` (422).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import anyio

from arner.serve.schemas import ArnerJSONResponse, error, too_large
from arner.serve.settings import ServeSettings


@dataclass(frozen=True)
class Limits:
    """Per-request limits, all resolved. `max_chars` is the total over all texts, `max_text_chars` per text."""

    max_texts: int
    max_chars: int
    max_text_chars: int
    max_body_bytes: int

    @classmethod
    def of(cls, settings: ServeSettings) -> Limits:
        """The limits `settings` give (already validated there), with their derived defaults filled in."""
        max_body_bytes = settings.max_body_bytes
        if max_body_bytes is None:
            # worst case JSON: every code point escaped as a surrogate pair "\\ud83d\\ude00" (12 bytes)
            max_body_bytes = 12 * settings.max_chars + 8 * settings.max_texts + 4096
        max_text_chars = settings.max_chars if settings.max_text_chars is None else settings.max_text_chars
        return cls(settings.max_texts, settings.max_chars, max_text_chars, max_body_bytes)

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


@dataclass(frozen=True)
class _Overflow:
    """More than `max_bytes` of body arrived; `more`: the client was still sending."""

    more: bool


class BodyGuardMiddleware:
    """Pure ASGI, for POSTs to `paths`: checks what the app would read before it reads it.

    415 unless the Content-Type is JSON (none at all is taken as JSON); 413 when the body is over
    `max_bytes` (Content-Length first, then the bytes actually received, so chunked uploads are
    bounded too); 408 when the whole body has not arrived `timeout_s` after the headers (a client
    that declared more than it sends would otherwise hold its connection forever). The body is
    buffered and replayed to the app, which reads it whole anyway. Every answer here closes the
    connection, since the rest of the body may be unread.
    """

    def __init__(self, app, max_bytes: int, timeout_s: float, paths: Sequence[str] = ("/v1/entities",), limit: str = "max_body_bytes"):
        """`limit`: the setting a 413 names."""
        self.app = app
        self.max_bytes = max_bytes
        self.limit = limit
        self.timeout_s = timeout_s
        self.paths = set(paths)

    async def __call__(self, scope, receive, send) -> None:
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
                return await send_json(send, 400, {"detail": "invalid Content-Length header"})
        ctype = headers.get(b"content-type", b"application/json").decode("latin-1").split(";")[0].strip().lower()
        if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
            await self._drain(receive, declared)
            return await send_json(send, 415, {"detail": f"Content-Type must be application/json (got {ctype})"})
        if declared is not None and declared > self.max_bytes:
            await self._drain(receive, declared)
            return await send_json(send, 413, self._too_large(declared))
        body: bytes | _Overflow | None = None
        with anyio.move_on_after(self.timeout_s) as deadline:  # nothing is sent under it: a send is never cut in half
            body = await self._read(receive)
        if deadline.cancelled_caught:
            detail = f"request body not received within {self.timeout_s:g} s (body_timeout_s)"
            return await send_json(send, 408, {"detail": detail, "limit": "body_timeout_s"})
        if isinstance(body, _Overflow):
            if body.more:
                await self._drain(receive, declared)
            return await send_json(send, 413, self._too_large(declared))
        if body is None:  # the client went away
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive) -> bytes | _Overflow | None:
        """The whole body; `_Overflow` once more than `max_bytes` arrived; None if the client disconnected."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return _Overflow(more=message.get("more_body", False))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _drain(self, receive, declared: int | None) -> None:
        """Read and drop the rest of a body that is at most a few times the limit, for `timeout_s`
        at most, so the client, still sending, gets the answer instead of a reset connection; a
        larger or slower one is left unread (the connection is closed after the answer)."""
        budget = 2 * self.max_bytes + (1 << 20)
        if declared is not None and declared > budget:
            return
        seen = 0
        with anyio.move_on_after(self.timeout_s):
            while seen <= budget:
                message = await receive()
                if message["type"] != "http.request":
                    return
                seen += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return

    def _too_large(self, size: int | None) -> dict:
        got = f"{size} bytes" if size is not None else f"more than {self.max_bytes} bytes"
        return too_large("request body too large", self.limit, self.max_bytes, size, got)


async def send_json(send, status: int, payload: dict) -> None:
    """A complete JSON answer; the connection is closed since the request body may be unread."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
