"""`arner export`: a trained model folder in another runtime's format (ONNX for ONNX Runtime)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arner.cli.errors import handle_errors


@handle_errors
def export(
    model: Annotated[Path, typer.Option(help="Model folder written by `arner train` (or any token classifier).")],
    out: Annotated[Path, typer.Option(help="Folder to write (replaced whole: new, empty or an earlier export).")],
    fmt: Annotated[str, typer.Option("--format", help="onnx (the only one so far).")] = "onnx",
    quantize: Annotated[str, typer.Option(help="none, or int8: ONNX Runtime's dynamic quantization (the head left fp32).")] = "none",
) -> None:
    """Export a model for ONNX Runtime; `arner predict --model OUT`, `arner serve` and `Tagger` load the folder."""
    if fmt != "onnx":
        raise ValueError(f"--format must be onnx, got {fmt!r}")
    from arner.inference.onnx import export_onnx

    record = export_onnx(model, out, quantize)  # checks --quantize before the model loads
    typer.echo(f"wrote {out} (onnx opset {record['opset']}, quantize {quantize}); next: arner predict --model {out} TEXTS")
