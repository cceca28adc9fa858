"""Inference defaults shared by the library (`Tagger`), the CLI and the service: defined once, importable without torch."""

BATCH_SIZE = 16  # windows per forward pass
STRIDE = 64  # overlap in subwords between windows of a long text
