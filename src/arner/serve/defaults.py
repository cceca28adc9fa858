"""Defaults of `arner serve`, apart from `arner.serve` so that the CLI reads them without importing FastAPI."""

DEFAULT_MAX_TEXTS = 64
DEFAULT_MAX_CHARS = 100_000
DEFAULT_MAX_BATCH_TEXTS = 64
DEFAULT_MAX_WAIT_MS = 0.0  # measured: waiting only lowered throughput (README: serving)
DEFAULT_MAX_QUEUE = 1024
