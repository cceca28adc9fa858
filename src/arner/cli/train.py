"""`arner train` and `arner pretrain`."""

from __future__ import annotations

import json
import os
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
    print_metrics(run(cfg, out, fold=fold, resume=resume, config_path=str(config)))


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
) -> None:
    """Masked-language-model pretraining of a BERT on raw text, from scratch or from a checkpoint; the output works as `arner train`'s model."""
    from arner.train.config import PretrainConfig, load_config
    from arner.train.pretrain import pretrain as run

    if more_text and not text:
        usage(f"unexpected argument(s) {' '.join(more_text)} (text paths go after --text)")
    cfg = load_config(config, set_ or [], cls=PretrainConfig)
    texts = [*(text or []), *(more_text or [])]
    print_metrics(run(cfg, texts, output or Path("runs") / config.stem, resume=resume, config_path=str(config)))
