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
from arner.serve_defaults import DEFAULT_MAX_BATCH_TEXTS, DEFAULT_MAX_CHARS, DEFAULT_MAX_TEXTS, DEFAULT_MAX_WAIT_MS

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
    from arner.train.config import load_config
    from arner.train.run import train as run

    try:
        cfg = load_config(config, set_ or [])
        out = output or Path("runs") / (config.stem + (f"-fold{fold}" if fold is not None else ""))
        metrics = run(cfg, out, fold=fold, resume=resume, config_path=str(config))
    except ValueError as e:  # ConfigError and AnnotationError included
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
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
        docs = read_inputs(inputs or [])
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


@app.command()
def serve(
    model: Annotated[Path, typer.Option(help="Model folder written by `arner train` (or any token classifier).")],
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_texts: Annotated[int, typer.Option(help="Most texts per request (413 above).")] = DEFAULT_MAX_TEXTS,
    max_chars: Annotated[int, typer.Option(help="Most characters per request, all texts together (413 above).")] = DEFAULT_MAX_CHARS,
    max_text_chars: Annotated[Optional[int], typer.Option(help="Most characters per text (413 above); default --max-chars.")] = None,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass of the model.")] = 16,
    stride: Annotated[int, typer.Option(help="Overlap in subwords between windows of long texts.")] = 64,
    max_batch_texts: Annotated[
        int, typer.Option(help="Most texts merged from concurrent requests into one model call.")
    ] = DEFAULT_MAX_BATCH_TEXTS,
    max_wait_ms: Annotated[
        float, typer.Option(help="Under concurrent load, longest a request waits for others to merge with.")
    ] = DEFAULT_MAX_WAIT_MS,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads for the model (default on CPU: cores - 1, at least 1).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level: debug, info, warning, error.")] = "info",
) -> None:
    """Serve the model over HTTP: POST /v1/entities, GET /v1/model, GET /healthz (Ctrl-C stops it cleanly)."""
    from arner.serve import run as serve_run

    try:
        serve_run(
            model,
            host,
            port,
            log_level=log_level,
            max_texts=max_texts,
            max_chars=max_chars,
            max_text_chars=max_text_chars,
            batch_size=batch_size,
            stride=stride,
            max_batch_texts=max_batch_texts,
            max_wait_ms=max_wait_ms,
            device=device,
            threads=threads,
        )
    except (OSError, ValueError) as e:  # a model that cannot be loaded, a bad limit
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


bench_app = typer.Typer(no_args_is_help=True, help="Throughput against Hugging Face defaults; reports in OUT/<device>/NAME.{json,md}.")
app.add_typer(bench_app, name="bench")
BENCH_MODEL = typer.Option(help="tiny (configs/tiny.yaml) or bert-base (AraBERT v0.2's shape, random weights).")


def _bench_fail(e: Exception) -> None:
    if isinstance(e, AnnotationError):
        fail(e)
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2) from None


