"""Cancelling work whose client has gone: `unless_disconnected`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def unless_disconnected(work: Awaitable[T], request: Request) -> T:
    """`await work`, unless the client disconnects first: then `work` is cancelled and `ClientGone` raised.

    Neither Starlette nor uvicorn cancels a handler whose client left (uvicorn only says so through
    `receive`), so without this a queue of abandoned requests was computed to the last one while
    the requests behind them waited. Cancelling `batcher.submit` takes its job out of the queue."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})  # the job is marked before the next request is handled
    if task.cancelled():
        raise ClientGone
    return task.result()


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects. The body has been read, and then an ASGI server's
    `receive` blocks until the connection closes (or the answer is sent)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
