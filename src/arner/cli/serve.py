"""`arner serve`: the HTTP service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from arner.cli.errors import handle_errors
from arner.cli.options import BATCH_SIZE, DEVICE, PRECISION, STRIDE
from arner.serve.settings import ServeSettings  # pydantic only: the CLI starts without FastAPI or torch

default = ServeSettings.default  # every default lives on ServeSettings, shown here in --help


@handle_errors
def serve(
    model: Annotated[Path, typer.Option(help="Model folder written by `arner train` (or any token classifier).")],
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = default("host"),
    port: Annotated[int, typer.Option(help="TCP port.")] = default("port"),
    max_texts: Annotated[int, typer.Option(help="Most texts per request (413 above).")] = default("max_texts"),
    max_chars: Annotated[int, typer.Option(help="Most characters per request, all texts together (413 above).")] = default("max_chars"),
    max_text_chars: Annotated[Optional[int], typer.Option(help="Most characters per text (413 above); default --max-chars.")] = default(
        "max_text_chars"
    ),
    batch_size: Annotated[int, BATCH_SIZE] = default("batch_size"),
    stride: Annotated[int, STRIDE] = default("stride"),
    precision: Annotated[str, PRECISION] = default("precision"),
    threshold: Annotated[
        float, typer.Option(help='Leave out entities scored below this (0 to 1); a request\'s own "threshold" overrides it.')
    ] = default("threshold"),
    max_batch_texts: Annotated[int, typer.Option(help="Most texts merged from concurrent requests into one model call.")] = default(
        "max_batch_texts"
    ),
    max_wait_ms: Annotated[float, typer.Option(help="Under concurrent load, longest a request waits for others to merge with.")] = default(
        "max_wait_ms"
    ),
    device: Annotated[str, DEVICE] = default("device"),
    threads: Annotated[
        Optional[int], typer.Option(help="torch CPU threads for the model (default on CPU: cores - 1, at least 1).")
    ] = default("threads"),
    log_level: Annotated[str, typer.Option(help="uvicorn log level: debug, info, warning, error.")] = default("log_level"),
) -> None:
    """Serve the model over HTTP: POST /v1/entities, GET /v1/model, GET /healthz (Ctrl-C stops it cleanly)."""
    # every setting is checked here, before the model loads: a bad one is one `error:` line, exit 2
    options = dict(locals())  # the parameters, named as ServeSettings names its fields
    settings = ServeSettings(**{k: options[k] for k in options if k != "model"})
    from arner.serve import run

    run(model, settings)