@bench_app.command("train")
def bench_train_command(
    model: Annotated[str, BENCH_MODEL] = "tiny",
    tokens: Annotated[int, typer.Option(help="Subword tokens of data: the articles repeated and shuffled up to this.")] = 50_000,
    epochs: Annotated[int, typer.Option(help="Epochs per loop; the first is a warm-up and not measured.")] = 3,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size for both loops (default: the config's).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Run config (default configs/tiny.yaml or configs/arabert-v02.yaml).")] = None,
    annotations: Annotated[Path, typer.Option(help="Annotation folder whose articles make the data.")] = Path("annotations"),
    out: Annotated[Path, typer.Option(help="Reports folder; the report goes to OUT/<device>/NAME.json and .md.")] = Path("reports/bench"),
    name: Annotated[Optional[str], typer.Option(help="Report name (default train-MODEL).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for data order and weights.")] = 42,
    repeats: Annotated[int, typer.Option(help="Run each measurement this many times and keep the best (noisy machines).")] = 1,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads (default: torch's choice).")] = None,
) -> None:
    """Training tokens/s, sequences/s, step time, peak memory, MFU: `arner train`'s loop vs the HF Trainer."""
    options = dict(locals())  # the parameters, as the report's command line spells them

    from arner.bench import bench_train, command_line

    try:
        r = bench_train(**options, command=command_line("train", options))
    except (AnnotationError, ValueError) as e:
        _bench_fail(e)
    typer.echo(
        f"{out / r['device'] / r['name']}.json: arner {r['ours']['tokens_per_second']:,.0f} tokens/s, "
        f"Trainer {r['trainer']['tokens_per_second']:,.0f} ({r['ratio_tokens_per_second']:.2f}x)"
    )


@bench_app.command("infer")
def bench_infer_command(
    model: Annotated[str, BENCH_MODEL] = "tiny",
    tokens: Annotated[int, typer.Option(help="Subword tokens of text: whole articles repeated and shuffled up to this.")] = 50_000,
    batch_sizes: Annotated[
        str, typer.Option(help="Batch sizes to sweep, comma-separated (1 and Tagger's default are always in).")
    ] = "1,4,16,64",
    lengths: Annotated[str, typer.Option(help="Document lengths in subwords for the length sweep, comma-separated.")] = "64,256,1024,4096",
    length_tokens: Annotated[Optional[int], typer.Option(help="Subword tokens per point of the length sweep (default --tokens).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    config: Annotated[Optional[Path], typer.Option(help="Run config for max_length and stride (default per model).")] = None,
    annotations: Annotated[Path, typer.Option(help="Annotation folder whose articles make the texts.")] = Path("annotations"),
    out: Annotated[Path, typer.Option(help="Reports folder; the report goes to OUT/<device>/NAME.json, .md and .png.")] = Path(
        "reports/bench"
    ),
    name: Annotated[Optional[str], typer.Option(help="Report name (default infer-MODEL).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for text order and weights.")] = 42,
    repeats: Annotated[int, typer.Option(help="Run each measurement this many times and keep the best (noisy machines).")] = 1,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads (default: torch's choice).")] = None,
) -> None:
    """Documents/s and tokens/s: Tagger vs transformers.pipeline(token-classification, aggregation_strategy=first)."""
    options = dict(locals())  # the parameters, as the report's command line spells them

    from arner.bench import bench_infer, command_line

    try:
        sizes = tuple(int(x) for x in batch_sizes.split(","))
        lens = tuple(int(x) for x in lengths.split(","))
        if min(sizes + lens) < 1:
            raise ValueError("--batch-sizes and --lengths must be positive integers")
        r = bench_infer(**(options | {"batch_sizes": sizes, "lengths": lens}), command=command_line("infer", options))
    except (AnnotationError, ValueError) as e:
        _bench_fail(e)
    typer.echo(
        f"{out / r['device'] / r['name']}.json: Tagger {r['tagger_best']['documents_per_second']:,.2f} docs/s, "
        f"pipeline {r['pipeline_best']['documents_per_second']:,.2f} "
        f"({r['ratio_best']:.2f}x best vs best, {r['ratio_default']:.2f}x defaults)"
    )


@app.command()
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
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Override a config key: key=value (repeatable; dotted keys for sections).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last epoch checkpoint in OUTPUT.")] = False,
) -> None:
    """Masked-language-model pretraining of a BERT on raw text, from scratch or from a checkpoint; the output works as `arner train`'s model."""
    from arner.train.config import ConfigError, load_config
    from arner.train.pretrain import PretrainConfig
    from arner.train.pretrain import pretrain as run

    if more_text and not text:
        typer.echo(f"error: unexpected argument(s) {' '.join(more_text)} (text paths go after --text)", err=True)
        raise typer.Exit(2)
    try:
        cfg = load_config(config, set_ or [], cls=PretrainConfig)
        metrics = run(
            cfg, [*(text or []), *(more_text or [])], output or Path("runs") / config.stem, resume=resume, config_path=str(config)
        )
    except (ConfigError, ValueError) as e:
        if isinstance(e, AnnotationError):
            fail(e)
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if os.environ.get("RANK", "0") == "0":
        typer.echo(json.dumps(metrics, indent=2))


def main() -> None:
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no per-load progress bars and warnings on the CLI
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
