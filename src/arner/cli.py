"""The `arner` command."""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from arner import corpus
from arner.corpus import AnnotationError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Arabic news NER: ACTOR, PLACE, DATE.")
annotations_app = typer.Typer(no_args_is_help=True, help="Check, count, convert and compare annotation folders.")
app.add_typer(annotations_app, name="annotations")

ROOT = typer.Argument(Path("annotations"), help="Annotation folder (with articles/ and spans/).")


class ExportFormat(str, Enum):
    conll = "conll"
    hf = "hf"
    labelstudio = "labelstudio"
    doccano = "doccano"
    brat = "brat"


class ImportFormat(str, Enum):
    labelstudio = "labelstudio"
    doccano = "doccano"
    brat = "brat"


def fail(error: AnnotationError) -> None:
    for problem in error.problems:
        typer.echo(str(problem), err=True)
    raise typer.Exit(1)


def load_or_fail(root: Path, articles: Path | None = None, require_all: bool = True) -> list[corpus.Document]:
    try:
        return corpus.load(root, articles, require_all)
    except AnnotationError as e:
        fail(e)
        raise


@annotations_app.command()
def check(root: Path = ROOT, articles: Annotated[Optional[Path], typer.Option(help="Articles folder when ROOT has none.")] = None) -> None:
    """Validate every article and span file; list all problems; exit 1 on any error."""
    documents, problems = corpus.check(root, articles)
    for p in problems:
        typer.echo(str(p), err=p.severity == "error")
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    spans = sum(len(d.spans) for d in documents)
    typer.echo(f"{len(documents)} documents, {spans} spans: {errors} errors, {warnings} warnings")
    if errors:
        raise typer.Exit(1)


@annotations_app.command()
def stats(root: Path = ROOT, as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Spans per label per article, words, and words per label."""
    from arner.stats import markdown
    from arner.stats import stats as compute

    result = compute(load_or_fail(root))
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2) if as_json else markdown(result), nl=as_json)


@annotations_app.command()
def export(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Target format.")],
    out: Annotated[Path, typer.Option(help="Output file (conll, labelstudio, doccano) or folder (hf, brat).")],
    root: Path = ROOT,
) -> None:
    """Export the annotations; nothing is written unless the folder checks clean."""
    from arner.formats import EXPORTERS

    documents = load_or_fail(root)
    EXPORTERS[fmt.value](documents, out)
    typer.echo(f"wrote {out} ({fmt.value}, {len(documents)} documents)")


@annotations_app.command("import")
def import_(
    fmt: Annotated[ImportFormat, typer.Option("--format", help="Source format.")],
    source: Annotated[Path, typer.Argument(help="Label Studio JSON, doccano JSONL or brat folder.")],
    out: Annotated[Path, typer.Option(help="Annotation folder to write (its spans/ and articles/).")],
) -> None:
    """Import spans from an annotation tool; every span is checked before anything is written."""
    from arner.formats import IMPORTERS

    try:
        documents = IMPORTERS[fmt.value](source)
        corpus.save(documents, out)
    except AnnotationError as e:
        fail(e)
    typer.echo(f"wrote {out} ({len(documents)} documents, {sum(len(d.spans) for d in documents)} spans)")


@annotations_app.command()
def agree(
    a: Annotated[Path, typer.Argument(help="First annotation folder (spans/ or *.json).")],
    b: Annotated[Path, typer.Argument(help="Second annotation folder.")],
    articles: Annotated[Optional[Path], typer.Option(help="Articles when a folder has none.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Strict and partial span P/R/F1 per label, Cohen's kappa on word tags, and every disagreement."""
    from arner.agreement import agreement, markdown

    result = agreement(load_or_fail(a, articles, False), load_or_fail(b, articles, False))
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2) if as_json else markdown(result), nl=as_json)


@annotations_app.command()
def locate(
    mentions: Annotated[Path, typer.Argument(help="Folder of <doc>.tsv mention lists (LABEL<TAB>SURFACE[<TAB>LEFT]).")],
    out: Annotated[Path, typer.Option(help="Annotation folder whose spans/ is written.")],
    articles: Annotated[Path, typer.Option(help="Articles folder.")] = Path("annotations/articles"),
) -> None:
    """Compute span offsets from mention lists (surface + order), never by hand."""
    from arner.locate import locate_folder

    try:
        texts, problems = corpus.read_articles(articles)
        if problems:
            raise AnnotationError(problems)
        documents = locate_folder(mentions, texts)
        corpus.save(documents, out, with_articles=False)
    except AnnotationError as e:
        fail(e)
    typer.echo(f"wrote {out / 'spans'} ({len(documents)} documents, {sum(len(d.spans) for d in documents)} spans)")


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="Run config (YAML), e.g. configs/tiny.yaml.")],
    output: Annotated[Optional[Path], typer.Option(help="Model folder to write (default runs/<config name>[-fold K]).")] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Override a config key: key=value (repeatable; dotted keys for sections).")
    ] = None,
    fold: Annotated[Optional[int], typer.Option(help="Hold out article K (0-4) for leave-one-article-out; default trains on all.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last epoch checkpoint in OUTPUT.")] = False,
) -> None:
    """Fine-tune a token classifier on the annotations (CPU, one GPU, or several under `accelerate launch`)."""
    from arner.train.config import ConfigError, load_config
    from arner.train.run import train as run

    try:
        cfg = load_config(config, set_ or [])
        out = output or Path("runs") / (config.stem + (f"-fold{fold}" if fold is not None else ""))
        metrics = run(cfg, out, fold=fold, resume=resume, config_path=str(config))
    except (ConfigError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    except AnnotationError as e:
        fail(e)
    if os.environ.get("RANK", "0") == "0":
        typer.echo(json.dumps(metrics, indent=2))


@app.command()
def predict(
    model: Annotated[Path, typer.Option(help="Model folder written by `arner train` (or any token classifier).")],
    inputs: Annotated[
        Optional[list[str]], typer.Argument(help="Text files (id = file name), .jsonl with {id, text} lines, or - for stdin.")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output file (a folder for brat); default stdout.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl (predictions for `arner eval --pred`), conll, brat, labelstudio.")] = "jsonl",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 32,
    stride: Annotated[int, typer.Option(help="Overlap in subwords between windows of long texts.")] = 64,
) -> None:
    """Tag texts: entities with character offsets into each text, as it was given."""
    from arner.inference import ModelLoadError, Tagger
    from arner.predict import FORMATS, read_inputs, render

    if fmt not in FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    try:
        docs = read_inputs(inputs or ["-"])
        tagger = Tagger.from_pretrained(model, device=device, batch_size=batch_size, stride=stride)
        text = render(fmt, docs, tagger.predict([t for _, t in docs]), out)
    except AnnotationError as e:
        fail(e)
    except (ModelLoadError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if text is not None:
        sys.stdout.write(text)


from arner.eval.cli import cv_command, eval_command  # noqa: E402

app.command("eval")(eval_command)
app.command("cv")(cv_command)


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
