"""`run`: load a model and serve it with uvicorn in this process until interrupted.

uvicorn bounds an idle keep-alive connection (`timeout_keep_alive`) but not one that is slow to
send a request: it waits forever for the rest of a request's headers, and a connection that
sends nothing at all is never closed. `HeaderDeadline` adds that bound; the body has its own in
`arner.serve.limits`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from arner.serve.settings import ServeSettings


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, which closes a connection that has not sent a whole request line and
    headers `header_timeout` s after it opened or after its last answer (keep-alive)."""

    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        # uvicorn makes a new cycle when a request's headers are complete: the same cycle at the
        # deadline means no request has begun since
        self._deadline = self.loop.call_later(self.header_timeout, self._expire, self.cycle)

    def _expire(self, cycle: Any) -> None:
        if self.cycle is cycle and not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run` (or `uvicorn.Config`) that `settings` give."""
    protocol = type("HeaderDeadline", (HeaderDeadline,), {"header_timeout": settings.header_timeout_s})
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "http": protocol,
        "timeout_keep_alive": settings.keep_alive_s,
        "timeout_graceful_shutdown": 30,
    }


def run(model_dir: str | Path, settings: ServeSettings | None = None) -> None:
    """Serve `model_dir` with `settings` (default: `ServeSettings()`) until SIGINT/SIGTERM, which
    let the requests in flight finish (30 s at most).

    The device is checked before the model loads. Unset `threads` become `default_threads`
    (cores - 1 on CPU) and an unset `freeze_gc` is on: this process is the server.
    """
    import uvicorn

    from arner.inference import resolve_device
    from arner.serve.app import create_app
    from arner.serve.device import default_threads

    settings = settings or ServeSettings()
    device = resolve_device(settings.device)
    chosen = {
        "threads": default_threads(device) if settings.threads is None else settings.threads,
        "freeze_gc": True if settings.freeze_gc is None else settings.freeze_gc,
    }
    settings = settings.model_copy(update=chosen)
    app = create_app(model_dir, settings)
    uvicorn.run(app, **uvicorn_options(settings))
