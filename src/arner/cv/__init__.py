"""Leave-one-article-out cross-validation of the fine-tuned model and the two baselines.

Fold K holds out `documents[K]` of `corpus.load(gold)` (sorted by doc id) and trains on the
others. Each system predicts the held-out article of each fold; the five held-out prediction
files are pooled into one predictions file, read back with the same checks as `arner eval`
(`arner.core.formats.predictions.read`) and scored once with the same code (`metrics.evaluate`): the pooled
micro figures, with paragraph-bootstrap intervals. Each fold is also scored alone, for the
per-fold mean and sample standard deviation (n - 1).

Nothing in the outputs depends on the clock, so the same command on CPU gives the same files.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from arner.core import atomic, commands, corpus, defaults
from arner.core.corpus import Document, split
from arner.core.formats import predictions
from arner.cv.report import FIGURES, figures, markdown, plot_comparison
from arner.eval.baselines import BASELINES
from arner.eval.metrics import RESAMPLES, SEED, evaluate, scores
from arner.eval.report import dumps, write_evaluation

SYSTEMS = ("bert", "memorization", "crf")
# what an `arner cv` folder holds: an existing --out holding anything else is refused, never deleted
OUTPUT_FILES = ("metrics.json", "report.md", "comparison.png", *(f"{s}/" for s in SYSTEMS))


@dataclass
class SystemResult:
    name: str
    rows: list[tuple[str, list]]  # (doc, entities) per fold, entities with scores where the system gives them
    metrics: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    per_fold: list[dict] = field(default_factory=list)
    predicted: list[Document] = field(default_factory=list)  # the pooled predictions as read back, for errors.html


@dataclass
class ExternalData:
    """Public corpora from the config: documents added to every fold's training, and test sets scored per fold."""

    extra_train: list[Document] = field(default_factory=list)
    tests: dict[str, tuple[list[Document], bool]] = field(default_factory=dict)  # name -> (documents, has DATE)

    @classmethod
    def from_config(cls, config) -> ExternalData:
        from arner.core import public as external

        extra = [d for e in config.extra_train for d in external.load(e, config.external_root)]
        return cls(extra, {e.key: external.load_test(e, config.external_root) for e in config.external_test})

    def scores(self, predict: Callable[[list[str]], list[list]]) -> dict[str, dict]:
        from arner.eval.public_scores import external_scores, headline

        return {
            name: headline(external_scores(docs, predict([d.text for d in docs]), has_date))
            for name, (docs, has_date) in self.tests.items()
        }


def baseline_predictions(
    name: str, documents: Sequence[Document], log: Callable[[str], None] = lambda _: None, ext: ExternalData | None = None
) -> tuple[list[tuple[str, list]], list[dict]]:
    """Held-out predictions per fold, and per fold the external test scores (empty without external data)."""
    ext = ext or ExternalData()
    rows, external_rows = [], []
    for k, held in enumerate(documents):
        train_docs, _ = split(documents, k)
        model = BASELINES[name]().fit(train_docs + ext.extra_train)
        (spans,) = model.predict([held.text])
        log(f"{name} fold {k} ({held.doc}): {len(spans)} spans")
        rows.append((held.doc, spans))
        external_rows.append(ext.scores(model.predict))
    return rows, external_rows


def with_annotations(config, gold: Path):
    """The trainer's config: `config`, made to read the annotation folder `gold` when it reads another."""
    if Path(config.annotations).resolve() != Path(gold).resolve():
        return config.replace(annotations=str(gold))
    return config


def check_heldout(model_dir: Path, doc: str) -> None:
    """Refuse a fold model whose metadata (`arner.json`, when the trainer writes one) shows it saw the held-out article."""
    meta_path = model_dir / "arner.json"
    if not meta_path.is_file():
        return
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    train_docs, heldout = meta.get("train_docs"), meta.get("heldout_docs")
    if (train_docs is not None and doc in train_docs) or (heldout is not None and heldout != [doc]):
        raise ValueError(f"{meta_path}: the fold model was trained on {train_docs} holding out {heldout}, not holding out {doc!r}")


