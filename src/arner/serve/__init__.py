"""`arner serve`: the HTTP service over a `Tagger` (imported lazily: the CLI must start without FastAPI)."""

__all__ = ["MicroBatcher", "ServiceUnavailable", "create_app", "run"]


def __getattr__(name: str):
    if name in __all__:
        from arner.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'arner.serve' has no attribute {name!r}")
