"""The `arner` command: one Typer app; each command lives in the module of its stage.

Every command runs through `errors.handle_errors`, so exit codes mean one thing everywhere:
1 for invalid input data (each problem listed), 2 for a command that cannot run as asked.
"""

from __future__ import annotations

import os
import sys

import typer

from arner.cli import annotation_tools, bench, evaluate, export, predict, serve, train
from arner.cli.errors import fail

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Arabic news NER: ACTOR, PLACE, DATE.")
app.add_typer(annotation_tools.app, name="annotations")
app.command("train")(train.train)
app.command("pretrain")(train.pretrain)
app.command("ship-encoder")(train.ship_encoder)
app.command("predict")(predict.predict)
app.command("export")(export.export)
app.command("eval")(evaluate.eval_command)
app.command("cv")(evaluate.cv_command)
app.command("serve")(serve.serve)
app.add_typer(bench.app, name="bench")

__all__ = ["app", "fail", "main"]


def main() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no per-load progress bars and warnings on the CLI
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