def bert_predictions(
    config,
    documents: Sequence[Document],
    work: Path,
    resume: bool = False,
    device: str = "auto",
    batch_size: int = defaults.BATCH_SIZE,
    log: Callable[[str], None] = lambda _: None,
    command: Callable[[Path, int], str] = lambda model_dir, k: "",
) -> tuple[list[tuple[str, list]], list[dict]]:
    """Train on four articles and tag the fifth, for each fold (models kept under `work/fold-K`).

    The trainer adds the config's `extra_train` corpora and scores its `external_test` corpora
    (`arner.json` metrics), which are returned per fold. `command(model_dir, k)` is the `arner train`
    line that makes fold K's model alone, recorded in its arner.json and model card.

    `config` (a loaded `TrainConfig`) must make the trainer read the same annotation folder as `documents`
    (see `with_annotations`): the trainer's fold K holds out its K-th document, which `check_heldout` verifies.
    """
    from arner.eval.training import train
    from arner.inference import Tagger

    rows, external_rows = [], []
    for k, held in enumerate(documents):
        model_dir = work / f"fold-{k}"
        log(f"bert fold {k}: training without {held.doc} -> {model_dir}")
        train(config, model_dir, fold=k, resume=resume, command=command(model_dir, k))
        check_heldout(model_dir, held.doc)
        tagger = Tagger.from_pretrained(model_dir, device=device, batch_size=batch_size)
        (entities,) = tagger([held.text])
        log(f"bert fold {k} ({held.doc}): {len(entities)} spans")
        rows.append((held.doc, list(entities)))
        meta = json.loads((model_dir / "arner.json").read_text(encoding="utf-8"))
        external_rows.append(meta["metrics"].get("external", {}))
    return rows, external_rows


def score_system(
    name: str, rows: list[tuple[str, list]], documents: Sequence[Document], folder: Path, resamples: int, seed: int
) -> SystemResult:
    """Pool the held-out predictions into `folder/predictions.jsonl`, read it back checked, and score it (pooled and per fold)."""
    pooled = folder / "predictions.jsonl"
    predictions.write(pooled, rows)
    pred_docs = predictions.read(pooled, documents, missing="error")
    result = SystemResult(name, rows, predicted=pred_docs)
    result.metrics, result.errors = evaluate(documents, pred_docs, resamples, seed)
    for k, (gold, pred) in enumerate(zip(documents, pred_docs)):
        result.per_fold.append({"fold": k, "doc": gold.doc, **figures(scores([gold], [pred]))})
    return result


def mean_std(rows: Sequence[dict], keys) -> dict:
    """`{mean, std}` of each key over `rows` (sample standard deviation, n - 1; 0 for one row)."""
    return {
        "mean": {k: statistics.fmean(r[k] for r in rows) for k in keys},
        "std": {k: statistics.stdev([r[k] for r in rows]) if len(rows) > 1 else 0.0 for k in keys},
    }


def external_summary(per_fold: list[dict]) -> dict:
    """Per external corpus: the fold models' scores, with mean and standard deviation over folds."""
    out = {}
    for corpus_name in per_fold[0] if per_fold else []:
        folds = [f[corpus_name] for f in per_fold]
        out[corpus_name] = {"per_fold": folds, **mean_std(folds, list(folds[0]))}
    return out


def summary(result: SystemResult) -> dict:
    intervals = result.metrics["bootstrap"]["intervals"]
    pooled = {k: {"estimate": v, "low": intervals[k]["low"], "high": intervals[k]["high"]} for k, v in figures(result.metrics).items()}
    return {"pooled": pooled, "per_fold": result.per_fold, **mean_std(result.per_fold, FIGURES)}


def command_line(config: Path | None, out: Path, overrides: Sequence[str], systems: Sequence[str], resamples: int, seed: int) -> str:
    options = {"config": config, "out": out, "set": list(overrides), "systems": ",".join(systems), "resamples": resamples, "seed": seed}
    defaults = {"set": [], "systems": ",".join(SYSTEMS), "resamples": RESAMPLES, "seed": SEED}
    return commands.command_line(["arner", "cv"], options, defaults)


def fold_commands(config: Path, overrides: Sequence[str], loaded, train_config) -> Callable[[Path, int], str]:
    """`(model_dir, k)` -> the `arner train` line that makes fold K's model as `arner cv` does (its annotation folder included)."""
    sets = list(overrides)
    if train_config.annotations != loaded.annotations:  # `with_annotations` pointed the trainer at --gold
        sets.append(f"annotations={train_config.annotations}")

    def line(model_dir: Path, k: int) -> str:
        return commands.command_line(["arner", "train"], {"config": config, "output": model_dir, "fold": k, "set": sets}, {"set": []})

    return line


