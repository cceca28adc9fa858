"""`arner annotations check|stats|export|import|agree|locate`."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from arner.cli.errors import handle_errors
from arner.core import corpus
from arner.core.corpus import AnnotationError

app = typer.Typer(no_args_is_help=True, help="Check, count, convert and compare annotation folders.")

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


@app.command()
@handle_errors
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


@app.command()
@handle_errors
def stats(root: Path = ROOT, as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Spans per label per article, words, and words per label."""
    from arner.core.stats import markdown
    from arner.core.stats import stats as compute

    result = compute(corpus.load(root))
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2) if as_json else markdown(result), nl=as_json)


@app.command()
@handle_errors
def export(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Target format.")],
    out: Annotated[
        Path,
        typer.Option(
            help="Output file (conll, labelstudio, doccano) or folder (hf, brat; replaced whole, refused if it holds other files)."
        ),
    ],
    root: Path = ROOT,
) -> None:
    """Export the annotations; nothing is written unless the folder checks clean."""
    from arner.core.formats import EXPORTERS

    documents = corpus.load(root)
    EXPORTERS[fmt.value](documents, out)
    typer.echo(f"wrote {out} ({fmt.value}, {len(documents)} documents)")


@app.command("import")
@handle_errors
def import_(
    fmt: Annotated[ImportFormat, typer.Option("--format", help="Source format.")],
    source: Annotated[Path, typer.Argument(help="Label Studio JSON, doccano JSONL or brat folder.")],
    out: Annotated[Path, typer.Option(help="Annotation folder to write (its spans/ and articles/).")],
) -> None:
    """Import spans from an annotation tool; every span is checked before anything is written.

    OUT's spans/ and articles/ are replaced whole, together, in one step; the rest of OUT is kept.
    """
    from arner.core.formats import IMPORTERS

    documents = IMPORTERS[fmt.value](source)
    if not documents:  # saving nothing would empty OUT's spans/ and articles/
        raise AnnotationError([corpus.Problem(str(source), f"no documents found ({fmt.value}): nothing written to {out}")])
    corpus.save(documents, out)
    typer.echo(f"wrote {out} ({len(documents)} documents, {sum(len(d.spans) for d in documents)} spans)")


@app.command()
@handle_errors
def agree(
    a: Annotated[Path, typer.Argument(help="First annotation folder (spans/ or *.json).")],
    b: Annotated[Path, typer.Argument(help="Second annotation folder.")],
    articles: Annotated[Optional[Path], typer.Option(help="Articles when a folder has none.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Strict and partial span P/R/F1 per label, Cohen's kappa on word tags, and every disagreement."""
    from arner.eval.agreement import agreement, markdown

    result = agreement(corpus.load(a, articles, False), corpus.load(b, articles, False))
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2) if as_json else markdown(result), nl=as_json)


@app.command()
@handle_errors
def locate(
    mentions: Annotated[Path, typer.Argument(help="Folder of <doc>.tsv mention lists (LABEL<TAB>SURFACE[<TAB>LEFT]).")],
    out: Annotated[Path, typer.Option(help="Annotation folder whose spans/ is written.")],
    articles: Annotated[Path, typer.Option(help="Articles folder.")] = Path("annotations/articles"),
) -> None:
    """Compute span offsets from mention lists (surface + order), never by hand."""
    from arner.core.locate import locate_folder

    texts, problems = corpus.read_articles(articles)
    if problems:
        raise AnnotationError(problems)
    documents = locate_folder(mentions, texts)
    corpus.save(documents, out, with_articles=False)
    typer.echo(f"wrote {out / 'spans'} ({len(documents)} documents, {sum(len(d.spans) for d in documents)} spans)")
