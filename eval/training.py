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
    """Strict and partial span scores on held-out documents, as the evaluation computes them."""
    from arner.eval.spanscore import span_scores

    def score(model, tokenizer, documents: Sequence[Document], device) -> dict:
        was_training = model.training
        predicted = make_tagger(model, tokenizer, config, device).spans([d.text for d in documents])
        model.train(was_training)
        scores = span_scores([d.spans for d in documents], predicted)
        strict = scores["strict"]["micro"]
        return {
            "strict_precision": strict["precision"],
            "strict_recall": strict["recall"],
            "strict_f1": strict["f1"],
            "partial_f1": scores["partial"]["micro"]["f1"],
        }

    return score


def external_scorer(config: TrainConfig) -> finetune.FinalScorer:
    """Headline scores on each configured public test corpus (strict per label and loose), under `external`."""
    from arner.eval.public_scores import headline, score_corpus

    def score(model, tokenizer, device) -> dict:
        spans = make_tagger(model, tokenizer, config, device).spans
        return {"external": {e.key: headline(score_corpus(spans, e, config.external_root)) for e in config.external_test}}

    return score


def train(config: TrainConfig, output: str | Path, fold: int | None = None, resume: bool = False, config_path: str = "config") -> dict:
    """Fine-tune with the held-out article scored each epoch and the public test corpora scored at the end."""
    return finetune.train(
        config,
        output,
        fold,
        resume,
        config_path,
        score_heldout=heldout_scorer(config),
        score_final=external_scorer(config) if config.external_test else None,
    )
