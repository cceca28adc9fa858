"""`arner serve`: the HTTP service over a `Tagger`.

Imported lazily, name by name: the CLI reads `ServeSettings` without importing FastAPI or torch.

- `settings`: `ServeSettings`, every setting with its default and bounds
- `schemas`: request and response bodies, error answers
- `limits`: the request limits and the body guard middleware
- `batcher`: `MicroBatcher`, which merges concurrent requests into one model call
- `device`: the device check and the CPU thread count
- `disconnect`: `unless_disconnected`, which drops the work of a client that has gone
- `labelstudio`: Label Studio's ML backend protocol under /labelstudio
- `app`: `create_app`, the FastAPI app; `server`: `run`, uvicorn in this process
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ServeSettings": "arner.serve.settings",
    "SettingsError": "arner.serve.settings",
    "MicroBatcher": "arner.serve.batcher",
    "ServiceUnavailable": "arner.serve.batcher",
    "create_app": "arner.serve.app",
    "run": "arner.serve.server",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'arner.serve' has no attribute {name!r}")
