"""Options shared by several commands: one name, one meaning, one default everywhere."""

from __future__ import annotations

import typer

from arner.core import defaults

DEFAULT_BATCH_SIZE = defaults.BATCH_SIZE  # windows per forward pass, as `Tagger` takes it
DEFAULT_STRIDE = defaults.STRIDE
DEFAULT_PRECISION = defaults.PRECISION

BATCH_SIZE = typer.Option(help="Windows per forward pass of the model.")
STRIDE = typer.Option(help="Overlap in subwords between windows of long texts (at most a quarter of the model's max length).")
DEVICE = typer.Option(help="auto, cpu, cuda, cuda:1 ...")
SET = typer.Option("--set", help="Override a config key: key=value (repeatable; dotted keys for sections).")
PRECISION = typer.Option(
    help=f"Numeric precision of the model: {', '.join(defaults.PRECISIONS)} (auto: bf16 or fp16 on a GPU, fp32 on a CPU; "
    "int8: dynamic quantization, CPU only). An ONNX export runs as exported."
)
