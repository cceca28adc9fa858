"""Every setting of `arner serve`, its default and its bounds, in one pydantic model.

Kept free of FastAPI and torch: the CLI reads the defaults from here when it starts. A bad
value is a `ValueError` of one line naming the setting as the CLI spells it (`--batch-size must
be >= 1 (got 0)`), raised when the settings are built, so before any model is loaded.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from arner.core import defaults
from arner.core.results import THRESHOLD

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
# what the serving code knows how to check without loading a model (arner.serve.device)
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")

# a DNS name (RFC 1123): dot-separated labels of letters, digits and inner hyphens, 63 at most each
HOSTNAME_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

# settings that are not `arner serve` options keep their Python name in messages
NOT_CLI_OPTIONS = frozenset(
    {
        "max_body_bytes",
        "labelstudio_max_body_bytes",
        "max_queue",
        "warmup",
        "freeze_gc",
        "access_log",
        "body_timeout_s",
        "header_timeout_s",
        "keep_alive_s",
    }
)


class SettingsError(ValueError):
    """A bad serving setting; the message is one line naming it."""


class ServeSettings(BaseModel):
    """How `create_app` and `run` serve a model: limits, batching, loading, the HTTP server."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # limits of one request (413 above them)
    max_texts: int = Field(64, ge=1, description="Most texts per request.")
    max_chars: int = Field(100_000, ge=1, description="Most characters per request, all texts together.")
    max_text_chars: int | None = Field(None, ge=1, description="Most characters per text; None: max_chars.")
    max_body_bytes: int | None = Field(None, ge=1, description="Largest request body; None: derived from max_chars and max_texts.")
    # Label Studio posts a whole selection of tasks at once ("Retrieve predictions"), each with its annotations;
    # its texts are then tagged max_texts / max_chars at a time
    labelstudio_max_body_bytes: int = Field(64 << 20, ge=1, description="Largest request body to the Label Studio backend (/labelstudio).")
    # micro-batching
    max_batch_texts: int = Field(64, ge=1, description="Most texts merged from concurrent requests into one model call.")
    # measured: waiting only lowered throughput (README: serving)
    max_wait_ms: float = Field(
        0.0, ge=0, le=60_000, allow_inf_nan=False, description="Longest a request waits for others to merge with (a minute at most)."
    )
    max_queue: int = Field(1024, ge=1, description="Most queued requests (503 beyond).")
    # loading the model (ignored when create_app is given a loaded tagger)
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps.")
    batch_size: int = Field(defaults.BATCH_SIZE, ge=1, description="Windows per forward pass of the model.")
    stride: int = Field(defaults.STRIDE, ge=0, description="Overlap in subwords between windows of long texts.")
    precision: Literal[defaults.PRECISIONS] = Field(
        defaults.PRECISION, description="Numeric precision: auto, fp32, bf16, fp16 (GPU) or int8 (CPU); an ONNX export runs as exported."
    )
    # what an answer holds (a request may give its own)
    threshold: float = Field(THRESHOLD, ge=0, le=1, allow_inf_nan=False, description="Leave out entities scored below this (0 keeps all).")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (process-wide); None: run picks cores - 1 on CPU.")
    warmup: bool = Field(True, description="Run the model once before serving.")
    # None: `run` freezes (the process is the server), `create_app` alone does not (the process may be anyone's)
    freeze_gc: bool | None = Field(None, description="gc.freeze() at startup, process-wide.")
    # the HTTP server (`run` only)
    host: str = Field("127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    log_level: LogLevel = Field("info", description="uvicorn log level.")
    access_log: bool = Field(True, description="uvicorn logs every request.")
    # slow or stalled clients: without these a client that stops sending holds its connection forever
    header_timeout_s: float = Field(
        10.0, gt=0, allow_inf_nan=False, description="Longest a connection may take to send a request's line and headers (then closed)."
    )
    body_timeout_s: float = Field(10.0, gt=0, allow_inf_nan=False, description="Longest a request's body may take to arrive (408 after).")
    keep_alive_s: float = Field(5.0, gt=0, allow_inf_nan=False, description="Idle keep-alive connections are closed after this.")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:  # pydantic's message is several lines per error: one line instead
            raise SettingsError(describe(e)) from None

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        # checked here, not when torch first sees it, so that a typo fails before anything loads
        if not DEVICE_PATTERN.fullmatch(value):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        # checked here: uvicorn would fail only when it binds, after the model has loaded
        if not is_host(value):
            raise ValueError("must be an IP address or a host name")
        return value

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of one setting (what the CLI shows)."""
        return cls.model_fields[name].default


def is_host(value: str) -> bool:
    """An IPv4 or IPv6 address (no port, no brackets), or a DNS host name."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value  # a fully qualified name may end with the root's dot
    return 0 < len(name) <= 253 and all(HOSTNAME_LABEL.fullmatch(label) for label in name.split("."))


def option(name: str) -> str:
    """A setting as a message names it: the `arner serve` option where there is one."""
    return name if name in NOT_CLI_OPTIONS else "--" + name.replace("_", "-")


def describe(error: ValidationError) -> str:
    """One line for all of a validation error's problems, each naming its setting."""
    return "; ".join(_problem(e) for e in error.errors())


def _problem(e: dict) -> str:
    name = ".".join(str(x) for x in e.get("loc", ())) or "settings"
    kind, ctx, got = e.get("type"), e.get("ctx") or {}, e.get("input")
    if kind == "extra_forbidden":
        return f"unknown setting {name!r}"
    if kind == "greater_than_equal":
        what = f"must be >= {_number(ctx.get('ge'))}"
    elif kind == "greater_than":
        what = f"must be > {_number(ctx.get('gt'))}"
    elif kind == "less_than_equal":
        what = f"must be <= {_number(ctx.get('le'))}"
    elif kind == "finite_number":
        what = "must be a finite number"
    elif kind == "string_too_short":
        what = "must not be empty"
    elif kind == "value_error":
        what = str(ctx.get("error", e.get("msg")))
    else:  # wrong types, a log level not in the list: pydantic's own words ("Input should be a valid integer")
        what = str(e.get("msg", "is invalid")).replace("Input should be", "must be")
    return f"{option(name)} {what} (got {got!r})"


def _number(bound: Any) -> Any:
    """A bound as the user would write it: pydantic turns `gt=0` on a float setting into 0.0."""
    return int(bound) if isinstance(bound, float) and bound.is_integer() else bound
