"""`arner train`'s core: fine-tune a token classifier on the annotations (the loop is `loop.fit`).

Scoring is not this layer's job: the evaluation layer passes `score_heldout` (run after each
epoch on the held-out article, for early stopping and the log) and `score_final` (extra scores for
`arner.json`, such as public test corpora), as spaCy's `train_while_improving` takes `evaluate`.
`arner.eval.training.train` is the call with both wired in.

What cannot make a model is refused before the output folder is touched: no training documents, none
with a word to label, a `max_length` beyond the base model's positions, a bad label map.

Public corpora (`extra_train`) are read through their label maps (`arner.core.public.load_training`).
A set-valued map gives words that allow several tags; the run then trains a `PartialLabelModel`
(marginal likelihood over each word's allowed tags, arner.train.partial) around the Hugging Face
model, and publishes the inner model, so the output loads like any other. Each corpus trains on
`weighted(documents, weight, seed)`: the same documents for every cv fold.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from arner.core import corpus
from arner.core import public as external
from arner.core.conventions import ID2TAG, TAG2ID, words
from arner.core.corpus import Document, split
from arner.train.config import TrainConfig
from arner.train.data import IGNORE, TagSets, fingerprint, weighted, window_examples
from arner.train.finetune_card import finetune_card
from arner.train.loop import finish_output, finished_run, fit, make_accelerator, prepare_output, publish, save_model
from arner.train.model import check_positions, resolve
from arner.train.partial import PartialLabelModel, inner


class HeldoutScorer(Protocol):
    """(model, tokenizer, documents, device) -> scores holding "strict_f1"; with `interval`, their bootstrap intervals too.

    The interval is asked for once, for the final model (it resamples the article's paragraphs a thousand times).
    """

    def __call__(self, model, tokenizer, documents: Sequence[Document], device, interval: bool = False) -> dict: ...


FinalScorer = Callable[[object, object, object], dict]  # (model, tokenizer, device) -> named scores


def load_training_documents(
    config: TrainConfig, fold: int | None
) -> tuple[list[Document], list[Document], dict[str, list[Document]], list[Document]]:
    """(articles trained on, held-out articles, public corpora by name, all documents trained on) for a run.

    None to train on is a ValueError.
    """
    documents = corpus.load(config.annotations)
    if not documents and (config.train_on_articles or fold is not None):
        raise ValueError(f"no training documents in {config.annotations}: it holds no annotated article (articles/*.txt + spans/*.json)")
    train_docs, heldout_docs = split(documents, fold)
    extra = {
        entry.key: weighted(external.load_training(entry, config.external_root), entry.weight, config.seed, entry.key)
        for entry in config.extra_train
    }
    articles = train_docs if config.train_on_articles else []
    trained = articles + [d for docs in extra.values() for d in docs]
    sources = f"{config.annotations}" + (f" and extra_train {', '.join(extra)}" if extra else "")
    if not trained:
        held = f" with fold {fold} (it holds out the only article)" if fold is not None and config.train_on_articles else ""
        raise ValueError(f"no training documents in {sources}{held}")
    if not any(words(d.text) for d in trained):
        raise ValueError(f"no training windows: none of the {len(trained)} training documents in {sources} holds a word to label")
    return articles, heldout_docs, extra, trained


def pretrained_base(config: TrainConfig, config_path: str, accelerator) -> str | None:
    """The base model's folder or hub id, its positions checked against max_length; None for `model: tiny`.

    Before the output folder is prepared, so that a model that cannot take the config leaves a previous
    run there alone. (The tiny model is built later, into the output; the config checked its positions.)
    """
    if config.model == "tiny":
        return None
    with accelerator.main_process_first():  # one process fetches a hub model's config, then the others read the cache
        base = resolve(config, config_path, [], Path())
    check_positions(base, config.max_length, config_path)
    return base


def load_base(config: TrainConfig, config_path: str, accelerator, train_docs: Sequence[Document], checkpoints: Path, base: str | None):
    """The tokenizer and token-classification model to fine-tune (the tiny model is built once, by the main process)."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    if base is None:
        if accelerator.is_main_process:
            resolve(config, config_path, [d.text for d in train_docs], checkpoints)
        accelerator.wait_for_everyone()
        base = str(checkpoints / "base-model")
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(TAG2ID), id2label=dict(ID2TAG), label2id=dict(TAG2ID), attn_implementation="sdpa", dtype=torch.float32
    )  # float32 even from an fp16 folder (the shipped encoder): mixed precision, where wanted, is accelerate's
    return tokenizer, model


def label_sets(config: TrainConfig) -> TagSets:
    """The registry of allowed-tag sets of the configured maps (empty when every map is one-to-one)."""
    maps = [external.read_label_map(external.training_map_path(e, config.external_root)) for e in config.extra_train]
    return TagSets.from_maps(m for m in maps if not external.is_one_to_one(m))


