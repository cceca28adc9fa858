"""`arner eval` as a library call: score a predictions file, or a model's predictions, into a report folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from arner.core import atomic, corpus, defaults
from arner.core.corpus import Document
from arner.core.formats import predictions
from arner.core.public import ExternalCorpus
from arner.eval.metrics import RESAMPLES, SEED, evaluate
from arner.eval.report import dumps, write_evaluation

# what an `arner eval` folder holds: an existing --out holding anything else is refused, never deleted
OUTPUT_FILES = ("metrics.json", "errors.json", "errors.html", "report.md", "*.png", "predictions.jsonl", "external.json")


def select_documents(documents: Sequence[Document], selected: Sequence[str], gold: Path) -> list[Document]:
    """The gold documents named in `selected` (doc ids, or file names of articles); all when it is empty."""
    known = {d.doc for d in documents}
    selected = [Path(d).stem if d not in known and Path(d).stem in known else d for d in selected]
    unknown = [d for d in selected if d not in known]
    if unknown:
        raise ValueError(f"unknown doc(s) {', '.join(unknown)} in {gold} (known: {', '.join(sorted(known))})")
    wanted = set(selected)
    return [d for d in documents if not wanted or d.doc in wanted]


def run(
    out: Path,
    gold: Path,
    pred: Path | None = None,
    model: Path | None = None,
    docs: Sequence[str] = (),
    missing: str = "error",
    resamples: int = RESAMPLES,
    seed: int = SEED,
    device: str = "auto",
    batch_size: int = defaults.BATCH_SIZE,
    external: Sequence[ExternalCorpus] = (),
    external_root: Path = Path("../shared/external"),
) -> dict:
    """Score `pred` (or tag the gold texts with `model`) against `gold`; write `out/` whole; return the metrics."""
    if (pred is None) == (model is None):
        raise ValueError("give exactly one of --pred FILE or --model MODEL_DIR")
    if external and model is None:
        raise ValueError("--external needs --model (the model tags the public corpus)")
    atomic.check_owned(atomic.check_target(out), OUTPUT_FILES, "arner eval output")  # before the tagging and scoring, not after
    documents = corpus.load(gold)
    gold_docs = select_documents(documents, docs, gold)
    tagger = None
    if pred is not None:
        pred_docs = predictions.read(pred, documents, missing, {d.doc for d in gold_docs} if docs else None)
        source = f"Predictions `{pred}` against gold `{gold}`."
    else:
        from arner.inference import Tagger

        tagger = Tagger.from_pretrained(model, device=device, batch_size=batch_size)
        source = f"Model `{model}` on {len(gold_docs)} document(s) of gold `{gold}` (predictions in `predictions.jsonl`)."
    with atomic.directory(out, owned=OUTPUT_FILES, what="arner eval output") as tmp:
        if tagger is not None:  # the model's predictions, kept in OUT and read back with the checks of --pred
            rows = [(d.doc, e) for d, e in zip(gold_docs, tagger([d.text for d in gold_docs]))]
            predictions.write(tmp / "predictions.jsonl", rows)
            pred_docs = predictions.read(tmp / "predictions.jsonl", gold_docs)
        metrics, errors = evaluate(gold_docs, pred_docs, resamples, seed)
        write_evaluation(tmp, metrics, errors, "Evaluation", source, gold=gold_docs, pred=pred_docs)
        if external:
            write_public_scores(tmp, tagger, external, external_root)
    return metrics


def write_public_scores(folder: Path, tagger, entries: Sequence[ExternalCorpus], root: Path) -> None:
    """`external.json` and a section of `report.md`: the model on public test corpora."""
    from arner.eval.public_scores import markdown, score_corpus

    scores = {e.name: score_corpus(tagger.spans, e, root) for e in entries}
    (folder / "external.json").write_text(dumps(scores), encoding="utf-8")
    with (folder / "report.md").open("a", encoding="utf-8") as f:
        f.write("\n" + markdown(scores))
