"""`arner train`, `arner pretrain` and `arner ship-encoder`."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from arner.cli.errors import handle_errors, usage
from arner.cli.options import SET


def print_metrics(metrics: dict) -> None:
    """The final metrics, once (rank 0 under `accelerate launch`)."""
    if os.environ.get("RANK", "0") == "0":
        typer.echo(json.dumps(metrics, indent=2))


@handle_errors
def train(
    config: Annotated[Path, typer.Option(help="Run config (YAML), e.g. configs/tiny.yaml.")],
    output: Annotated[Optional[Path], typer.Option(help="Model folder to write (default runs/<config name>[-fold K]).")] = None,
    set_: Annotated[Optional[list[str]], SET] = None,
    fold: Annotated[Optional[int], typer.Option(help="Hold out article K (0-4) for leave-one-article-out; default trains on all.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last epoch checkpoint in OUTPUT.")] = False,
) -> None:
    """Fine-tune a token classifier on the annotations (CPU, one GPU, or several under `accelerate launch`)."""
    from arner.eval.training import train as run
    from arner.train.config import load_config

    cfg = load_config(config, set_ or [])
    out = output or Path("runs") / (config.stem + (f"-fold{fold}" if fold is not None else ""))
    command = shlex.join(["arner", *sys.argv[1:]])
    print_metrics(run(cfg, out, fold=fold, resume=resume, config_path=str(config), command=command))
    if os.environ.get("RANK", "0") == "0":  # where the model is and what to run next, on stderr (stdout is the metrics JSON)
        typer.echo(f"wrote the model to {out}; next: arner predict --model {out} TEXT_FILES... (or arner serve --model {out})", err=True)


@handle_errors
def pretrain(
    config: Annotated[Path, typer.Option(help="Pretraining config (YAML), e.g. configs/pretrain-tiny.yaml.")],
    text: Annotated[
        Optional[list[str]],
        typer.Option(
            "--text",
            help="Text inputs: .txt (a unit a line), .jsonl (text field), .conll (token column), each maybe .gz; default the config's text.",
        ),
    ] = None,
    more_text: Annotated[Optional[list[str]], typer.Argument(hidden=True, metavar="PATH")] = None,
    output: Annotated[Optional[Path], typer.Option(help="Model folder to write (default runs/<config name>).")] = None,
    set_: Annotated[Optional[list[str]], SET] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last epoch checkpoint in OUTPUT.")] = False,
    prepare_only: Annotated[
        bool, typer.Option(help="Only learn the tokenizer and pack the rows (OUTPUT/work/data, for `--set packed_rows=...` elsewhere).")
    ] = False,
) -> None:
    """Pretrain an encoder on raw text (masked LM, or ELECTRA's replaced-token detection), from scratch or continuing a checkpoint; the output works as `arner train`'s model."""
    from arner.train.config import PretrainConfig, load_config
    from arner.train.pretrain import pretrain as run

    if more_text and not text:
        usage(f"unexpected argument(s) {' '.join(more_text)} (text paths go after --text)")
    cfg = load_config(config, set_ or [], cls=PretrainConfig)
    texts = [*(text or []), *(more_text or [])]
    command = shlex.join(["arner", *sys.argv[1:]])
    out = output or Path("runs") / config.stem
    print_metrics(run(cfg, texts, out, resume=resume, config_path=str(config), command=command, prepare_only=prepare_only))


@handle_errors
def ship_encoder(
    run: Annotated[Path, typer.Argument(help="Folder of a finished `arner pretrain` run with objective electra.")],
    to: Annotated[Path, typer.Option(help="The shipped encoder's folder (replaced whole; the only folder under its parent).")] = Path(
        "models/arner-electra-ar"
    ),
) -> None:
    """Ship a pretrained ELECTRA encoder: fp16 weights, tokenizer, generator, model card, at most 30 MB."""
    from arner.train.pretrain.ship import ship

    shipped = ship(run, to, shlex.join(["arner", *sys.argv[1:]]))
    typer.echo(f"shipped {run} to {to}: {shipped['bytes']:,} bytes; card {to / 'README.md'}")
