"""`arner predict`: tag texts and write entities in a chosen format."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from arner.cli.errors import handle_errors
from arner.cli.options import BATCH_SIZE, DEFAULT_BATCH_SIZE, DEFAULT_PRECISION, DEFAULT_STRIDE, DEVICE, PRECISION, STRIDE
from arner.core.results import THRESHOLD, check_threshold


@handle_errors
def predict(
    model: Annotated[Path, typer.Option(help="Model folder written by `arner train` (or any token classifier).")],
    inputs: Annotated[
        Optional[list[str]], typer.Argument(help="Text files (id = file name), .jsonl with {id, text} lines, or - for stdin.")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="Output file (for brat a folder, replaced whole: new, empty or only .txt/.ann); default stdout.")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="jsonl (predictions for `arner eval --pred`), conll, brat, labelstudio, pipeline (a line per text: "
            "the list of {entity_group, score, word, start, end} transformers' pipeline gives), html (one standalone page: "
            "every text with its entities highlighted, the score on hover).",
        ),
    ] = "jsonl",
    threshold: Annotated[float, typer.Option(help="Leave out entities scored below this (0 to 1; 0 keeps all).")] = THRESHOLD,
    device: Annotated[str, DEVICE] = "auto",
    batch_size: Annotated[int, BATCH_SIZE] = DEFAULT_BATCH_SIZE,
    stride: Annotated[int, STRIDE] = DEFAULT_STRIDE,
    precision: Annotated[str, PRECISION] = DEFAULT_PRECISION,
) -> None:
    """Tag texts: entities with character offsets into each text, as it was given."""
    from arner.core.formats.labelstudio import model_version
    from arner.core.formats.texts import check_out, read_inputs, render
    from arner.inference import Tagger

    check_out(fmt, out)  # an unknown format, or a brat --out that would be refused, fails before the tagging, not after
    check_threshold(threshold, "--threshold")
    docs = read_inputs(inputs or [])
    tagger = Tagger.from_pretrained(model, device=device, batch_size=batch_size, stride=stride, threshold=threshold, precision=precision)
    entities = tagger.predict([t for _, t in docs])
    text = render(fmt, docs, entities, out, model_version(model))  # the version the live Label Studio backend gives
    if text is not None:
        sys.stdout.write(text)
    else:  # written to --out: say so, as eval and export do
        typer.echo(f"wrote {out} ({fmt}, {len(docs)} documents, {sum(map(len, entities))} entities)")
