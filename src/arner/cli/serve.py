"""`arner serve`: the HTTP service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from arner.cli.errors import handle_errors
from arner.cli.options import BATCH_SIZE, DEFAULT_BATCH_SIZE, DEFAULT_STRIDE, DEVICE, STRIDE
from arner.serve.defaults import DEFAULT_MAX_BATCH_TEXTS, DEFAULT_MAX_CHARS, DEFAULT_MAX_TEXTS, DEFAULT_MAX_WAIT_MS


@handle_errors
def serve(
    model: Annotated[Path, typer.Option(help="Model folder written by `arner train` (or any token classifier).")],
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_texts: Annotated[int, typer.Option(help="Most texts per request (413 above).")] = DEFAULT_MAX_TEXTS,
    max_chars: Annotated[int, typer.Option(help="Most characters per request, all texts together (413 above).")] = DEFAULT_MAX_CHARS,
    max_text_chars: Annotated[Optional[int], typer.Option(help="Most characters per text (413 above); default --max-chars.")] = None,
    batch_size: Annotated[int, BATCH_SIZE] = DEFAULT_BATCH_SIZE,
    stride: Annotated[int, STRIDE] = DEFAULT_STRIDE,
    max_batch_texts: Annotated[
        int, typer.Option(help="Most texts merged from concurrent requests into one model call.")
    ] = DEFAULT_MAX_BATCH_TEXTS,
    max_wait_ms: Annotated[
        float, typer.Option(help="Under concurrent load, longest a request waits for others to merge with.")
    ] = DEFAULT_MAX_WAIT_MS,
    device: Annotated[str, DEVICE] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads for the model (default on CPU: cores - 1, at least 1).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level: debug, info, warning, error.")] = "info",
) -> None:
    """Serve the model over HTTP: POST /v1/entities, GET /v1/model, GET /healthz (Ctrl-C stops it cleanly)."""
    from arner.serve import run as serve_run

    serve_run(
        model,
        host,
        port,
        log_level=log_level,
        max_texts=max_texts,
        max_chars=max_chars,
        max_text_chars=max_text_chars,
        batch_size=batch_size,
        stride=stride,
        max_batch_texts=max_batch_texts,
        max_wait_ms=max_wait_ms,
        device=device,
        threads=threads,
    )
