"""The evaluation hooks of fine-tuning: held-out span scores after each epoch, public test corpora at the end.

`train` is what `arner train` and `arner cv` run: `arner.train.finetune.train` with both hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from arner.core.corpus import Document
from arner.inference import Tagger
from arner.train import finetune
from arner.train.config import TrainConfig


def make_tagger(model, tokenizer, config: TrainConfig, device) -> Tagger:
    """A `Tagger` over the model being trained, with the config's inference settings."""
    return Tagger(model, tokenizer, device, config.eval_batch_size, config.stride, config.max_length, config.trim_proclitics)


def heldout_scorer(config: TrainConfig) -> finetune.HeldoutScorer:
    """Strict and partial span scores on held-out documents, as the evaluation computes them.

    With `interval`, also their 95% intervals under `bootstrap`, resampled over paragraphs as `arner eval` does
    (`metrics.bootstrap`): `{confidence, resamples, seed, paragraphs, strict_f1: {low, high}, partial_f1: {low, high}}`.
    """
    from arner.eval.spanscore import span_scores

    def score(model, tokenizer, documents: Sequence[Document], device, interval: bool = False) -> dict:
        was_training = model.training
        predicted = make_tagger(model, tokenizer, config, device).spans([d.text for d in documents])
        model.train(was_training)
        scores = span_scores([d.spans for d in documents], predicted)
        strict = scores["strict"]["micro"]
        out = {
            "strict_precision": strict["precision"],
            "strict_recall": strict["recall"],
            "strict_f1": strict["f1"],
            "partial_f1": scores["partial"]["micro"]["f1"],
        }
        if interval:
            out["bootstrap"] = intervals(documents, predicted)
        return out

    return score


def intervals(documents: Sequence[Document], predicted) -> dict:
    """The paragraph-bootstrap intervals of the strict and partial span F1 (seeded: the same predictions give the same interval)."""
    from arner.eval.metrics import bootstrap, unit_counts

    boot = bootstrap(unit_counts(documents, [sorted(p) for p in predicted]))
    figures = boot["intervals"]
    return {
        "confidence": boot["confidence"],
        "resamples": boot["resamples"],
        "seed": boot["seed"],
        "paragraphs": boot["paragraphs"],
        **{key: {"low": figures[name]["low"], "high": figures[name]["high"]} for key, name in INTERVALS.items()},
    }


INTERVALS = {"strict_f1": "span_strict_micro_f1", "partial_f1": "span_partial_micro_f1"}  # our key: metrics.bootstrap's


def external_scorer(config: TrainConfig) -> finetune.FinalScorer:
    """Headline scores on each configured public test corpus (strict per label and loose), under `external`."""
    from arner.eval.public_scores import headline, score_corpus

    def score(model, tokenizer, device) -> dict:
        spans = make_tagger(model, tokenizer, config, device).spans
        return {"external": {e.key: headline(score_corpus(spans, e, config.external_root)) for e in config.external_test}}

    return score


def train(
    config: TrainConfig, output: str | Path, fold: int | None = None, resume: bool = False, config_path: str = "config", command: str = ""
) -> dict:
    """Fine-tune with the held-out article scored each epoch and the public test corpora scored at the end.

    `command`: the command line that ran it, for arner.json and the model card.
    """
    return finetune.train(
        config,
        output,
        fold,
        resume,
        config_path,
        score_heldout=heldout_scorer(config),
        score_final=external_scorer(config) if config.external_test else None,
        command=command,
    )
