"""`arner eval` and `arner cv`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from arner.cli.errors import handle_errors, usage
from arner.cli.options import BATCH_SIZE, DEFAULT_BATCH_SIZE, DEVICE
from arner.core.public import ExternalCorpus
from arner.eval.metrics import RESAMPLES, SEED


class Missing(str, Enum):
    error = "error"
    empty = "empty"


@handle_errors
def eval_command(
    out: Annotated[Path, typer.Option(help="Output folder (replaced whole): metrics.json, errors.json, report.md, *.png.")],
    pred: Annotated[Optional[Path], typer.Option(help="Predictions JSONL to score (one line per document).")] = None,
    model: Annotated[
        Optional[Path], typer.Option(help="Model folder: tag the documents, then score (predictions.jsonl is kept in OUT).")
    ] = None,
    gold: Annotated[Path, typer.Option(help="Gold annotation folder.")] = Path("annotations"),
    docs: Annotated[
        Optional[list[str]], typer.Option("--docs", help="Score only these doc ids: --docs A B or --docs A --docs B (default: all gold).")
    ] = None,
    more_docs: Annotated[Optional[list[str]], typer.Argument(hidden=True, metavar="DOC")] = None,
    missing: Annotated[
        Missing, typer.Option(help="A gold document without a line in --pred: an error, or scored as empty predictions.")
    ] = Missing.error,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of paragraphs.")] = RESAMPLES,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = SEED,
    device: Annotated[str, DEVICE] = "auto",
    batch_size: Annotated[int, BATCH_SIZE] = DEFAULT_BATCH_SIZE,
    external_sets: Annotated[
        Optional[list[str]],
        typer.Option("--external", help="With --model: also score a public corpus, NAME=FILE.conll (label_map.tsv beside it); repeatable."),
    ] = None,
    external_root: Annotated[Path, typer.Option(help="Where --external files start.")] = Path("../shared/external"),
) -> None:
    """Score predictions against the gold: seqeval words, SemEval span schemas, per document, confusion, bootstrap, every error.

    `arner eval --gold annotations --pred FILE --out DIR`, or `arner eval --model MODEL_DIR --docs DOC... --out DIR`.
    Invalid predictions are listed (file, line, entity, problem) and nothing is written.
    """
    from arner.eval.harness import run

    entries = []
    for item in external_sets or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            usage(f"--external {item!r}: expected NAME=FILE.conll")
        entries.append(ExternalCorpus(name=name, files=[path]))
    if more_docs and not docs:
        usage(f"unexpected argument(s) {' '.join(more_docs)} (doc ids go after --docs)")
    selected = [d for group in (docs or [], more_docs or []) for item in group for d in item.split(",") if d]
    metrics = run(out, gold, pred, model, selected, missing.value, resamples, seed, device, batch_size, entries, external_root)
    b = metrics["bootstrap"]
    typer.echo(
        f"wrote {out}: word micro F1 {metrics['word']['micro']['f1']:.3f}, span strict F1 {b['estimate']:.3f} "
        f"[{b['low']:.3f}, {b['high']:.3f}], partial F1 {metrics['span']['partial']['micro']['f1']:.3f}"
    )


@handle_errors
def cv_command(
    out: Annotated[
        Path, typer.Option(help="Output folder (replaced whole): metrics.json, report.md, comparison.png, one folder per system.")
    ],
    config: Annotated[Optional[Path], typer.Option(help="Training config (YAML) of the bert system.")] = None,
    overrides: Annotated[
        Optional[list[str]], typer.Option("--set", help="Config override key=value passed to the trainer (repeatable).")
    ] = None,
    systems: Annotated[str, typer.Option(help="Comma-separated systems among bert, memorization, crf.")] = "bert,memorization,crf",
    gold: Annotated[Path, typer.Option(help="Gold annotation folder; fold K holds out its K-th document.")] = Path("annotations"),
    work: Annotated[Optional[Path], typer.Option(help="Where the fold models go (default runs/cv/<config name>).")] = None,
    resume: Annotated[bool, typer.Option(help="Passed to the trainer: resume fold trainings.")] = False,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of paragraphs.")] = RESAMPLES,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = SEED,
    device: Annotated[str, DEVICE] = "auto",
    batch_size: Annotated[int, BATCH_SIZE] = DEFAULT_BATCH_SIZE,
) -> None:
    """Leave-one-article-out cross-validation of the model and both baselines, pooled and per fold, in one report."""
    from arner import cv

    names = [s.strip() for s in systems.split(",") if s.strip()]
    result = cv.run(
        out,
        config,
        overrides or [],
        names,
        gold,
        work,
        resume,
        resamples,
        seed,
        device,
        batch_size,
        log=lambda m: typer.echo(m, err=True),
    )
    for name, s in result["systems"].items():
        p = s["pooled"]["span_strict_micro_f1"]
        typer.echo(
            f"{name}: span strict F1 {p['estimate']:.3f} [{p['low']:.3f}, {p['high']:.3f}], "
            f"per fold {s['mean']['span_strict_micro_f1']:.3f} ± {s['std']['span_strict_micro_f1']:.3f}"
        )
    typer.echo(f"wrote {out}")
