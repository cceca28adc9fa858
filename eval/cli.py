"""`arner eval` and `arner cv` (registered on the app in arner.cli)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from arner.corpus import AnnotationError
from arner.eval.metrics import RESAMPLES, SEED
from arner.eval.report import dumps


class Missing(str, Enum):
    error = "error"
    empty = "empty"


def _usage(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


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
    device: Annotated[str, typer.Option(help="With --model: auto, cpu, cuda...")] = "auto",
    batch_size: Annotated[int, typer.Option(help="With --model: texts per batch.")] = 16,
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
    from arner import atomic, corpus, predictions
    from arner.eval.metrics import evaluate
    from arner.eval.report import write_evaluation

    if (pred is None) == (model is None):
        _usage("give exactly one of --pred FILE or --model MODEL_DIR")
    if external_sets and model is None:
        _usage("--external needs --model (the model tags the public corpus)")
    entries = []
    for item in external_sets or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            _usage(f"--external {item!r}: expected NAME=FILE.conll")
        from arner.external import ExternalCorpus

        entries.append(ExternalCorpus(name=name, files=[path]))
    selected = [d for group in (docs or [], more_docs or []) for item in group for d in item.split(",") if d]
    if more_docs and not docs:
        _usage(f"unexpected argument(s) {' '.join(more_docs)} (doc ids go after --docs)")
    try:
        documents = corpus.load(gold)
        known = {d.doc for d in documents}
        selected = [Path(d).stem if d not in known and Path(d).stem in known else d for d in selected]
        unknown = [d for d in selected if d not in known]
        if unknown:
            _usage(f"unknown doc(s) {', '.join(unknown)} in {gold} (known: {', '.join(sorted(known))})")
        select = set(selected) if selected else None
        gold_docs = [d for d in documents if select is None or d.doc in select]
        rows = None  # with --model: the model's predictions, kept in OUT and read back with the checks of --pred
        if pred is not None:
            pred_docs = predictions.read(pred, documents, missing.value, select)
            source = f"Predictions `{pred}` against gold `{gold}`."
        else:
            from arner.inference import Tagger

            tagger = Tagger.from_pretrained(model, device=device, batch_size=batch_size)
            entities = tagger([d.text for d in gold_docs])
            rows = [(d.doc, e) for d, e in zip(gold_docs, entities)]
            source = f"Model `{model}` on {len(gold_docs)} document(s) of gold `{gold}` (predictions in `predictions.jsonl`)."
        with atomic.directory(out) as tmp:
            if rows is not None:
                predictions.write(tmp / "predictions.jsonl", rows)
                pred_docs = predictions.read(tmp / "predictions.jsonl", gold_docs)
            metrics, errors = evaluate(gold_docs, pred_docs, resamples, seed)
            write_evaluation(tmp, metrics, errors, "Evaluation", source)
            if entries:
                from arner.eval.external import markdown as external_markdown
                from arner.eval.external import score_corpus

                def predict(texts):
                    return [[e.span() for e in doc] for doc in tagger(texts)]

                scores = {e.name: score_corpus(predict, e, external_root) for e in entries}
                (tmp / "external.json").write_text(dumps(scores), encoding="utf-8")
                with (tmp / "report.md").open("a", encoding="utf-8") as f:
                    f.write("\n" + external_markdown(scores))
    except AnnotationError as e:
        from arner.cli import fail  # imported here: arner.cli imports this module

        fail(e)
    b = metrics["bootstrap"]
    typer.echo(
        f"wrote {out}: word micro F1 {metrics['word']['micro']['f1']:.3f}, span strict F1 {b['estimate']:.3f} "
        f"[{b['low']:.3f}, {b['high']:.3f}], partial F1 {metrics['span']['partial']['micro']['f1']:.3f}"
    )


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
    device: Annotated[str, typer.Option(help="Device for tagging the held-out article.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Texts per batch when tagging.")] = 16,
) -> None:
    """Leave-one-article-out cross-validation of the model and both baselines, pooled and per fold, in one report."""
    from arner.eval import cv

    names = [s.strip() for s in systems.split(",") if s.strip()]
    bad = [s for s in names if s not in cv.SYSTEMS]
    if bad or not names:
        _usage(f"unknown system(s) {', '.join(bad) or '(none)'}; choose among {', '.join(cv.SYSTEMS)}")
    if "bert" in names and config is None:
        _usage("the bert system needs --config configs/NAME.yaml (or leave it out with --systems memorization,crf)")
    try:
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
    except AnnotationError as e:
        from arner.cli import fail  # imported here: arner.cli imports this module

        fail(e)
    except (ValueError, RuntimeError) as e:  # a bad config or override (ConfigError), a fold model that saw its article
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    for name, s in result["systems"].items():
        p = s["pooled"]["span_strict_micro_f1"]
        typer.echo(
            f"{name}: span strict F1 {p['estimate']:.3f} [{p['low']:.3f}, {p['high']:.3f}], "
            f"per fold {s['mean']['span_strict_micro_f1']:.3f} ± {s['std']['span_strict_micro_f1']:.3f}"
        )
    typer.echo(f"wrote {out}")