def training_features(
    tokenizer, config: TrainConfig, documents: Sequence[Document], sets: TagSets | None = None
) -> tuple[list[dict], object]:
    """Windows with aligned labels, and the collator that pads them."""
    from transformers import DataCollatorForTokenClassification

    examples = [
        ex for d in documents for ex in window_examples(tokenizer, d, config.max_length, config.stride, config.label_all_subwords, sets)
    ]
    # a window with no labelled token teaches nothing, and a batch of them only would make the loss NaN (a mean over none)
    features = [{"input_ids": ex["input_ids"], "labels": ex["labels"]} for ex in examples if any(t != IGNORE for t in ex["labels"])]
    if not features:
        raise ValueError(f"no training windows: none of the {len(documents)} training documents gives a token to label")
    collator = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=config.pad_to_multiple_of, label_pad_token_id=IGNORE)
    return features, collator


def metadata(
    config: TrainConfig, fold: int | None, article_docs, heldout_docs, extra: dict, train_docs, final: dict, config_path: str, command: str
) -> dict:
    """What `arner.json` records about a run besides the model (and what its card shows)."""
    tiny = "tiny (built offline: WordPiece on the training articles + random BertConfig)"
    return {
        "config": config.to_dict(),
        "config_file": config_path,
        "command": command,
        "base_model": config.model if config.model != "tiny" else tiny,
        "fold": fold,
        "train_docs": [d.doc for d in article_docs],
        "train_articles": corpus_summary(article_docs),
        "extra_train": {name: corpus_summary(docs) for name, docs in extra.items()},
        "heldout_docs": [d.doc for d in heldout_docs],
        "data_fingerprint": fingerprint(train_docs + heldout_docs),
        "train_fingerprint": fingerprint(train_docs),
        "metrics": final,
    }


def corpus_summary(docs: Sequence[Document]) -> dict:
    """What arner.json says of a public corpus a run trained on (after max_words and weight)."""
    partial = [d for d in docs if getattr(d, "word_sets", None) is not None]
    summary = {"documents": len(docs), "words": sum(len(words(d.text)) for d in docs), "spans": sum(len(d.spans) for d in docs)}
    if partial:  # spans counts the definite entities only; these words allow several tags
        summary["words_with_tag_sets"] = sum(len(s) > 1 for d in partial for s in d.word_sets)
    return summary


def train(
    config: TrainConfig,
    output: str | Path,
    fold: int | None = None,
    resume: bool = False,
    config_path: str = "config",
    score_heldout: HeldoutScorer | None = None,
    score_final: FinalScorer | None = None,
    command: str = "",
) -> dict:
    """Train, write a Hugging Face model folder at `output` (with its card), and return the final metrics.

    `command` (the command line that ran it) goes into arner.json and the card. Resuming a finished run
    of the same config and data (its checkpoints removed) trains nothing and returns its metrics.
    """
    from transformers import AutoModelForTokenClassification

    output = Path(output)
    accelerator = make_accelerator(config, output, config_path)
    article_docs, heldout_docs, extra, train_docs = load_training_documents(config, fold)
    if resume:
        done = finished_run(output, config.to_dict(), fold=fold, data_fingerprint=fingerprint(train_docs + heldout_docs))
        if done is not None:
            if accelerator.is_main_process:
                print(f"{output} holds a finished run of this config and data: nothing to resume", file=sys.stderr)
            accelerator.end_training()
            return done["metrics"]
    sets = label_sets(config)
    base = pretrained_base(config, config_path, accelerator)
    checkpoints = prepare_output(accelerator, output, resume)
    tokenizer, model = load_base(config, config_path, accelerator, train_docs, checkpoints, base)
    features, collator = training_features(tokenizer, config, train_docs, sets)
    if len(sets):  # some words allow several tags: the loss marginalizes over them; the inner model is published
        model = PartialLabelModel(model, sets.masks())

    evaluate = None
    if heldout_docs and score_heldout is not None:

        def evaluate(m):
            return score_heldout(inner(m), tokenizer, heldout_docs, accelerator.device)

    best = checkpoints / "best"
    on_improve = (lambda m: save_model(inner(m), tokenizer, best)) if config.load_best_model_at_end else None
    model, state = fit(
        accelerator, model, features, collator, config, output, resume, evaluate=evaluate, score_key="strict_f1", on_improve=on_improve
    )
    model = inner(model)

    history = state["history"]
    final = {"epochs_run": state["epoch"], "global_step": state["global_step"], "final_loss": history[-1]["loss"] if history else None}
    if accelerator.is_main_process:
        reloaded = evaluate is not None and config.load_best_model_at_end and best.is_dir()
        if reloaded:
            model = AutoModelForTokenClassification.from_pretrained(str(best))
            final["model_epoch"] = state["best_epoch"]
        if evaluate is not None:
            final["best_epoch"] = state["best_epoch"]
            # the published weights scored again (the last epoch's row scored the same ones, unless the best epoch's were
            # reloaded), now with the bootstrap intervals the card shows
            final["heldout"] = score_heldout(model, tokenizer, heldout_docs, accelerator.device, interval=True)
        if score_final is not None:
            final.update(score_final(model, tokenizer, accelerator.device))
        model.config.id2label, model.config.label2id = dict(ID2TAG), dict(TAG2ID)
        meta = metadata(config, fold, article_docs, heldout_docs, extra, train_docs, final, config_path, command)
        publish(model, tokenizer, output, meta, config.max_length, card=lambda m: finetune_card(output.name, m, str(output)))
    finish_output(accelerator, output, config.keep_checkpoints_after_training)
    accelerator.end_training()
    return final