def all_predictions(
    systems: Sequence[str],
    documents: Sequence[Document],
    train_config,
    ext: ExternalData,
    work_dir: Path,
    resume: bool,
    device: str,
    batch_size: int,
    log: Callable[[str], None],
    command: Callable[[Path, int], str] = lambda model_dir, k: "",
) -> tuple[dict[str, list[tuple[str, list]]], dict[str, list[dict]]]:
    """Each system's held-out predictions per fold, and its external test scores per fold."""
    rows, external_rows = {}, {}
    for name in systems:
        if name == "bert":
            rows[name], external_rows[name] = bert_predictions(train_config, documents, work_dir, resume, device, batch_size, log, command)
        else:
            rows[name], external_rows[name] = baseline_predictions(name, documents, log, ext)
    return rows, external_rows


def settings(config: Path | None, overrides: Sequence[str], systems: Sequence[str], resamples: int, seed: int, ext: ExternalData) -> dict:
    return {
        "config": str(config) if config else None,
        "overrides": list(overrides),
        "systems": list(systems),
        "resamples": resamples,
        "seed": seed,
        "std": "sample standard deviation over folds (n - 1)",
        "extra_train": {"documents": len(ext.extra_train), "spans": sum(len(d.spans) for d in ext.extra_train)},
        "external_test": {name: {"documents": len(docs), "has_date": has_date} for name, (docs, has_date) in ext.tests.items()},
    }


def write_system(folder: Path, result: SystemResult, documents: Sequence[Document], command: str) -> None:
    """A full `arner eval` folder for the pooled predictions (errors.html included), plus each fold's predictions."""
    for k, row in enumerate(result.rows):
        predictions.write(folder / f"fold-{k}.jsonl", [row])
    source = f"System `{result.name}`, pooled held-out predictions of `{command}` (`predictions.jsonl`; per fold `fold-K.jsonl`)."
    title = f"{result.name}: leave-one-article-out"
    write_evaluation(folder, result.metrics, result.errors, title, source, gold=documents, pred=result.predicted)


def run(
    out: Path,
    config: Path | None = None,
    overrides: Sequence[str] = (),
    systems: Sequence[str] = SYSTEMS,
    gold: Path = corpus.DEFAULT_ROOT,
    work: Path | None = None,
    resume: bool = False,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    device: str = "auto",
    batch_size: int = defaults.BATCH_SIZE,
    log: Callable[[str], None] = lambda _: None,
) -> dict:
    """Run the cross-validation and write `out/` whole (atomically); returns `out/metrics.json`'s object."""
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise ValueError(f"unknown system(s) {', '.join(unknown) or '(none)'}; choose among {', '.join(SYSTEMS)}")
    if "bert" in systems and config is None:
        raise ValueError("the bert system needs --config configs/NAME.yaml (or leave it out with --systems memorization,crf)")
    atomic.check_owned(atomic.check_target(out), OUTPUT_FILES, "arner cv output")  # before hours of training, not after
    documents = corpus.load(gold)
    train_config, ext, fold_command = None, ExternalData(), lambda model_dir, k: ""
    if config is not None:
        from arner.train.config import load_config

        loaded = load_config(config, overrides)  # a bad config or override is reported before any fold is trained
        train_config, ext = with_annotations(loaded, gold), ExternalData.from_config(loaded)
        fold_command = fold_commands(config, overrides, loaded, train_config)
    work_dir = work or Path("runs") / "cv" / (config.stem if config else "baselines")
    rows, external_rows = all_predictions(systems, documents, train_config, ext, work_dir, resume, device, batch_size, log, fold_command)
    command = command_line(config, out, overrides, systems, resamples, seed)
    with atomic.directory(out, owned=OUTPUT_FILES, what="arner cv output") as tmp:
        results = {name: score_system(name, rows[name], documents, tmp / name, resamples, seed) for name in systems}
        summaries = {name: summary(r) for name, r in results.items()}
        for name in systems:
            if ext.tests:
                summaries[name]["external"] = external_summary(external_rows[name])
        result = {
            "command": command,
            "folds": [{"fold": k, "doc": d.doc} for k, d in enumerate(documents)],
            "settings": settings(config, overrides, systems, resamples, seed, ext),
            "systems": summaries,
        }
        for name, r in results.items():
            write_system(tmp / name, r, documents, command)
        (tmp / "metrics.json").write_text(dumps(result), encoding="utf-8")
        (tmp / "report.md").write_text(markdown(summaries, documents, command, resamples, seed), encoding="utf-8")
        plot_comparison(summaries, tmp / "comparison.png")
    return result
